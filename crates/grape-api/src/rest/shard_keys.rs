//! Custom sharding: `PUT /collections/{c}/shards` (create a shard key), `POST …/shards/delete` (drop
//! one) and `GET …/shards` (list them).

use axum::extract::{Path, State};
use axum::response::Response;
use grape::{CreateShardKey, ShardKey};
use serde::{Deserialize, Serialize};

use super::extract::{Body, Params};
use super::wire::TimeoutParams;
use super::{AppState, Timed};

/// `POST /collections/{c}/shards/delete` body (Qdrant's `DropShardingKey`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DropShardingKey {
    pub shard_key: ShardKey,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct ShardKeyDescription {
    key: ShardKey,
}

/// `GET /collections/{c}/shards` result (Qdrant's `ShardKeysResponse`).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct ShardKeysResponse {
    /// Absent when the collection is not custom-sharded.
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_keys: Option<Vec<ShardKeyDescription>>,
}

pub(super) async fn create(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(_): Params<TimeoutParams>,
    Body(req): Body<CreateShardKey>,
) -> Response {
    t.reply(s.service.create_shard_key(c, req).await)
}

pub(super) async fn delete(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(_): Params<TimeoutParams>,
    Body(req): Body<DropShardingKey>,
) -> Response {
    t.reply(s.service.delete_shard_key(c, req.shard_key).await)
}

pub(super) async fn list(t: Timed, State(s): State<AppState>, Path(c): Path<String>) -> Response {
    let r = s.service.shard_keys(c).await.map(|keys| ShardKeysResponse {
        shard_keys: keys.map(|keys| keys.into_iter().map(|key| ShardKeyDescription { key }).collect()),
    });
    t.reply(r)
}
