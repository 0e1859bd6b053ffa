//! Cluster information of a single node: the node is peer [`PEER_ID`] and every shard of a collection
//! is local and active.

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

impl Service {
    /// The shards of a collection (by name or alias), all local.
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
}
