//! The Raft logs of all groups of a node, in one redb file: entries keyed by (group, index), and per
//! group the vote, the committed log id and the last purged log id. Every write is a redb transaction
//! committed durably (fsync) before openraft is told it is done.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, OptionalSend, RaftLogReader, RaftTypeConfig, StorageError, StorageIOError, Vote,
};
use redb::{ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::types::{GroupId, NodeId};

const LOG: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("raft_log");
const STATE: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("raft_state");
/// Node-level values (this node's id), keyed by name.
const NODE: TableDefinition<&str, &[u8]> = TableDefinition::new("node");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";

fn io_err<E: std::fmt::Display>(e: E) -> AnyError {
    AnyError::error(e.to_string())
}

/// The node's redb file. Shared by the log stores of all groups and by the state machines.
#[derive(Clone)]
pub struct RaftDb {
    db: Arc<redb::Database>,
}

impl RaftDb {
    pub fn open(path: &std::path::Path) -> Result<RaftDb, String> {
        let db = redb::Database::create(path).map_err(|e| format!("open {}: {e}", path.display()))?;
        let tx = db.begin_write().map_err(|e| e.to_string())?;
        tx.open_table(LOG).map_err(|e| e.to_string())?;
        tx.open_table(STATE).map_err(|e| e.to_string())?;
        tx.open_table(NODE).map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        Ok(RaftDb { db: Arc::new(db) })
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
        self.state_put_with(group, key, value, redb::Durability::Immediate)
    }

    /// `Durability::None` for values that may be lost in a crash (they become durable with the next
    /// durable commit of the file).
    fn state_put_with<T: Serialize>(
        &self,
        group: GroupId,
        key: &str,
        value: &T,
        durability: redb::Durability,
    ) -> Result<(), AnyError> {
        let bytes = postcard::to_allocvec(value).map_err(io_err)?;
        let mut tx = self.db.begin_write().map_err(io_err)?;
        tx.set_durability(durability);
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

    /// Removes every log entry and value of a group (its replica was dropped from this node).
    pub fn remove_group(&self, group: GroupId) -> Result<(), AnyError> {
        let tx = self.db.begin_write().map_err(io_err)?;
        {
            let mut log = tx.open_table(LOG).map_err(io_err)?;
            log.retain_in((group, 0)..=(group, u64::MAX), |_, _| false).map_err(io_err)?;
            let mut state = tx.open_table(STATE).map_err(io_err)?;
            let keys: Vec<String> = state
                .range((group, "")..)
                .map_err(io_err)?
                .map_while(|r| r.ok())
                .take_while(|(k, _)| k.value().0 == group)
                .map(|(k, _)| k.value().1.to_string())
                .collect();
            for k in keys {
                state.remove((group, k.as_str())).map_err(io_err)?;
            }
        }
        tx.commit().map_err(io_err)
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
            let tx = self.db.db.begin_read().map_err(io_err)?;
            let t = tx.open_table(LOG).map_err(io_err)?;
            let mut out = Vec::new();
            for item in t.range((self.group, start)..=(self.group, end)).map_err(io_err)? {
                let (_, v) = item.map_err(io_err)?;
                out.push(postcard::from_bytes(v.value()).map_err(io_err)?);
            }
            Ok(out)
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
            let tx = self.db.db.begin_read().map_err(io_err)?;
            let t = tx.open_table(LOG).map_err(io_err)?;
            let last = match t.range((self.group, 0)..=(self.group, u64::MAX)).map_err(io_err)?.next_back() {
                Some(item) => {
                    let (_, v) = item.map_err(io_err)?;
                    let e: Entry<C> = postcard::from_bytes(v.value()).map_err(io_err)?;
                    Some(e.log_id)
                }
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
        self.db.state_put(self.group, VOTE, vote).map_err(|e| StorageIOError::write_vote(e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.db.state_get(self.group, VOTE).map_err(|e| StorageIOError::read_vote(e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        // Only a hint for re-applying entries after a restart (a lost value means the node learns the
        // commit index from the leader again), so it need not cost an fsync on every commit.
        self.db
            .state_put_with(self.group, COMMITTED, &committed, redb::Durability::None)
            .map_err(|e| StorageIOError::write(e).into())
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
        let db = self.db.clone();
        let group = self.group;
        // redb has one writer at a time and fsyncs on commit: keep that off the async workers.
        let result = tokio::task::spawn_blocking(move || -> Result<(), AnyError> {
            let tx = db.db.begin_write().map_err(io_err)?;
            {
                let mut t = tx.open_table(LOG).map_err(io_err)?;
                for (index, bytes) in &encoded {
                    t.insert((group, *index), bytes.as_slice()).map_err(io_err)?;
                }
            }
            tx.commit().map_err(io_err)
        })
        .await
        .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let remove = || -> Result<(), AnyError> {
            let tx = self.db.db.begin_write().map_err(io_err)?;
            tx.open_table(LOG)
                .map_err(io_err)?
                .retain_in((self.group, log_id.index)..=(self.group, u64::MAX), |_, _| false)
                .map_err(io_err)?;
            tx.commit().map_err(io_err)
        };
        remove().map_err(|e| StorageIOError::write_logs(e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let remove = || -> Result<(), AnyError> {
            let bytes = postcard::to_allocvec(&log_id).map_err(io_err)?;
            let tx = self.db.db.begin_write().map_err(io_err)?;
            {
                tx.open_table(STATE)
                    .map_err(io_err)?
                    .insert((self.group, PURGED), bytes.as_slice())
                    .map_err(io_err)?;
                tx.open_table(LOG)
                    .map_err(io_err)?
                    .retain_in((self.group, 0)..=(self.group, log_id.index), |_, _| false)
                    .map_err(io_err)?;
            }
            tx.commit().map_err(io_err)
        };
        remove().map_err(|e| StorageIOError::write_logs(e).into())
    }
}
