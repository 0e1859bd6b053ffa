//! Points: writes, retrieval, scroll, count, search, query and recommend.

use axum::extract::{Path, State};
use axum::response::Response;
use grape::{PointId, ScrollRequest, ShardKeySelector, WithPayload, WithVector};

use super::extract::{Body, Params};
use super::wire::{
    payload_or_on, BatchUpdate, CountBody, CountResult, DeletePayload, PointInsert, PointRequest,
    QueryBatchBody, QueryBody, QueryResponse, ReadParams, RecommendBatchBody, RecommendBody, ScrollAnswer,
    ScrollBody, SearchBatchBody, SearchBody, Selector, SetPayload, WriteParams,
};
use super::{AppState, Timed};
use crate::error::ApiError;
use crate::service::{self, PointsQuery, UpdateOperation};

/// One write to the shard keys it names.
async fn write(
    t: Timed,
    s: &AppState,
    collection: String,
    params: WriteParams,
    op: Result<(UpdateOperation, Option<ShardKeySelector>), ApiError>,
) -> Response {
    let outcome = match op {
        Ok((op, keys)) => {
            s.service.update(collection, vec![op], keys, params.wait.unwrap_or(false), params.ack()).await
        }
        Err(e) => Err(e),
    };
    t.reply(outcome)
}

pub(super) async fn upsert(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<PointInsert>,
) -> Response {
    let op = body.into_points().map(|(points, keys)| (UpdateOperation::Upsert(points), keys));
    write(t, &s, c, p, op).await
}

pub(super) async fn delete(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<Selector>,
) -> Response {
    let (selector, keys) = body.into_parts();
    write(t, &s, c, p, Ok((UpdateOperation::Delete(selector), keys))).await
}

pub(super) async fn set_payload(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<WriteParams>,
    Body(mut body): Body<SetPayload>,
) -> Response {
    let keys = body.shard_key.take();
    write(t, &s, c, p, body.into_set().map(|op| (op, keys))).await
}

pub(super) async fn overwrite_payload(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<WriteParams>,
    Body(mut body): Body<SetPayload>,
) -> Response {
    let keys = body.shard_key.take();
    write(t, &s, c, p, body.into_overwrite().map(|op| (op, keys))).await
}

pub(super) async fn delete_payload(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<WriteParams>,
    Body(mut body): Body<DeletePayload>,
) -> Response {
    let keys = body.shard_key.take();
    write(t, &s, c, p, body.into_op().map(|op| (op, keys))).await
}

pub(super) async fn update_vectors(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<WriteParams>,
    Body(mut body): Body<super::wire::UpdateVectorsBody>,
) -> Response {
    let keys = body.shard_key.take();
    write(t, &s, c, p, body.into_op().map(|op| (op, keys))).await
}

pub(super) async fn delete_vectors(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<WriteParams>,
    Body(mut body): Body<super::wire::DeleteVectorsBody>,
) -> Response {
    let keys = body.shard_key.take();
    write(t, &s, c, p, body.into_op().map(|op| (op, keys))).await
}

pub(super) async fn clear_payload(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<Selector>,
) -> Response {
    let (selector, keys) = body.into_parts();
    write(t, &s, c, p, Ok((UpdateOperation::ClearPayload(selector), keys))).await
}

pub(super) async fn batch_update(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<BatchUpdate>,
) -> Response {
    let ops = body.operations.into_iter().map(|o| o.into_op()).collect::<Result<Vec<_>, _>>();
    // Qdrant answers a batch with one result per operation.
    let outcome = match ops {
        Ok(ops) => s.service.update_each(c, ops, p.wait.unwrap_or(false), p.ack()).await,
        Err(e) => Err(e),
    };
    t.reply(outcome)
}

pub(super) async fn retrieve(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<PointRequest>,
) -> Response {
    let consistency = match p.consistency() {
        Ok(c) => c,
        Err(e) => return t.reply::<()>(Err(e)),
    };
    let with_payload = payload_or_on(body.with_payload);
    let with_vector = body.with_vector.unwrap_or_default();
    t.reply(
        s.service
            .with_shards_at(c, body.shard_key, consistency, move |_, col| {
                col.retrieve(&body.ids, &with_payload, &with_vector)
            })
            .await,
    )
}

pub(super) async fn get_one(
    t: Timed,
    State(s): State<AppState>,
    Path((c, id)): Path<(String, String)>,
    Params(p): Params<ReadParams>,
) -> Response {
    let consistency = match p.consistency() {
        Ok(c) => c,
        Err(e) => return t.reply::<()>(Err(e)),
    };
    let id: PointId = match id.parse() {
        Ok(id) => id,
        Err(e) => {
            return t.reply::<()>(Err(ApiError::bad_request(format!("Wrong input: point id {id:?}: {e}"))))
        }
    };
    let r = s
        .service
        .with_shards_at(c, None, consistency, move |_, col| {
            let found = col.retrieve(&[id], &WithPayload::Enable(true), &WithVector::Enable(true))?;
            found
                .into_iter()
                .next()
                .ok_or_else(|| grape::Error::not_found(format!("No point with id {id} found")))
        })
        .await;
    t.reply(r)
}

pub(super) async fn scroll(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<ScrollBody>,
) -> Response {
    let consistency = match p.consistency() {
        Ok(c) => c,
        Err(e) => return t.reply::<()>(Err(e)),
    };
    if body.order_by.is_some() {
        return t.reply(
            super::explore::scroll_ordered(&s, c, body, consistency).await.map(ScrollAnswer::Ordered),
        );
    }
    let req = ScrollRequest {
        offset: body.offset,
        limit: body.limit.unwrap_or(10),
        with_payload: payload_or_on(body.with_payload),
        with_vector: body.with_vector.unwrap_or_default(),
        filter: body.filter,
    };
    let r = s.service.with_shards_at(c, body.shard_key, consistency, move |_, col| col.scroll(&req)).await;
    t.reply(r.map(ScrollAnswer::Page))
}

pub(super) async fn count(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<CountBody>,
) -> Response {
    let consistency = match p.consistency() {
        Ok(c) => c,
        Err(e) => return t.reply::<()>(Err(e)),
    };
    // Counts are always exact: the estimate Qdrant offers for `exact: false` is an optimisation only.
    let _ = body.exact;
    let r = s
        .service
        .with_shards_at(c, body.shard_key, consistency, move |_, col| service::count(col, body.filter))
        .await;
    t.reply(r.map(|count| CountResult { count }))
}

async fn run_queries(
    s: &AppState,
    c: String,
    p: &ReadParams,
    queries: Result<Vec<PointsQuery>, ApiError>,
) -> Result<Vec<Vec<grape::ScoredPoint>>, ApiError> {
    let consistency = p.consistency()?;
    s.service.query_batch(c, queries?, consistency).await
}

fn single(r: Result<Vec<Vec<grape::ScoredPoint>>, ApiError>) -> Result<Vec<grape::ScoredPoint>, ApiError> {
    r.map(|mut v| v.pop().unwrap_or_default())
}

pub(super) async fn search(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<SearchBody>,
) -> Response {
    let q = body.into_query().map(|q| vec![q]);
    t.reply(single(run_queries(&s, c, &p, q).await))
}

pub(super) async fn search_batch(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<SearchBatchBody>,
) -> Response {
    let q = body.searches.into_iter().map(SearchBody::into_query).collect();
    t.reply(run_queries(&s, c, &p, q).await)
}

pub(super) async fn query(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<QueryBody>,
) -> Response {
    let q = body.into_query().map(|q| vec![q]);
    t.reply(single(run_queries(&s, c, &p, q).await).map(|points| QueryResponse { points }))
}

pub(super) async fn query_batch(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<QueryBatchBody>,
) -> Response {
    let q = body.searches.into_iter().map(QueryBody::into_query).collect();
    let r = run_queries(&s, c, &p, q).await;
    t.reply(r.map(|all| all.into_iter().map(|points| QueryResponse { points }).collect::<Vec<_>>()))
}

pub(super) async fn recommend(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<RecommendBody>,
) -> Response {
    let q = body.into_query().map(|q| vec![q]);
    t.reply(single(run_queries(&s, c, &p, q).await))
}

pub(super) async fn recommend_batch(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<RecommendBatchBody>,
) -> Response {
    let q = body.searches.into_iter().map(RecommendBody::into_query).collect();
    t.reply(run_queries(&s, c, &p, q).await)
}
