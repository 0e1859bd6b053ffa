//! Collections and aliases.

use axum::extract::{Path, State};
use axum::response::Response;
use grape::{CreateCollection, UpdateCollection};

use super::extract::{Body, Params};
use super::wire::{
    AliasActions, AliasList, CollectionDescription, CollectionList, CreateFieldIndex, Exists, TimeoutParams,
    WriteParams,
};
use super::{AppState, Timed};
use crate::service::cluster::ClusterOperation;
use crate::service::optimizations::OptimizationsParams;

pub(super) async fn list(t: Timed, State(s): State<AppState>) -> Response {
    let r = s.service.run(|db| db.list_collections()).await.map(|names| CollectionList {
        collections: names.into_iter().map(|name| CollectionDescription { name }).collect(),
    });
    t.reply(r)
}

pub(super) async fn info(t: Timed, State(s): State<AppState>, Path(c): Path<String>) -> Response {
    t.reply(s.service.run(move |db| db.collection_info(&c)).await)
}

pub(super) async fn create(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(_): Params<TimeoutParams>,
    Body(req): Body<CreateCollection>,
) -> Response {
    t.reply(s.service.create_collection(c, req).await)
}

pub(super) async fn update(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(_): Params<TimeoutParams>,
    Body(req): Body<UpdateCollection>,
) -> Response {
    t.reply(s.service.run(move |db| db.update_collection(&c, &req).map(|_| true)).await)
}

pub(super) async fn delete(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(_): Params<TimeoutParams>,
) -> Response {
    t.reply(s.service.delete_collection(c).await)
}

pub(super) async fn exists(t: Timed, State(s): State<AppState>, Path(c): Path<String>) -> Response {
    t.reply(s.service.run(move |db| db.collection_exists(&c)).await.map(|exists| Exists { exists }))
}

pub(super) async fn update_aliases(
    t: Timed,
    State(s): State<AppState>,
    Params(_): Params<TimeoutParams>,
    Body(req): Body<AliasActions>,
) -> Response {
    t.reply(s.service.run(move |db| db.update_aliases(&req.actions).map(|()| true)).await)
}

pub(super) async fn all_aliases(t: Timed, State(s): State<AppState>) -> Response {
    t.reply(s.service.run(|db| db.list_aliases()).await.map(|aliases| AliasList { aliases }))
}

pub(super) async fn aliases(t: Timed, State(s): State<AppState>, Path(c): Path<String>) -> Response {
    t.reply(s.service.run(move |db| db.collection_aliases(&c)).await.map(|aliases| AliasList { aliases }))
}

/// `GET /collections/{c}/cluster`.
pub(super) async fn cluster_info(t: Timed, State(s): State<AppState>, Path(c): Path<String>) -> Response {
    t.reply(s.service.collection_cluster_info(c).await)
}

/// `PUT /collections/{c}/index`: declare a payload index; sealed segments build it before the reply.
pub(super) async fn create_index(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<WriteParams>,
    Body(req): Body<CreateFieldIndex>,
) -> Response {
    let outcome = match req.field_schema {
        None => Err(crate::ApiError::bad_request(
            "Bad request: field_schema is required (Grape does not infer the index type)",
        )),
        Some(schema) => {
            s.service.create_payload_index(c, req.field_name, schema, p.wait != Some(false)).await
        }
    };
    t.reply(outcome)
}

/// `DELETE /collections/{c}/index/{field}`.
pub(super) async fn delete_index(
    t: Timed,
    State(s): State<AppState>,
    Path((c, field)): Path<(String, String)>,
    Params(p): Params<WriteParams>,
) -> Response {
    t.reply(s.service.delete_payload_index(c, field, p.wait != Some(false)).await)
}

/// `GET /collections/{c}/optimizations`: the optimizer's running (and, on request, queued, completed
/// and idle) work.
pub(super) async fn optimizations(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<OptimizationsParams>,
) -> Response {
    t.reply(s.service.optimizations(c, p).await)
}

/// `PUT /collections/{c}/vectors/{vector}`: add a named vector (`{"dense": ..}` or `{"sparse": ..}`).
pub(super) async fn create_vector(
    t: Timed,
    State(s): State<AppState>,
    Path((c, vector)): Path<(String, String)>,
    Params(p): Params<WriteParams>,
    Body(req): Body<grape::NewVector>,
) -> Response {
    t.reply(s.service.create_vector(c, vector, req, p.wait.unwrap_or(false)).await)
}

/// `DELETE /collections/{c}/vectors/{vector}`: drop a named vector with its values.
pub(super) async fn delete_vector(
    t: Timed,
    State(s): State<AppState>,
    Path((c, vector)): Path<(String, String)>,
    Params(p): Params<WriteParams>,
) -> Response {
    t.reply(s.service.delete_vector(c, vector, p.wait.unwrap_or(false)).await)
}

/// `POST /collections/{c}/cluster`: move, replicate or drop a shard replica (cluster mode).
pub(super) async fn update_cluster(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(_): Params<TimeoutParams>,
    Body(op): Body<ClusterOperation>,
) -> Response {
    t.reply(s.service.update_cluster(c, op).await)
}
