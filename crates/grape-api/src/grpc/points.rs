//! `qdrant.Points`: writes (points, payloads, vectors, batches, payload indexes), retrieval, search
//! (legacy search, recommend and discover, and the Query API, each also grouped), scroll, count, facet
//! counts and the distance matrix. Conversions live in [`super::convert`], [`super::query`],
//! [`super::explore`] and [`super::updates`]; handlers only check access, convert and delegate.

use std::time::Instant;

use grape::ScrollRequest;
use grape_proto::qdrant as pb;
use grape_proto::qdrant::points_server::Points;
use tonic::{Request, Response, Status};

use super::convert::{
    map_to_payload, ordered_point, point, point_ids, proto_point_id, retrieved_point, scored_point,
    shard_keys, update_result, with_payload, with_vector,
};
use super::explore::{
    discover_query, facet_hits, facet_query, groups_result, matrix_offsets, matrix_pairs, matrix_query,
    query_groups, recommend_groups, recommend_query, search_groups,
};
use super::filter::filter;
use super::query::{ordered_scroll, points_query, search_query};
use super::updates::{batch_operation, delete_vectors, field_schema, selector, update_vectors};
use super::{elapsed, invalid, status, unsupported, within, Access, State};
use crate::service::groups::GroupsQuery;
use crate::service::{self, PointsQuery, UpdateOperation};

type Reply<T> = Result<Response<T>, Status>;

/// Runs a collection-level write within the request's timeout and answers its result.
async fn operation_reply(
    start: Instant,
    timeout: Option<u64>,
    work: impl std::future::Future<Output = Result<grape::UpdateResult, Status>>,
) -> Reply<pb::PointsOperationResponse> {
    let result = within(timeout, work).await?;
    Ok(Response::new(pb::PointsOperationResponse {
        result: Some(update_result(result)),
        time: elapsed(start),
    }))
}

/// Default page size of scroll, as Qdrant's.
const DEFAULT_LIMIT: u64 = 10;

/// A write's request fields the handlers share.
struct Write {
    collection: String,
    wait: Option<bool>,
    timeout: Option<u64>,
    start: Instant,
    keys: Option<grape::ShardKeySelector>,
    ack: Option<grape::WriteAck>,
}

impl State {
    async fn write(&self, w: Write, op: UpdateOperation) -> Reply<pb::PointsOperationResponse> {
        let work = async {
            self.service
                .update(w.collection, vec![op], w.keys, w.wait.unwrap_or(false), w.ack)
                .await
                .map_err(status)
        };
        let result = within(w.timeout, work).await?;
        Ok(Response::new(pb::PointsOperationResponse {
            result: Some(update_result(result)),
            time: elapsed(w.start),
        }))
    }

    /// Runs read queries against one collection within `timeout`.
    async fn queries(
        &self,
        collection: String,
        queries: Vec<PointsQuery>,
        timeout: Option<u64>,
        consistency: Option<pb::ReadConsistency>,
    ) -> Result<Vec<Vec<grape::ScoredPoint>>, Status> {
        let consistency = read_consistency(consistency)?;
        within(timeout, async {
            self.service.query_batch(collection, queries, consistency).await.map_err(status)
        })
        .await
    }

    async fn groups(
        &self,
        collection: String,
        query: GroupsQuery,
        timeout: Option<u64>,
        consistency: Option<pb::ReadConsistency>,
    ) -> Result<pb::GroupsResult, Status> {
        let consistency = read_consistency(consistency)?;
        let work = async { self.service.query_groups(collection, query, consistency).await.map_err(status) };
        Ok(groups_result(within(timeout, work).await?))
    }
}

/// Qdrant's read consistency of a request (absent: one replica).
fn read_consistency(c: Option<pb::ReadConsistency>) -> Result<grape::ReadConsistency, Status> {
    use pb::read_consistency::Value;
    match c.and_then(|c| c.value) {
        None => Ok(grape::ReadConsistency::default()),
        Some(Value::Factor(0)) => Err(invalid("read_consistency: the factor must be at least 1")),
        Some(Value::Factor(n)) => Ok(grape::ReadConsistency::Factor(n)),
        Some(Value::Type(t)) => match pb::ReadConsistencyType::try_from(t) {
            Ok(pb::ReadConsistencyType::All) => Ok(grape::ReadConsistency::All),
            Ok(pb::ReadConsistencyType::Majority) => Ok(grape::ReadConsistency::Majority),
            Ok(pb::ReadConsistencyType::Quorum) => Ok(grape::ReadConsistency::Quorum),
            Err(_) => Err(invalid(format!("read_consistency: unknown type {t}"))),
        },
    }
}

/// When a write is acknowledged, from its `ordering` (absent: the collection's default).
fn write_ack(ordering: Option<pb::WriteOrdering>) -> Result<Option<grape::WriteAck>, Status> {
    let Some(o) = ordering else { return Ok(None) };
    match pb::WriteOrderingType::try_from(o.r#type) {
        Ok(pb::WriteOrderingType::Weak) => Ok(Some(grape::WriteAck::Async)),
        Ok(pb::WriteOrderingType::Medium) => Ok(Some(grape::WriteAck::Quorum)),
        Ok(pb::WriteOrderingType::Strong) => Ok(Some(grape::WriteAck::All)),
        Err(_) => Err(invalid(format!("ordering: unknown type {}", o.r#type))),
    }
}

/// The one answer of a single-query batch.
fn single(mut results: Vec<Vec<grape::ScoredPoint>>) -> Vec<pb::ScoredPoint> {
    results.pop().unwrap_or_default().into_iter().map(scored_point).collect()
}

#[tonic::async_trait]
impl Points for State {
    async fn upsert(&self, request: Request<pb::UpsertPoints>) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let keys = shard_keys(req.shard_key_selector.clone())?;
        if req.update_filter.is_some() {
            return Err(unsupported("update_filter (conditional upsert)"));
        }
        if req.update_mode.is_some_and(|m| m != pb::UpdateMode::Upsert as i32) {
            return Err(unsupported("update_mode other than Upsert"));
        }
        let points = req.points.into_iter().map(point).collect::<Result<Vec<_>, _>>()?;
        let ack = write_ack(req.ordering)?;
        let w =
            Write { collection: req.collection_name, wait: req.wait, timeout: req.timeout, start, keys, ack };
        self.write(w, UpdateOperation::Upsert(points)).await
    }

    async fn delete(&self, request: Request<pb::DeletePoints>) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let keys = shard_keys(req.shard_key_selector.clone())?;
        let op = UpdateOperation::Delete(selector(req.points)?);
        let ack = write_ack(req.ordering)?;
        let w =
            Write { collection: req.collection_name, wait: req.wait, timeout: req.timeout, start, keys, ack };
        self.write(w, op).await
    }

    async fn get(&self, request: Request<pb::GetPoints>) -> Reply<pb::GetResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let keys = shard_keys(req.shard_key_selector.clone())?;
        let ids = point_ids(req.ids)?;
        let consistency = read_consistency(req.read_consistency)?;
        let (wp, wv) = (with_payload(req.with_payload, true), with_vector(req.with_vectors));
        let work = async {
            self.service
                .with_shards_at(req.collection_name, keys, consistency, move |_, c| {
                    c.retrieve(&ids, &wp, &wv)
                })
                .await
                .map_err(status)
        };
        let records = within(req.timeout, work).await?;
        Ok(Response::new(pb::GetResponse {
            result: records.into_iter().map(retrieved_point).collect(),
            time: elapsed(start),
        }))
    }

    async fn update_vectors(
        &self,
        request: Request<pb::UpdatePointVectors>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let keys = shard_keys(req.shard_key_selector.clone())?;
        let op = update_vectors(req.points, &req.update_filter)?;
        let ack = write_ack(req.ordering)?;
        let w =
            Write { collection: req.collection_name, wait: req.wait, timeout: req.timeout, start, keys, ack };
        self.write(w, op).await
    }

    async fn delete_vectors(
        &self,
        request: Request<pb::DeletePointVectors>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let keys = shard_keys(req.shard_key_selector.clone())?;
        let op = delete_vectors(req.points_selector, req.vectors)?;
        let ack = write_ack(req.ordering)?;
        let w =
            Write { collection: req.collection_name, wait: req.wait, timeout: req.timeout, start, keys, ack };
        self.write(w, op).await
    }

    async fn set_payload(
        &self,
        request: Request<pb::SetPayloadPoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let keys = shard_keys(req.shard_key_selector.clone())?;
        let op = UpdateOperation::SetPayload {
            selector: selector(req.points_selector)?,
            payload: map_to_payload(req.payload)?,
            key: req.key,
        };
        let ack = write_ack(req.ordering)?;
        let w =
            Write { collection: req.collection_name, wait: req.wait, timeout: req.timeout, start, keys, ack };
        self.write(w, op).await
    }

    async fn overwrite_payload(
        &self,
        request: Request<pb::SetPayloadPoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let keys = shard_keys(req.shard_key_selector.clone())?;
        if req.key.is_some() {
            return Err(unsupported("key with overwrite_payload"));
        }
        let op = UpdateOperation::OverwritePayload {
            selector: selector(req.points_selector)?,
            payload: map_to_payload(req.payload)?,
        };
        let ack = write_ack(req.ordering)?;
        let w =
            Write { collection: req.collection_name, wait: req.wait, timeout: req.timeout, start, keys, ack };
        self.write(w, op).await
    }

    async fn delete_payload(
        &self,
        request: Request<pb::DeletePayloadPoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let keys = shard_keys(req.shard_key_selector.clone())?;
        let op = UpdateOperation::DeletePayload { selector: selector(req.points_selector)?, keys: req.keys };
        let ack = write_ack(req.ordering)?;
        let w =
            Write { collection: req.collection_name, wait: req.wait, timeout: req.timeout, start, keys, ack };
        self.write(w, op).await
    }

    async fn clear_payload(
        &self,
        request: Request<pb::ClearPayloadPoints>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let keys = shard_keys(req.shard_key_selector.clone())?;
        let op = UpdateOperation::ClearPayload(selector(req.points)?);
        let ack = write_ack(req.ordering)?;
        let w =
            Write { collection: req.collection_name, wait: req.wait, timeout: req.timeout, start, keys, ack };
        self.write(w, op).await
    }

    async fn create_field_index(
        &self,
        request: Request<pb::CreateFieldIndexCollection>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let schema = field_schema(req.field_type, req.field_index_params)?;
        let wait = req.wait.unwrap_or(true);
        let work = async {
            self.service
                .create_payload_index(req.collection_name, req.field_name, schema, wait)
                .await
                .map_err(status)
        };
        operation_reply(start, req.timeout, work).await
    }

    async fn delete_field_index(
        &self,
        request: Request<pb::DeleteFieldIndexCollection>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let wait = req.wait.unwrap_or(true);
        let work = async {
            self.service.delete_payload_index(req.collection_name, req.field_name, wait).await.map_err(status)
        };
        operation_reply(start, req.timeout, work).await
    }

    async fn create_vector_name(
        &self,
        request: Request<pb::CreateVectorNameRequest>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let config =
            req.vector_config.ok_or_else(|| invalid("vector_config: dense or sparse is required"))?;
        let vector = super::collections::new_vector(config)?;
        let wait = req.wait.unwrap_or(true);
        let work = async {
            self.service
                .create_vector(req.collection_name, req.vector_name, vector, wait)
                .await
                .map_err(status)
        };
        operation_reply(start, req.timeout, work).await
    }

    async fn delete_vector_name(
        &self,
        request: Request<pb::DeleteVectorNameRequest>,
    ) -> Reply<pb::PointsOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let wait = req.wait.unwrap_or(true);
        let work = async {
            self.service.delete_vector(req.collection_name, req.vector_name, wait).await.map_err(status)
        };
        operation_reply(start, req.timeout, work).await
    }

    async fn search(&self, request: Request<pb::SearchPoints>) -> Reply<pb::SearchResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let (collection, timeout, consistency) =
            (req.collection_name.clone(), req.timeout, req.read_consistency);
        let query = search_query(req)?;
        let results = self.queries(collection, vec![query], timeout, consistency).await?;
        Ok(Response::new(pb::SearchResponse { result: single(results), time: elapsed(start) }))
    }

    async fn search_batch(&self, request: Request<pb::SearchBatchPoints>) -> Reply<pb::SearchBatchResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let queries = req.search_points.into_iter().map(search_query).collect::<Result<Vec<_>, _>>()?;
        let results = self.queries(req.collection_name, queries, req.timeout, req.read_consistency).await?;
        Ok(Response::new(pb::SearchBatchResponse { result: batch_results(results), time: elapsed(start) }))
    }

    async fn search_groups(
        &self,
        request: Request<pb::SearchPointGroups>,
    ) -> Reply<pb::SearchGroupsResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let (collection, timeout, consistency) =
            (req.collection_name.clone(), req.timeout, req.read_consistency);
        let result = self.groups(collection, search_groups(req)?, timeout, consistency).await?;
        Ok(Response::new(pb::SearchGroupsResponse { result: Some(result), time: elapsed(start) }))
    }

    async fn scroll(&self, request: Request<pb::ScrollPoints>) -> Reply<pb::ScrollResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let keys = shard_keys(req.shard_key_selector.clone())?;
        let consistency = read_consistency(req.read_consistency)?;
        if req.order_by.is_some() {
            let (collection, ordered) = ordered_scroll(req)?;
            let points =
                self.service.scroll_ordered(collection, keys, ordered, consistency).await.map_err(status)?;
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
        let work = async {
            self.service
                .with_shards_at(req.collection_name, keys, consistency, move |_, c| c.scroll(&scroll))
                .await
                .map_err(status)
        };
        let page = within(req.timeout, work).await?;
        Ok(Response::new(pb::ScrollResponse {
            next_page_offset: page.next_page_offset.map(proto_point_id),
            result: page.points.into_iter().map(retrieved_point).collect(),
            time: elapsed(start),
        }))
    }

    async fn recommend(&self, request: Request<pb::RecommendPoints>) -> Reply<pb::RecommendResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let (collection, timeout, consistency) =
            (req.collection_name.clone(), req.timeout, req.read_consistency);
        let results = self.queries(collection, vec![recommend_query(req)?], timeout, consistency).await?;
        Ok(Response::new(pb::RecommendResponse { result: single(results), time: elapsed(start) }))
    }

    async fn recommend_batch(
        &self,
        request: Request<pb::RecommendBatchPoints>,
    ) -> Reply<pb::RecommendBatchResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let queries = req.recommend_points.into_iter().map(recommend_query).collect::<Result<Vec<_>, _>>()?;
        let results = self.queries(req.collection_name, queries, req.timeout, req.read_consistency).await?;
        Ok(Response::new(pb::RecommendBatchResponse { result: batch_results(results), time: elapsed(start) }))
    }

    async fn recommend_groups(
        &self,
        request: Request<pb::RecommendPointGroups>,
    ) -> Reply<pb::RecommendGroupsResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let (collection, timeout, consistency) =
            (req.collection_name.clone(), req.timeout, req.read_consistency);
        let result = self.groups(collection, recommend_groups(req)?, timeout, consistency).await?;
        Ok(Response::new(pb::RecommendGroupsResponse { result: Some(result), time: elapsed(start) }))
    }

    async fn discover(&self, request: Request<pb::DiscoverPoints>) -> Reply<pb::DiscoverResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let (collection, timeout, consistency) =
            (req.collection_name.clone(), req.timeout, req.read_consistency);
        let results = self.queries(collection, vec![discover_query(req)?], timeout, consistency).await?;
        Ok(Response::new(pb::DiscoverResponse { result: single(results), time: elapsed(start) }))
    }

    async fn discover_batch(
        &self,
        request: Request<pb::DiscoverBatchPoints>,
    ) -> Reply<pb::DiscoverBatchResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let queries = req.discover_points.into_iter().map(discover_query).collect::<Result<Vec<_>, _>>()?;
        let results = self.queries(req.collection_name, queries, req.timeout, req.read_consistency).await?;
        Ok(Response::new(pb::DiscoverBatchResponse { result: batch_results(results), time: elapsed(start) }))
    }

    async fn count(&self, request: Request<pb::CountPoints>) -> Reply<pb::CountResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let keys = shard_keys(req.shard_key_selector.clone())?;
        let f = filter(req.filter)?;
        let consistency = read_consistency(req.read_consistency)?;
        let work = async {
            self.service
                .with_shards_at(req.collection_name, keys, consistency, move |_, c| service::count(c, f))
                .await
                .map_err(status)
        };
        let count = within(req.timeout, work).await?;
        Ok(Response::new(pb::CountResponse {
            result: Some(pb::CountResult { count: count as u64 }),
            time: elapsed(start),
        }))
    }

    async fn update_batch(&self, request: Request<pb::UpdateBatchPoints>) -> Reply<pb::UpdateBatchResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let ops = req.operations.into_iter().map(batch_operation).collect::<Result<Vec<_>, _>>()?;
        if ops.is_empty() {
            return Err(invalid("operations: at least one operation is required"));
        }
        let wait = req.wait.unwrap_or(false);
        let ack = write_ack(req.ordering)?;
        let work =
            async { self.service.update_each(req.collection_name, ops, wait, ack).await.map_err(status) };
        let results = within(req.timeout, work).await?;
        Ok(Response::new(pb::UpdateBatchResponse {
            result: results.into_iter().map(update_result).collect(),
            time: elapsed(start),
        }))
    }

    async fn query(&self, request: Request<pb::QueryPoints>) -> Reply<pb::QueryResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let (collection, timeout, consistency) =
            (req.collection_name.clone(), req.timeout, req.read_consistency);
        let query = points_query(req)?;
        let results = self.queries(collection, vec![query], timeout, consistency).await?;
        Ok(Response::new(pb::QueryResponse { result: single(results), time: elapsed(start) }))
    }

    async fn query_batch(&self, request: Request<pb::QueryBatchPoints>) -> Reply<pb::QueryBatchResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        // As in Qdrant, the batch's collection is the one queried; each query's own name is not read.
        let queries = req.query_points.into_iter().map(points_query).collect::<Result<Vec<_>, _>>()?;
        let results = self.queries(req.collection_name, queries, req.timeout, req.read_consistency).await?;
        Ok(Response::new(pb::QueryBatchResponse { result: batch_results(results), time: elapsed(start) }))
    }

    async fn query_groups(&self, request: Request<pb::QueryPointGroups>) -> Reply<pb::QueryGroupsResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let (collection, timeout, consistency) =
            (req.collection_name.clone(), req.timeout, req.read_consistency);
        let result = self.groups(collection, query_groups(req)?, timeout, consistency).await?;
        Ok(Response::new(pb::QueryGroupsResponse { result: Some(result), time: elapsed(start) }))
    }

    async fn facet(&self, request: Request<pb::FacetCounts>) -> Reply<pb::FacetResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let (collection, timeout, consistency) =
            (req.collection_name.clone(), req.timeout, req.read_consistency);
        let query = facet_query(req)?;
        let consistency = read_consistency(consistency)?;
        let work = async { self.service.facet(collection, query, consistency).await.map_err(status) };
        let hits = within(timeout, work).await?;
        Ok(Response::new(pb::FacetResponse { hits: facet_hits(hits), time: elapsed(start) }))
    }

    async fn search_matrix_pairs(
        &self,
        request: Request<pb::SearchMatrixPoints>,
    ) -> Reply<pb::SearchMatrixPairsResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let (collection, timeout, consistency) =
            (req.collection_name.clone(), req.timeout, req.read_consistency);
        let query = matrix_query(req)?;
        let consistency = read_consistency(consistency)?;
        let work =
            async { self.service.distance_matrix(collection, query, consistency).await.map_err(status) };
        let matrix = within(timeout, work).await?;
        Ok(Response::new(pb::SearchMatrixPairsResponse {
            result: Some(matrix_pairs(matrix)),
            time: elapsed(start),
        }))
    }

    async fn search_matrix_offsets(
        &self,
        request: Request<pb::SearchMatrixPoints>,
    ) -> Reply<pb::SearchMatrixOffsetsResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let req = request.into_inner();
        let (collection, timeout, consistency) =
            (req.collection_name.clone(), req.timeout, req.read_consistency);
        let query = matrix_query(req)?;
        let consistency = read_consistency(consistency)?;
        let work =
            async { self.service.distance_matrix(collection, query, consistency).await.map_err(status) };
        let matrix = within(timeout, work).await?;
        Ok(Response::new(pb::SearchMatrixOffsetsResponse {
            result: Some(matrix_offsets(matrix)),
            time: elapsed(start),
        }))
    }
}

/// The answers of a batch of queries, one `BatchResult` per query.
fn batch_results(results: Vec<Vec<grape::ScoredPoint>>) -> Vec<pb::BatchResult> {
    results
        .into_iter()
        .map(|hits| pb::BatchResult { result: hits.into_iter().map(scored_point).collect() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_consistency_and_ordering_map_onto_grape_levels() {
        use pb::read_consistency::Value;
        let rc = |v: Value| read_consistency(Some(pb::ReadConsistency { value: Some(v) }));
        assert_eq!(read_consistency(None).unwrap(), grape::ReadConsistency::One);
        assert_eq!(rc(Value::Factor(1)).unwrap(), grape::ReadConsistency::Factor(1));
        assert!(!rc(Value::Factor(1)).unwrap().linearizable());
        assert!(rc(Value::Factor(2)).unwrap().linearizable());
        assert_eq!(
            rc(Value::Type(pb::ReadConsistencyType::Majority as i32)).unwrap(),
            grape::ReadConsistency::Majority
        );
        assert_eq!(
            rc(Value::Type(pb::ReadConsistencyType::All as i32)).unwrap(),
            grape::ReadConsistency::All
        );
        assert_eq!(rc(Value::Factor(0)).unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(rc(Value::Type(9)).unwrap_err().code(), tonic::Code::InvalidArgument);

        let ordering = |t: i32| write_ack(Some(pb::WriteOrdering { r#type: t }));
        assert_eq!(write_ack(None).unwrap(), None);
        assert_eq!(ordering(pb::WriteOrderingType::Weak as i32).unwrap(), Some(grape::WriteAck::Async));
        assert_eq!(ordering(pb::WriteOrderingType::Medium as i32).unwrap(), Some(grape::WriteAck::Quorum));
        assert_eq!(ordering(pb::WriteOrderingType::Strong as i32).unwrap(), Some(grape::WriteAck::All));
        assert_eq!(ordering(7).unwrap_err().code(), tonic::Code::InvalidArgument);
    }
}
