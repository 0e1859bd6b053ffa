//! Cluster information and replica changes of a collection, for REST (`/collections/{c}/cluster`) and
//! gRPC (`CollectionClusterInfo`, `UpdateCollectionClusterSetup`) alike. A single node is peer
//! [`PEER_ID`] and every shard of a collection is local and active; in cluster mode the node's
//! [`super::ClusterView`] answers.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::Service;

/// The peer id a single node reports.
pub const PEER_ID: u64 = 1;

/// One local shard of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalShard {
    pub shard_id: u32,
    /// The shard key owning the shard (custom sharding).
    pub shard_key: Option<grape::ShardKey>,
    pub points_count: usize,
}

/// Qdrant's collection cluster information.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CollectionClusterInfo {
    pub peer_id: u64,
    pub shard_count: usize,
    pub local_shards: Vec<LocalShardInfo>,
    pub remote_shards: Vec<RemoteShardInfo>,
    pub shard_transfers: Vec<ShardTransferInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LocalShardInfo {
    pub shard_id: u32,
    /// The shard key owning the shard (custom sharding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_key: Option<grape::ShardKey>,
    pub points_count: usize,
    /// Qdrant's replica state name (`Active`, `Initializing`, ...).
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RemoteShardInfo {
    pub shard_id: u32,
    /// The shard key owning the shard (custom sharding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_key: Option<grape::ShardKey>,
    pub peer_id: u64,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardTransferInfo {
    pub shard_id: u32,
    pub from: u64,
    pub to: u64,
    /// A replication (the source keeps its replica) rather than a move.
    pub sync: bool,
}

/// A change of a collection's shard replicas (the body of `POST /collections/{c}/cluster`, the
/// operation of gRPC `UpdateCollectionClusterSetup`): the operations Grape builds.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClusterOperation {
    MoveShard(ShardTransfer),
    ReplicateShard(ShardTransfer),
    AbortTransfer(ShardTransfer),
    RestartTransfer(ShardTransfer),
    DropReplica(DropReplica),
    CreateShardingKey(grape::CreateShardKey),
    DropShardingKey(DropShardingKey),
}

/// Drops a shard key and its shards (`drop_sharding_key`, the body of `POST .../shards/delete`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DropShardingKey {
    pub shard_key: grape::ShardKey,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ShardTransfer {
    pub shard_id: u32,
    pub from_peer_id: u64,
    pub to_peer_id: u64,
    /// Qdrant's transfer method; Grape always transfers through Raft (snapshot, then log).
    #[serde(default)]
    pub method: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DropReplica {
    pub shard_id: u32,
    pub peer_id: u64,
}

impl Service {
    /// The shards of a collection (by name or alias) held by this process.
    pub async fn local_shards(&self, collection: String) -> Result<Vec<LocalShard>, ApiError> {
        self.with_collection(collection, |_, c| {
            Ok(c.shards()
                .iter()
                .filter_map(|handle| {
                    let local = handle.shard.local()?;
                    Some(LocalShard {
                        shard_id: handle.id,
                        shard_key: handle.key.clone(),
                        points_count: local.engine().segment_stats().iter().map(|s| s.live_points).sum(),
                    })
                })
                .collect())
        })
        .await
    }

    /// Where the shards of a collection are: the cluster's view in cluster mode, else every shard local.
    pub async fn collection_cluster_info(
        &self,
        collection: String,
    ) -> Result<CollectionClusterInfo, ApiError> {
        if let Some(view) = self.cluster().cloned() {
            let json = self.run(move |_| view.collection_info(&collection)).await?;
            return serde_json::from_value(json).map_err(|e| {
                ApiError::from(grape::Error::Internal(format!("cluster information does not parse: {e}")))
            });
        }
        let shards = self.local_shards(collection).await?;
        Ok(CollectionClusterInfo {
            peer_id: PEER_ID,
            shard_count: shards.len(),
            local_shards: shards
                .into_iter()
                .map(|l| LocalShardInfo {
                    shard_id: l.shard_id,
                    shard_key: l.shard_key,
                    points_count: l.points_count,
                    state: "Active".into(),
                })
                .collect(),
            remote_shards: Vec::new(),
            shard_transfers: Vec::new(),
        })
    }

    /// Moves, replicates or drops a shard replica (cluster mode), or creates or drops a shard key;
    /// returns once the change is committed. A single node answers replica changes as Qdrant's does
    /// outside distributed mode.
    pub async fn update_cluster(&self, collection: String, op: ClusterOperation) -> Result<bool, ApiError> {
        match op {
            ClusterOperation::CreateShardingKey(create) => self.create_shard_key(collection, create).await,
            ClusterOperation::DropShardingKey(drop) => {
                self.delete_shard_key(collection, drop.shard_key).await
            }
            ClusterOperation::MoveShard(m) => {
                if m.from_peer_id == m.to_peer_id {
                    self.cluster_view()?;
                    return Err(
                        grape::Error::bad_input("from_peer_id and to_peer_id are the same peer").into()
                    );
                }
                self.change_replicas(collection, m.shard_id, Some(m.to_peer_id), Some(m.from_peer_id)).await
            }
            ClusterOperation::ReplicateShard(m) => {
                self.change_replicas(collection, m.shard_id, Some(m.to_peer_id), None).await
            }
            ClusterOperation::DropReplica(d) => {
                self.change_replicas(collection, d.shard_id, None, Some(d.peer_id)).await
            }
            ClusterOperation::AbortTransfer(m) | ClusterOperation::RestartTransfer(m) => {
                self.cluster_view()?;
                Err(grape::Error::bad_input(format!(
                    "no transfer of shard {} from {} to {} to abort or restart: Grape moves replicas by Raft \
                     membership changes, which complete or fail on their own; drop the new replica instead",
                    m.shard_id, m.from_peer_id, m.to_peer_id
                ))
                .into())
            }
        }
    }

    fn cluster_view(&self) -> Result<std::sync::Arc<dyn super::ClusterView>, ApiError> {
        self.cluster().cloned().ok_or_else(|| ApiError::bad_request("Bad request: Distributed mode disabled"))
    }

    async fn change_replicas(
        &self,
        collection: String,
        shard: u32,
        add: Option<u64>,
        remove: Option<u64>,
    ) -> Result<bool, ApiError> {
        let view = self.cluster_view()?;
        self.run(move |_| view.change_replicas(&collection, shard, add, remove).map(|()| true)).await
    }
}
