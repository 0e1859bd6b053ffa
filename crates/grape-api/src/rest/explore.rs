//! Grouped queries, discover, facets, the distance matrix and scroll `order_by`: handlers that convert
//! the bodies of [`super::explore_wire`] and delegate to the service layer.

use axum::extract::{Path, State};
use axum::response::Response;

use super::explore_wire::{
    DiscoverBatchBody, DiscoverBody, FacetBody, FacetResponse, GroupsResult, MatrixBody, MatrixOffsets,
    MatrixPairs, OrderByWire, OrderedRecord, OrderedScrollResult, QueryGroupsBody, RecommendGroupsBody,
    SearchGroupsBody,
};
use super::extract::{Body, Params};
use super::wire::{payload_or_on, ReadParams, ScrollBody};
use super::{AppState, Timed};
use crate::error::ApiError;
use crate::service::groups::GroupsQuery;
use crate::service::order_by::OrderedScroll;
use crate::service::PointsQuery;

async fn groups(
    s: &AppState,
    c: String,
    p: &ReadParams,
    query: Result<GroupsQuery, ApiError>,
) -> Result<GroupsResult, ApiError> {
    let consistency = p.consistency()?;
    Ok(s.service.query_groups(c, query?, consistency).await?.into())
}

pub(super) async fn query_groups(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<QueryGroupsBody>,
) -> Response {
    t.reply(groups(&s, c, &p, body.into_query()).await)
}

pub(super) async fn search_groups(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<SearchGroupsBody>,
) -> Response {
    t.reply(groups(&s, c, &p, body.into_query()).await)
}

pub(super) async fn recommend_groups(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<RecommendGroupsBody>,
) -> Response {
    t.reply(groups(&s, c, &p, body.into_query()).await)
}

async fn discover_all(
    s: &AppState,
    c: String,
    p: &ReadParams,
    queries: Result<Vec<PointsQuery>, ApiError>,
) -> Result<Vec<Vec<grape::ScoredPoint>>, ApiError> {
    let consistency = p.consistency()?;
    s.service.query_batch(c, queries?, consistency).await
}

pub(super) async fn discover(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<DiscoverBody>,
) -> Response {
    let r = discover_all(&s, c, &p, body.into_query().map(|q| vec![q])).await;
    t.reply(r.map(|mut all| all.pop().unwrap_or_default()))
}

pub(super) async fn discover_batch(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<DiscoverBatchBody>,
) -> Response {
    let queries = body.searches.into_iter().map(DiscoverBody::into_query).collect();
    t.reply(discover_all(&s, c, &p, queries).await)
}

pub(super) async fn facet(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<FacetBody>,
) -> Response {
    let consistency = match p.consistency() {
        Ok(c) => c,
        Err(e) => return t.reply::<()>(Err(e)),
    };
    let r = s.service.facet(c, body.into(), consistency).await;
    t.reply(r.map(|hits| FacetResponse { hits }))
}

pub(super) async fn matrix_pairs(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<MatrixBody>,
) -> Response {
    let consistency = match p.consistency() {
        Ok(c) => c,
        Err(e) => return t.reply::<()>(Err(e)),
    };
    t.reply(s.service.distance_matrix(c, body.into(), consistency).await.map(MatrixPairs::from))
}

pub(super) async fn matrix_offsets(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<MatrixBody>,
) -> Response {
    let consistency = match p.consistency() {
        Ok(c) => c,
        Err(e) => return t.reply::<()>(Err(e)),
    };
    t.reply(s.service.distance_matrix(c, body.into(), consistency).await.map(MatrixOffsets::from))
}

/// Scroll with `order_by` (called by the scroll handler when the body has one).
pub(super) async fn scroll_ordered(
    s: &AppState,
    c: String,
    body: ScrollBody,
    consistency: grape::ReadConsistency,
) -> Result<OrderedScrollResult, ApiError> {
    let Some(order_by) = body.order_by else {
        return Err(ApiError::bad_request("Bad request: order_by is required"));
    };
    if body.offset.is_some() {
        return Err(ApiError::bad_request(
            "Bad request: cannot use an `offset` when using `order_by`; page with `order_by.start_from` \
             and a filter that excludes the ids already seen at that value",
        ));
    }
    let req = OrderedScroll {
        order_by: OrderByWire::parse(order_by)?,
        limit: body.limit.unwrap_or(10),
        filter: body.filter,
        with_payload: payload_or_on(body.with_payload),
        with_vector: body.with_vector.unwrap_or_default(),
    };
    let points = s.service.scroll_ordered(c, body.shard_key, req, consistency).await?;
    let points =
        points.into_iter().map(|(record, order_value)| OrderedRecord { record, order_value }).collect();
    Ok(OrderedScrollResult { points, next_page_offset: None })
}
