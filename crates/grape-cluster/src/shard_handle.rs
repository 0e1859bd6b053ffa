//! How a clustered database reaches the cluster: the [`Catalog`] (collection changes are metadata
//! entries) and `ClusterShard`, one shard of a clustered collection (writes through its group's
//! leader, reads from a replica).

use std::sync::{Arc, Weak};

use grape::{Catalog, CollectionConfig, Error, Result};
use grape_collection::{PendingUpdate, ShardAccess};
use grape_shard::op_codec::encode_operation;
use grape_shard::LocalShard;

use crate::node::NodeInner;
use crate::reads::ShardRead;
use crate::replica::Replica;
use crate::types::{GroupId, MetaCommand, NodeId};

/// The catalog of a clustered database: collection changes are metadata-group entries.
pub(crate) struct NodeCatalog {
    pub(crate) node: Weak<NodeInner>,
}

impl NodeCatalog {
    fn node(&self) -> Result<Arc<NodeInner>> {
        self.node.upgrade().ok_or(Error::Closed)
    }

    fn commit(&self, cmd: MetaCommand) -> Result<()> {
        self.node()?.commit_meta(cmd)
    }
}

impl Catalog for NodeCatalog {
    fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<()> {
        let config = serde_json::to_string(&config).map_err(|e| Error::Internal(e.to_string()))?;
        self.commit(MetaCommand::CreateCollection { name: name.to_string(), config })
    }

    fn delete_collection(&self, name: &str) -> Result<bool> {
        let node = self.node()?;
        if !node.meta_view.borrow().state.collections.contains_key(name) {
            return Ok(false);
        }
        self.commit(MetaCommand::DeleteCollection { name: name.to_string() })?;
        Ok(true)
    }

    fn update_config(&self, name: &str, config: CollectionConfig) -> Result<()> {
        let config = serde_json::to_string(&config).map_err(|e| Error::Internal(e.to_string()))?;
        self.commit(MetaCommand::UpdateConfig { name: name.to_string(), config })
    }

    fn create_shard_key(&self, name: &str, request: &grape::CreateShardKey) -> Result<()> {
        let request = serde_json::to_string(request).map_err(|e| Error::Internal(e.to_string()))?;
        self.commit(MetaCommand::CreateShardKey { name: name.to_string(), request })
    }

    fn delete_shard_key(&self, name: &str, key: &grape::ShardKey) -> Result<()> {
        let key = serde_json::to_string(key).map_err(|e| Error::Internal(e.to_string()))?;
        self.commit(MetaCommand::DeleteShardKey { name: name.to_string(), key })
    }

    fn default_shard_number(&self) -> u32 {
        self.node.upgrade().map_or(1, |n| n.meta_view.borrow().state.peers.len().max(1) as u32)
    }
}

/// A shard of a clustered collection: writes through its group's leader, reads from a replica.
pub(crate) struct ClusterShard {
    pub(crate) node: Weak<NodeInner>,
    pub(crate) group: GroupId,
    pub(crate) shard: u32,
    pub(crate) replicas: Vec<NodeId>,
    pub(crate) local: Option<Arc<Replica>>,
    /// Reads go to the group's leader, after a read barrier ([`ShardAccess::linearizable`]).
    pub(crate) linearizable: bool,
}

impl ClusterShard {
    fn node(&self) -> Result<Arc<NodeInner>> {
        self.node.upgrade().ok_or(Error::Closed)
    }

    /// A read: on the replica held here, directly (no request is built or encoded); else the request
    /// made by `remote` goes to a replica holder. A linearizable read goes to the group's leader
    /// (which may be this node) and runs after its read barrier.
    fn read<T: serde::de::DeserializeOwned>(
        &self,
        here: impl FnOnce(&Arc<LocalShard>) -> Result<T>,
        remote: impl FnOnce() -> ShardRead,
    ) -> Result<T> {
        let node = self.node()?;
        if self.linearizable {
            let value = node.block(node.shard_read_linearizable(self.group, &self.replicas, remote()))?;
            return serde_json::from_value(value).map_err(|e| Error::Internal(e.to_string()));
        }
        if let Some(r) = &self.local {
            return here(&r.shard());
        }
        let value = node.block(node.shard_read(self.group, &self.replicas, &remote()))?;
        serde_json::from_value(value).map_err(|e| Error::Internal(e.to_string()))
    }
}

impl ShardAccess for ClusterShard {
    fn update(&self, op: &grape::Operation, ack: grape::WriteAck) -> Result<Option<grape::OpNum>> {
        self.start_update(op, ack).wait()
    }
    /// The write runs as a task of the node's runtime (forwarding to the leader, the quorum round)
    /// while the caller starts the request's writes to other shards.
    fn start_update(&self, op: &grape::Operation, ack: grape::WriteAck) -> PendingUpdate {
        let started = self.node().and_then(|node| {
            let bytes = encode_operation(op)?;
            let (group, replicas) = (self.group, self.replicas.clone());
            let writer = Arc::clone(&node);
            let task =
                node.runtime.spawn(async move { writer.shard_write(group, &replicas, bytes, ack).await });
            Ok((node, task))
        });
        let shard = self.shard;
        match started {
            Err(e) => PendingUpdate::ready(Err(e)),
            Ok((node, task)) => PendingUpdate::new(move || {
                let answer = node
                    .block(task)
                    .map_err(|e| Error::Internal(format!("shard {shard}: write task failed: {e}")))?;
                answer.map_err(|e| match e {
                    Error::Unavailable(m) => Error::Unavailable(format!("shard {shard}: {m}")),
                    e => e,
                })
            }),
        }
    }
    fn search(&self, req: &grape::SearchRequest) -> Result<Vec<grape::ScoredPoint>> {
        self.read(|s| s.search(req), || ShardRead::Search(req.clone()))
    }
    fn search_sparse(&self, req: &grape::SparseSearchRequest) -> Result<Vec<grape::ScoredPoint>> {
        self.read(|s| s.search_sparse(req), || ShardRead::SearchSparse(req.clone()))
    }
    fn search_multi(&self, req: &grape::MultiSearchRequest) -> Result<Vec<grape::ScoredPoint>> {
        self.read(|s| s.search_multi(req), || ShardRead::SearchMulti(req.clone()))
    }
    fn retrieve(
        &self,
        ids: &[grape::PointId],
        with_payload: &grape::WithPayload,
        with_vector: &grape::WithVector,
    ) -> Result<Vec<grape::Record>> {
        self.read(
            |s| s.retrieve(ids, with_payload, with_vector),
            || ShardRead::Retrieve {
                ids: ids.to_vec(),
                with_payload: with_payload.clone(),
                with_vector: with_vector.clone(),
            },
        )
    }
    fn scroll(&self, req: &grape::ScrollRequest) -> Result<grape::ScrollResult> {
        self.read(|s| s.scroll(req), || ShardRead::Scroll(req.clone()))
    }
    fn count(&self, filter: Option<&grape::Filter>) -> Result<usize> {
        self.read(|s| ShardAccess::count(s, filter), || ShardRead::Count(filter.cloned()))
    }
    fn sparse_document_frequencies(&self, name: &str, indices: &[u32]) -> Result<(u64, Vec<u64>)> {
        self.read(
            |s| s.sparse_document_frequencies(name, indices),
            || ShardRead::SparseDf { name: name.to_string(), indices: indices.to_vec() },
        )
    }
    fn local(&self) -> Option<Arc<grape_shard::LocalShard>> {
        self.local.as_ref().map(|r| r.shard())
    }
    fn linearizable(&self) -> Option<Arc<dyn ShardAccess>> {
        Some(Arc::new(ClusterShard {
            node: Weak::clone(&self.node),
            group: self.group,
            shard: self.shard,
            replicas: self.replicas.clone(),
            local: self.local.clone(),
            linearizable: true,
        }))
    }
}
