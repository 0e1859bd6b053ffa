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
    /// Starts [`ShardAccess::update`] and returns the wait for its answer, so that one request's
    /// writes to several shards are in flight together. A shard whose writes cannot overlap (a local
    /// one: the write is a WAL append and an apply on this thread) writes before it returns.
    fn start_update(&self, op: &Operation, ack: WriteAck) -> PendingUpdate {
        PendingUpdate::ready(self.update(op, ack))
    }
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

/// A write started by [`ShardAccess::start_update`]; [`PendingUpdate::wait`] gives its answer.
#[must_use = "a started write is only known to have succeeded once waited for"]
pub struct PendingUpdate(Box<dyn FnOnce() -> Result<Option<OpNum>> + Send>);

impl PendingUpdate {
    /// A write that has finished already.
    pub fn ready(result: Result<Option<OpNum>>) -> PendingUpdate {
        PendingUpdate(Box::new(move || result))
    }

    /// A write whose answer `wait` blocks for.
    pub fn new(wait: impl FnOnce() -> Result<Option<OpNum>> + Send + 'static) -> PendingUpdate {
        PendingUpdate(Box::new(wait))
    }

    pub fn wait(self) -> Result<Option<OpNum>> {
        (self.0)()
    }
}

/// Waits for every started write (all of them, even after a failure: none is left running unseen) and
/// returns the highest op_num, or the first error.
pub fn wait_all(pending: Vec<PendingUpdate>) -> Result<Option<OpNum>> {
    let mut last = Ok(None);
    for p in pending {
        match (p.wait(), &last) {
            (Ok(n), Ok(l)) => last = Ok(n.max(*l)),
            (Err(e), Ok(_)) => last = Err(e),
            (_, Err(_)) => {}
        }
    }
    last
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use grape_types::Error;

    use super::*;

    #[test]
    fn wait_all_waits_for_every_write_and_reports_the_first_error() {
        let waited = Arc::new(AtomicUsize::new(0));
        let counted = |r: Result<Option<OpNum>>| {
            let waited = Arc::clone(&waited);
            PendingUpdate::new(move || {
                waited.fetch_add(1, Ordering::SeqCst);
                r
            })
        };
        let all = vec![
            counted(Ok(Some(3))),
            counted(Err(Error::Unavailable("first".into()))),
            counted(Ok(Some(9))),
            counted(Err(Error::Unavailable("second".into()))),
        ];
        match wait_all(all) {
            Err(Error::Unavailable(m)) => assert_eq!(m, "first"),
            other => panic!("expected the first error, got {other:?}"),
        }
        assert_eq!(waited.load(Ordering::SeqCst), 4, "every started write is waited for");
        let ok = vec![counted(Ok(Some(3))), counted(Ok(None)), counted(Ok(Some(7)))];
        assert_eq!(wait_all(ok).unwrap(), Some(7), "the highest op_num");
        assert_eq!(wait_all(Vec::new()).unwrap(), None);
    }
}
