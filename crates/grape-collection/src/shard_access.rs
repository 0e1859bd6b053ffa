//! [`ShardAccess`]: one shard of a collection as the collection layer sees it. In embedded and
//! single-server mode that is a [`LocalShard`] with its own WAL; in cluster mode it is a handle whose
//! writes go through the shard's replica group and whose reads go to a replica (local or remote). The
//! collection layer (validation, routing by slot, fan-out and merge, the whole Query API above it) is
//! the same in both modes.

use std::sync::Arc;

use grape_shard::LocalShard;
use grape_types::{
    Filter, MultiSearchRequest, OpNum, Operation, PointId, Record, Result, ScoredPoint, ScrollRequest,
    ScrollResult, SearchRequest, SparseSearchRequest, WithPayload, WithVector, WriteAck,
};

pub trait ShardAccess: Send + Sync {
    /// Makes one write durable and applied; returns its op_num. `ack` says when a replicated shard
    /// answers (a local shard: always once durable and applied); an asynchronous write answers before
    /// it has an op_num (`None`).
    fn update(&self, op: &Operation, ack: WriteAck) -> Result<Option<OpNum>>;
    fn search(&self, req: &SearchRequest) -> Result<Vec<ScoredPoint>>;
    fn search_sparse(&self, req: &SparseSearchRequest) -> Result<Vec<ScoredPoint>>;
    fn search_multi(&self, req: &MultiSearchRequest) -> Result<Vec<ScoredPoint>>;
    fn retrieve(
        &self,
        ids: &[PointId],
        with_payload: &WithPayload,
        with_vector: &WithVector,
    ) -> Result<Vec<Record>>;
    fn scroll(&self, req: &ScrollRequest) -> Result<ScrollResult>;
    fn count(&self, filter: Option<&Filter>) -> Result<usize>;
    /// Live points having the sparse vector `name`, and per index how many of them hold it.
    fn sparse_document_frequencies(&self, name: &str, indices: &[u32]) -> Result<(u64, Vec<u64>)>;
    /// The replica of this shard held by this process, if any: configuration changes, statistics,
    /// flush, optimization and snapshots act on it.
    fn local(&self) -> Option<Arc<LocalShard>>;
    /// This shard with linearizable reads (through its group's leader after a read barrier), if its
    /// reads are not linearizable already; `None` for a local shard, whose reads see every write
    /// acknowledged before them.
    fn linearizable(&self) -> Option<Arc<dyn ShardAccess>> {
        None
    }
}

impl ShardAccess for Arc<LocalShard> {
    fn update(&self, op: &Operation, _ack: WriteAck) -> Result<Option<OpNum>> {
        LocalShard::update(self, op).map(Some)
    }
    fn search(&self, req: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        self.engine().search(req)
    }
    fn search_sparse(&self, req: &SparseSearchRequest) -> Result<Vec<ScoredPoint>> {
        self.engine().search_sparse(req)
    }
    fn search_multi(&self, req: &MultiSearchRequest) -> Result<Vec<ScoredPoint>> {
        self.engine().search_multi(req)
    }
    fn retrieve(
        &self,
        ids: &[PointId],
        with_payload: &WithPayload,
        with_vector: &WithVector,
    ) -> Result<Vec<Record>> {
        self.engine().retrieve(ids, with_payload, with_vector)
    }
    fn scroll(&self, req: &ScrollRequest) -> Result<ScrollResult> {
        self.engine().scroll(req)
    }
    fn count(&self, filter: Option<&Filter>) -> Result<usize> {
        Ok(self.engine().count(filter))
    }
    fn sparse_document_frequencies(&self, name: &str, indices: &[u32]) -> Result<(u64, Vec<u64>)> {
        Ok(self.engine().sparse_document_frequencies(name, indices))
    }
    fn local(&self) -> Option<Arc<LocalShard>> {
        Some(Arc::clone(self))
    }
}
