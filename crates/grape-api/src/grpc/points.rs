//! `qdrant.Points`: writes, retrieval, search (legacy and Query API), scroll and count.

use std::time::Instant;

use grape::ScrollRequest;
use grape_proto::qdrant as pb;
use grape_proto::qdrant::points_server::Points;
use tonic::{Request, Response, Status};

use super::convert::{
    map_to_payload, no_shard_keys, ordered_point, point, point_ids, proto_point_id, retrieved_point,
    scored_point, update_result, with_payload, with_vector,
};
use super::filter::filter;
use super::query::{ordered_scroll, points_query, search_query};
use super::{elapsed, invalid, status, unsupported, Access, State};
use crate::service::{self, PointsSelector, UpdateOperation};

type Reply<T> = Result<Response<T>, Status>;

/// Default page size of scroll, as Qdrant's.
const DEFAULT_LIMIT: u64 = 10;

impl State {
    async fn write(
        &self,
        collection: String,
        op: UpdateOperation,
        wait: Option<bool>,
        start: Instant,
    ) -> Reply<pb::PointsOperationResponse> {
        let result =
            self.service.update(collection, vec![op], wait.unwrap_or(false)).await.map_err(status)?;
        Ok(Response::new(pb::PointsOperationResponse {
            result: Some(update_result(result)),
            time: elapsed(start),
        }))
    }
}

fn selector(s: Option<pb::PointsSelector>) -> Result<PointsSelector, Status> {
    use pb::points_selector::PointsSelectorOneOf as S;
    match s.and_then(|s| s.points_selector_one_of) {
        Some(S::Points(ids)) => Ok(PointsSelector::Ids(point_ids(ids.ids)?)),
        Some(S::Filter(f)) => Ok(PointsSelector::Filter(filter(Some(f))?.unwrap_or_default())),
        None => Err(invalid("points selector: one of points or filter is required")),
    }
}

#[tonic::async_trait]
impl Points for State {
    async fn upsert(&self, request: Request<pb::UpsertPoints>) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        no_shard_keys(&req.shard_key_selector)?;
        if req.update_filter.is_some() {
            return Err(unsupported("update_filter (conditional upsert)"));
        }
        if req.update_mode.is_some_and(|m| m != pb::UpdateMode::Upsert as i32) {
            return Err(unsupported("update_mode other than Upsert"));
        }
        let points = req.points.into_iter().map(point).collect::<Result<Vec<_>, _>>()?;
        self.write(req.collection_name, UpdateOperation::Upsert(points), req.wait, start).await
    }

    async fn delete(&self, request: Request<pb::DeletePoints>) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        no_shard_keys(&req.shard_key_selector)?;
        let op = UpdateOperation::Delete(selector(req.points)?);
        self.write(req.collection_name, op, req.wait, start).await
    }

    async fn get(&self, request: Request<pb::GetPoints>) -> Reply<pb::GetResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        no_shard_keys(&req.shard_key_selector)?;
        let ids = point_ids(req.ids)?;
        let (wp, wv) = (with_payload(req.with_payload, true), with_vector(req.with_vectors));
        let records = self
            .service
            .with_collection(req.collection_name, move |_, c| c.retrieve(&ids, &wp, &wv))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetResponse {
            result: records.into_iter().map(retrieved_point).collect(),
            time: elapsed(start),
        }))
    }

    async fn set_payload(
        &self,
        request: Request<pb::SetPayloadPoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        no_shard_keys(&req.shard_key_selector)?;
        let op = UpdateOperation::SetPayload {
            selector: selector(req.points_selector)?,
            payload: map_to_payload(req.payload)?,
            key: req.key,
        };
        self.write(req.collection_name, op, req.wait, start).await
    }

    async fn overwrite_payload(
        &self,
        request: Request<pb::SetPayloadPoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        no_shard_keys(&req.shard_key_selector)?;
        if req.key.is_some() {
            return Err(unsupported("key with overwrite_payload"));
        }
        let op = UpdateOperation::OverwritePayload {
            selector: selector(req.points_selector)?,
            payload: map_to_payload(req.payload)?,
        };
        self.write(req.collection_name, op, req.wait, start).await
    }

    async fn delete_payload(
        &self,
        request: Request<pb::DeletePayloadPoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        no_shard_keys(&req.shard_key_selector)?;
        let op = UpdateOperation::DeletePayload { selector: selector(req.points_selector)?, keys: req.keys };
        self.write(req.collection_name, op, req.wait, start).await
    }

    async fn clear_payload(
        &self,
        request: Request<pb::ClearPayloadPoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        no_shard_keys(&req.shard_key_selector)?;
        let op = UpdateOperation::ClearPayload(selector(req.points)?);
        self.write(req.collection_name, op, req.wait, start).await
    }

    async fn search(&self, request: Request<pb::SearchPoints>) -> Reply<pb::SearchResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let collection = req.collection_name.clone();
        let query = search_query(req)?;
        let mut results = self.service.query_batch(collection, vec![query]).await.map_err(status)?;
        let hits = results.pop().unwrap_or_default();
        Ok(Response::new(pb::SearchResponse {
            result: hits.into_iter().map(scored_point).collect(),
            time: elapsed(start),
        }))
    }

    async fn search_batch(&self, request: Request<pb::SearchBatchPoints>) -> Reply<pb::SearchBatchResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let queries = req.search_points.into_iter().map(search_query).collect::<Result<Vec<_>, _>>()?;
        let results = self.service.query_batch(req.collection_name, queries).await.map_err(status)?;
        Ok(Response::new(pb::SearchBatchResponse { result: batch_results(results), time: elapsed(start) }))
    }

    async fn scroll(&self, request: Request<pb::ScrollPoints>) -> Reply<pb::ScrollResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        no_shard_keys(&req.shard_key_selector)?;
        if req.order_by.is_some() {
            let (collection, ordered) = ordered_scroll(req)?;
            let points = self.service.scroll_ordered(collection, ordered).await.map_err(status)?;
            return Ok(Response::new(pb::ScrollResponse {
                next_page_offset: None,
                result: points.into_iter().map(|(r, v)| ordered_point(r, v)).collect(),
                time: elapsed(start),
            }));
        }
        let scroll = ScrollRequest {
            offset: req.offset.map(super::convert::point_id).transpose()?,
            limit: req.limit.map_or(DEFAULT_LIMIT as usize, |l| l as usize),
            with_payload: with_payload(req.with_payload, true),
            with_vector: with_vector(req.with_vectors),
            filter: filter(req.filter)?,
        };
        let page = self
            .service
            .with_collection(req.collection_name, move |_, c| c.scroll(&scroll))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ScrollResponse {
            next_page_offset: page.next_page_offset.map(proto_point_id),
            result: page.points.into_iter().map(retrieved_point).collect(),
            time: elapsed(start),
        }))
    }

    async fn count(&self, request: Request<pb::CountPoints>) -> Reply<pb::CountResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        no_shard_keys(&req.shard_key_selector)?;
        let f = filter(req.filter)?;
        let count = self
            .service
            .with_collection(req.collection_name, move |_, c| service::count(c, f))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CountResponse {
            result: Some(pb::CountResult { count: count as u64 }),
            time: elapsed(start),
        }))
    }

    async fn query(&self, request: Request<pb::QueryPoints>) -> Reply<pb::QueryResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let collection = req.collection_name.clone();
        let query = points_query(req)?;
        let mut results = self.service.query_batch(collection, vec![query]).await.map_err(status)?;
        Ok(Response::new(pb::QueryResponse {
            result: results.pop().unwrap_or_default().into_iter().map(scored_point).collect(),
            time: elapsed(start),
        }))
    }

    async fn query_batch(&self, request: Request<pb::QueryBatchPoints>) -> Reply<pb::QueryBatchResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        // As in Qdrant, the batch's collection is the one queried; each query's own name is not read.
        let queries = req.query_points.into_iter().map(points_query).collect::<Result<Vec<_>, _>>()?;
        let results = self.service.query_batch(req.collection_name, queries).await.map_err(status)?;
        Ok(Response::new(pb::QueryBatchResponse { result: batch_results(results), time: elapsed(start) }))
    }
}

/// The answers of a batch of queries, one `BatchResult` per query.
fn batch_results(results: Vec<Vec<grape::ScoredPoint>>) -> Vec<pb::BatchResult> {
    results
        .into_iter()
        .map(|hits| pb::BatchResult { result: hits.into_iter().map(scored_point).collect() })
        .collect()
}
