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
    pub points_count: usize,
    /// Qdrant's replica state name (`Active`, `Initializing`, ...).
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RemoteShardInfo {
    pub shard_id: u32,
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
                .enumerate()
                .filter_map(|(i, shard)| {
                    let local = shard.local()?;
                    Some(LocalShard {
                        shard_id: i as u32,
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
                    points_count: l.points_count,
                    state: "Active".into(),
                })
                .collect(),
            remote_shards: Vec::new(),
            shard_transfers: Vec::new(),
        })
    }

    /// Moves, replicates or drops a shard replica (cluster mode); returns once the new placement is
    /// committed. A single node answers as Qdrant's does outside distributed mode.
    pub async fn update_cluster(&self, collection: String, op: ClusterOperation) -> Result<bool, ApiError> {
        let Some(view) = self.cluster().cloned() else {
            return Err(ApiError::bad_request("Bad request: Distributed mode disabled"));
        };
        self.run(move |_| {
            match op {
                ClusterOperation::MoveShard(m) => {
                    if m.from_peer_id == m.to_peer_id {
                        return Err(grape::Error::bad_input("from_peer_id and to_peer_id are the same peer"));
                    }
                    view.change_replicas(&collection, m.shard_id, Some(m.to_peer_id), Some(m.from_peer_id))
                }
                ClusterOperation::ReplicateShard(m) => {
                    view.change_replicas(&collection, m.shard_id, Some(m.to_peer_id), None)
                }
                ClusterOperation::DropReplica(d) => {
                    view.change_replicas(&collection, d.shard_id, None, Some(d.peer_id))
                }
                ClusterOperation::AbortTransfer(m) | ClusterOperation::RestartTransfer(m) => {
                    Err(grape::Error::bad_input(format!(
                        "no transfer of shard {} from {} to {} to abort or restart: Grape moves replicas by \
                         Raft membership changes, which complete or fail on their own; drop the new replica \
                         instead",
                        m.shard_id, m.from_peer_id, m.to_peer_id
                    )))
                }
            }
            .map(|()| true)
        })
        .await
    }
}
