//! The Raft logs of all groups of a node, in one redb file: entries keyed by (group, index), and per
//! group the vote, the committed log id and the last purged log id. Every change of them goes through
//! the node's [`LogWriter`] (group commit: the changes of all groups queued during one fsync share the
//! next transaction); openraft is told an append is flushed only once its transaction is durable.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, OptionalSend, RaftLogReader, RaftTypeConfig, StorageError, StorageIOError, Vote,
};
use redb::TableDefinition;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::log_writer::{Change, LogWriter, LOG, STATE};
use crate::types::{GroupId, NodeId};

/// Node-level values (this node's id), keyed by name.
const NODE: TableDefinition<&str, &[u8]> = TableDefinition::new("node");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
pub(crate) const PURGED: &str = "purged";

fn io_err<E: std::fmt::Display>(e: E) -> AnyError {
    AnyError::error(e.to_string())
}

/// The node's redb file. Shared by the log stores of all groups and by the state machines.
#[derive(Clone)]
pub struct RaftDb {
    db: Arc<redb::Database>,
    writer: LogWriter,
}

impl RaftDb {
    pub fn open(path: &std::path::Path) -> Result<RaftDb, String> {
        let db = redb::Database::create(path).map_err(|e| format!("open {}: {e}", path.display()))?;
        let tx = db.begin_write().map_err(|e| e.to_string())?;
        tx.open_table(LOG).map_err(|e| e.to_string())?;
        tx.open_table(STATE).map_err(|e| e.to_string())?;
        tx.open_table(NODE).map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        let db = Arc::new(db);
        let writer = LogWriter::start(Arc::clone(&db))?;
        Ok(RaftDb { db, writer })
    }

    pub fn node_value(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let tx = self.db.begin_read().map_err(|e| e.to_string())?;
        let t = tx.open_table(NODE).map_err(|e| e.to_string())?;
        Ok(t.get(key).map_err(|e| e.to_string())?.map(|v| v.value().to_vec()))
    }

    pub fn set_node_value(&self, key: &str, value: &[u8]) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(|e| e.to_string())?;
        tx.open_table(NODE).map_err(|e| e.to_string())?.insert(key, value).map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())
    }

    pub fn remove_node_value(&self, key: &str) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(|e| e.to_string())?;
        tx.open_table(NODE).map_err(|e| e.to_string())?.remove(key).map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())
    }

    fn state_get<T: DeserializeOwned>(&self, group: GroupId, key: &str) -> Result<Option<T>, AnyError> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let t = tx.open_table(STATE).map_err(io_err)?;
        match t.get((group, key)).map_err(io_err)? {
            Some(v) => Ok(Some(postcard::from_bytes(v.value()).map_err(io_err)?)),
            None => Ok(None),
        }
    }

    fn state_put<T: Serialize>(&self, group: GroupId, key: &str, value: &T) -> Result<(), AnyError> {
        let bytes = postcard::to_allocvec(value).map_err(io_err)?;
        let tx = self.db.begin_write().map_err(io_err)?;
        tx.open_table(STATE).map_err(io_err)?.insert((group, key), bytes.as_slice()).map_err(io_err)?;
        tx.commit().map_err(io_err)
    }

    /// The log id of entry `index` of `group`, if the log still holds it.
    pub fn log_id_at(&self, group: GroupId, index: u64) -> Result<Option<LogId<NodeId>>, AnyError> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let t = tx.open_table(LOG).map_err(io_err)?;
        let Some(v) = t.get((group, index)).map_err(io_err)? else { return Ok(None) };
        // Every entry type starts with its log id (postcard encodes fields in order).
        let (log_id, _): (LogId<NodeId>, &[u8]) = postcard::take_from_bytes(v.value()).map_err(io_err)?;
        Ok(Some(log_id))
    }

    /// A group's value stored by its state machine (e.g. applied membership), keyed by name.
    pub fn group_value<T: DeserializeOwned>(&self, group: GroupId, key: &str) -> Result<Option<T>, AnyError> {
        self.state_get(group, key)
    }

    pub fn set_group_value<T: Serialize>(
        &self,
        group: GroupId,
        key: &str,
        value: &T,
    ) -> Result<(), AnyError> {
        self.state_put(group, key, value)
    }

    /// Durable transactions (fsyncs) committed by the log writer so far.
    pub fn log_commits(&self) -> u64 {
        self.writer.commits()
    }

    /// Removes every log entry and value of a group (its replica was dropped from this node), after
    /// every change of it queued before.
    pub async fn remove_group(&self, group: GroupId) -> Result<(), AnyError> {
        self.writer.change(Change::RemoveGroup { group }).await.map_err(io_err)
    }
}

/// The log of one group.
pub struct LogStore<C> {
    db: RaftDb,
    group: GroupId,
    _c: PhantomData<C>,
}

impl<C> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore { db: self.db.clone(), group: self.group, _c: PhantomData }
    }
}

impl<C> LogStore<C> {
    pub fn new(db: RaftDb, group: GroupId) -> Self {
        LogStore { db, group, _c: PhantomData }
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => *e,
        Bound::Excluded(e) => match e.checked_sub(1) {
            Some(e) => e,
            None => return (1, 0),
        },
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Entry = Entry<C>>,
    Entry<C>: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<NodeId>> {
        let (start, end) = bounds(&range);
        if start > end {
            return Ok(Vec::new());
        }
        let read = || -> Result<Vec<C::Entry>, AnyError> {
            // The overlay first: an append leaves it only after its transaction committed, so what
            // is not in this copy is in the read transaction begun after it.
            let pending = self.db.writer.overlay(self.group, start, end);
            let tx = self.db.db.begin_read().map_err(io_err)?;
            let t = tx.open_table(LOG).map_err(io_err)?;
            let mut found: BTreeMap<u64, C::Entry> = BTreeMap::new();
            for item in t.range((self.group, start)..=(self.group, end)).map_err(io_err)? {
                let (k, v) = item.map_err(io_err)?;
                found.insert(k.value().1, postcard::from_bytes(v.value()).map_err(io_err)?);
            }
            for (index, bytes) in pending {
                found.insert(index, postcard::from_bytes(&bytes).map_err(io_err)?);
            }
            Ok(found.into_values().collect())
        };
        read().map_err(|e| StorageIOError::read_logs(e).into())
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Entry = Entry<C>>,
    Entry<C>: Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<NodeId>> {
        let read = || -> Result<LogState<C>, AnyError> {
            let purged: Option<LogId<NodeId>> = self.db.state_get(self.group, PURGED)?;
            let pending = self.db.writer.overlay(self.group, 0, u64::MAX);
            let tx = self.db.db.begin_read().map_err(io_err)?;
            let t = tx.open_table(LOG).map_err(io_err)?;
            let stored = t.range((self.group, 0)..=(self.group, u64::MAX)).map_err(io_err)?.next_back();
            let stored = match stored {
                Some(item) => {
                    let (k, v) = item.map_err(io_err)?;
                    Some((k.value().1, v.value().to_vec()))
                }
                None => None,
            };
            let newest = match (stored, pending.last()) {
                (Some((i, b)), Some((p, _))) if i > *p => Some(b),
                (_, Some((_, b))) => Some(b.to_vec()),
                (s, None) => s.map(|(_, b)| b),
            };
            let last = match newest {
                Some(bytes) => Some(postcard::from_bytes::<Entry<C>>(&bytes).map_err(io_err)?.log_id),
                None => purged,
            };
            Ok(LogState { last_purged_log_id: purged, last_log_id: last })
        };
        read().map_err(|e| StorageIOError::read_logs(e).into())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let value = postcard::to_allocvec(vote).map_err(|e| StorageIOError::write_vote(io_err(e)))?;
        let change = Change::State { group: self.group, key: VOTE, value };
        self.db.writer.change(change).await.map_err(|e| StorageIOError::write_vote(io_err(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.db.state_get(self.group, VOTE).map_err(|e| StorageIOError::read_vote(e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        // Only a hint for re-applying entries after a restart (a lost value means the node learns the
        // commit index from the leader again), so it need not cost an fsync on every commit.
        let value = postcard::to_allocvec(&committed).map_err(|e| StorageIOError::write(io_err(e)))?;
        let change = Change::State { group: self.group, key: COMMITTED, value };
        self.db.writer.change_lazily(change).map_err(|e| StorageIOError::write(io_err(e)).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let c: Option<Option<LogId<NodeId>>> =
            self.db.state_get(self.group, COMMITTED).map_err(StorageIOError::read)?;
        Ok(c.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        for e in entries {
            encoded.push((
                e.log_id.index,
                postcard::to_allocvec(&e).map_err(|e| StorageIOError::write_logs(io_err(e)))?,
            ));
        }
        // Returns once queued (the entries are readable); the writer thread calls back when durable.
        self.db
            .writer
            .append(self.group, encoded, Box::new(move |result| callback.log_io_completed(result)))
            .map_err(|e| StorageIOError::write_logs(io_err(e)).into())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let change = Change::Truncate { group: self.group, from: log_id.index };
        self.db.writer.change(change).await.map_err(|e| StorageIOError::write_logs(io_err(e)).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let record = postcard::to_allocvec(&log_id).map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        let change = Change::Purge { group: self.group, upto: log_id.index, record };
        self.db.writer.change(change).await.map_err(|e| StorageIOError::write_logs(io_err(e)).into())
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::log_writer::Flushed;
    use crate::types::{ShardCommand, ShardTc};

    fn entry(group: GroupId, index: u64, term: u64) -> Entry<ShardTc> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(ShardCommand {
                op: format!("{group}/{index}/{term}").into_bytes(),
            }),
        }
    }

    fn encoded(group: GroupId, index: u64, term: u64) -> (u64, Vec<u8>) {
        (index, postcard::to_allocvec(&entry(group, index, term)).unwrap())
    }

    fn reopen(path: &std::path::Path) -> RaftDb {
        // The writer thread of the dropped handle releases the file once it drained its queue.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match RaftDb::open(path) {
                Ok(db) => return db,
                Err(e) if e.contains("already open") && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("reopen: {e}"),
            }
        }
    }

    async fn read_all(db: &RaftDb, group: GroupId) -> Vec<Entry<ShardTc>> {
        LogStore::<ShardTc>::new(db.clone(), group).try_get_log_entries(0..).await.unwrap()
    }

    /// Appends of many groups from many threads: each is readable as soon as `append` returns, is
    /// reported flushed once, and after a reopen every entry is there, in order; appends that arrive
    /// during a sync share a transaction.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_of_many_groups_are_durable_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.redb");
        let db = RaftDb::open(&path).unwrap();
        let (groups, per_group) = (24u64, 40u64);
        let (flushed_tx, flushed_rx) = std::sync::mpsc::channel::<(GroupId, u64, bool)>();
        let commits_before = db.log_commits();
        std::thread::scope(|s| {
            for group in 1..=groups {
                let (db, flushed_tx) = (db.clone(), flushed_tx.clone());
                s.spawn(move || {
                    let store = LogStore::<ShardTc>::new(db.clone(), group);
                    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                    for index in 1..=per_group {
                        let tx = flushed_tx.clone();
                        let done: Flushed = Box::new(move |r| tx.send((group, index, r.is_ok())).unwrap());
                        db.writer.append(group, vec![encoded(group, index, 1)], done).unwrap();
                        // Readable at once, flushed or not.
                        let got = rt.block_on(store.clone().try_get_log_entries(index..=index)).unwrap();
                        assert_eq!(got, vec![entry(group, index, 1)]);
                    }
                });
            }
        });
        drop(flushed_tx);
        let mut flushed: Vec<(GroupId, u64, bool)> = flushed_rx.iter().collect();
        flushed.sort_unstable();
        let expected: Vec<(GroupId, u64, bool)> =
            (1..=groups).flat_map(|g| (1..=per_group).map(move |i| (g, i, true))).collect();
        assert_eq!(flushed, expected, "every append reported flushed exactly once");
        let commits = db.log_commits() - commits_before;
        assert!(commits < groups * per_group, "{commits} transactions for {} appends", groups * per_group);

        drop(db);
        let db = reopen(&path);
        for group in 1..=groups {
            let want: Vec<Entry<ShardTc>> = (1..=per_group).map(|i| entry(group, i, 1)).collect();
            assert_eq!(read_all(&db, group).await, want, "group {group}");
            let state = LogStore::<ShardTc>::new(db.clone(), group).get_log_state().await.unwrap();
            assert_eq!(state.last_log_id, Some(entry(group, per_group, 1).log_id));
        }
    }

    /// A truncate queued behind appends of its group removes them (never reordered before them), and
    /// the entries appended after it replace them, also after a reopen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn truncate_and_purge_keep_their_place_in_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.redb");
        let db = RaftDb::open(&path).unwrap();
        let mut store = LogStore::<ShardTc>::new(db.clone(), 7);
        let none: fn() -> Flushed = || Box::new(|r| r.unwrap());
        db.writer.append(7, (1..=10).map(|i| encoded(7, i, 1)).collect(), none()).unwrap();
        store.truncate(entry(7, 6, 1).log_id).await.unwrap();
        db.writer.append(7, (6..=8).map(|i| encoded(7, i, 2)).collect(), none()).unwrap();
        store.purge(entry(7, 2, 1).log_id).await.unwrap();
        let want: Vec<Entry<ShardTc>> =
            (3..=5).map(|i| entry(7, i, 1)).chain((6..=8).map(|i| entry(7, i, 2))).collect();
        assert_eq!(read_all(&db, 7).await, want);
        store.save_vote(&Vote::new(2, 1)).await.unwrap();
        drop(store);
        drop(db);
        let db = reopen(&path);
        let mut store = LogStore::<ShardTc>::new(db.clone(), 7);
        assert_eq!(read_all(&db, 7).await, want);
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(entry(7, 2, 1).log_id));
        assert_eq!(state.last_log_id, Some(entry(7, 8, 2).log_id));
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(2, 1)));
        db.remove_group(7).await.unwrap();
        assert!(read_all(&db, 7).await.is_empty());
        assert_eq!(store.get_log_state().await.unwrap().last_log_id, None);
    }
}
