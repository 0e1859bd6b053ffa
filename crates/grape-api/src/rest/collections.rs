//! Collections and aliases.

use axum::extract::{Path, State};
use axum::response::Response;
use grape::{CreateCollection, UpdateCollection};
use serde::Serialize;

use super::extract::{Body, Params};
use super::wire::{
    AliasActions, AliasList, CollectionDescription, CollectionList, CreateFieldIndex, Exists, TimeoutParams,
    WriteParams,
};
use super::{AppState, Timed};

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
    t.reply(s.service.run(move |db| db.create_collection(&c, req).map(|_| true)).await)
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
    t.reply(s.service.run(move |db| db.delete_collection(&c)).await)
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

#[derive(Serialize, schemars::JsonSchema)]
struct LocalShardInfo {
    shard_id: u32,
    points_count: usize,
    state: &'static str,
}

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct CollectionClusterInfo {
    peer_id: u64,
    shard_count: usize,
    local_shards: Vec<LocalShardInfo>,
    remote_shards: Vec<()>,
    shard_transfers: Vec<()>,
}

/// `GET /collections/{c}/cluster`: as a single node answers, every shard is local and active.
pub(super) async fn cluster_info(t: Timed, State(s): State<AppState>, Path(c): Path<String>) -> Response {
    let r = s.service.local_shards(c).await.map(|shards| {
        let local_shards: Vec<LocalShardInfo> = shards
            .into_iter()
            .map(|l| LocalShardInfo { shard_id: l.shard_id, points_count: l.points_count, state: "Active" })
            .collect();
        CollectionClusterInfo {
            peer_id: crate::service::cluster::PEER_ID,
            shard_count: local_shards.len(),
            local_shards,
            remote_shards: Vec::new(),
            shard_transfers: Vec::new(),
        }
    });
    t.reply(r)
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
