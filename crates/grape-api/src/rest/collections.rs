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
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_key: Option<grape::ShardKey>,
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
    if let Some(view) = s.service.cluster().cloned() {
        let r = s.service.run(move |_| view.collection_info(&c)).await;
        return t.reply(r);
    }
    let r = s.service.local_shards(c).await.map(|shards| {
        let local_shards: Vec<LocalShardInfo> = shards
            .into_iter()
            .map(|l| LocalShardInfo {
                shard_id: l.shard_id,
                shard_key: l.shard_key,
                points_count: l.points_count,
                state: "Active",
            })
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

/// Body of `POST /collections/{c}/cluster` (Qdrant's shard operations that Grape builds).
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ClusterOperation {
    MoveShard(ShardTransfer),
    ReplicateShard(ShardTransfer),
    AbortTransfer(ShardTransfer),
    DropReplica(DropReplica),
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub(super) struct ShardTransfer {
    shard_id: u32,
    from_peer_id: u64,
    to_peer_id: u64,
    /// Qdrant's transfer method; Grape always transfers through Raft (snapshot, then log).
    #[serde(default)]
    #[allow(dead_code)]
    method: Option<serde_json::Value>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub(super) struct DropReplica {
    shard_id: u32,
    peer_id: u64,
}

/// `POST /collections/{c}/cluster`: move, replicate or drop a shard replica (cluster mode).
pub(super) async fn update_cluster(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(_): Params<TimeoutParams>,
    Body(op): Body<ClusterOperation>,
) -> Response {
    let Some(view) = s.service.cluster().cloned() else {
        return t.reply::<bool>(Err(crate::ApiError::bad_request("Bad request: Distributed mode disabled")));
    };
    let r = s
        .service
        .run(move |_| {
            match op {
                ClusterOperation::MoveShard(m) => {
                    if m.from_peer_id == m.to_peer_id {
                        return Err(grape::Error::bad_input("from_peer_id and to_peer_id are the same peer"));
                    }
                    view.change_replicas(&c, m.shard_id, Some(m.to_peer_id), Some(m.from_peer_id))
                }
                ClusterOperation::ReplicateShard(m) => {
                    view.change_replicas(&c, m.shard_id, Some(m.to_peer_id), None)
                }
                ClusterOperation::DropReplica(d) => {
                    view.change_replicas(&c, d.shard_id, None, Some(d.peer_id))
                }
                ClusterOperation::AbortTransfer(m) => Err(grape::Error::bad_input(format!(
                    "abort_transfer of shard {} from {} to {}: Grape moves replicas by Raft membership \
                     changes, which cannot be aborted; drop the new replica instead",
                    m.shard_id, m.from_peer_id, m.to_peer_id
                ))),
            }
            .map(|()| true)
        })
        .await;
    t.reply(r)
}
