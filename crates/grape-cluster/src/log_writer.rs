//! Group commit of the Raft logs of a node: one writer thread owns every change of the logs (and of
//! the per-group vote, committed and purged ids), takes all changes queued while its last commit was
//! syncing, writes them in ONE redb transaction with one fsync, then completes them.
//!
//! Invariants (what openraft's `RaftLogStorage` asks for, docs/format.md "Raft log"):
//! 1. An append is reported flushed (its `LogFlushed` callback) only after the transaction holding it
//!    committed durably. Until then its entries are readable from the in-memory overlay (`Pending`),
//!    so log readers see every append that returned.
//! 2. Changes are written in the order they were submitted (one FIFO queue, one thread), so an append
//!    followed by a truncate of the same group never reorders; truncate, purge, vote and group removal
//!    are awaited by their callers (done when durable).
//! 3. A failed transaction fails every change it held (each caller learns the error, none is told
//!    "flushed").

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use redb::{ReadableTable, TableDefinition};

use crate::types::GroupId;

pub(crate) const LOG: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("raft_log");
pub(crate) const STATE: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("raft_state");

/// At most this many changes go into one transaction (bounds the latency of the first of them).
const MAX_BATCH: usize = 1024;

/// Called once with the outcome of an append (from the writer thread).
pub(crate) type Flushed = Box<dyn FnOnce(io::Result<()>) + Send>;

/// A change of the Raft tables other than an append.
pub(crate) enum Change {
    /// Removes the entries of `group` from `from` on.
    Truncate { group: GroupId, from: u64 },
    /// Records the purged log id (`record`, encoded) and removes the entries up to `upto`.
    Purge { group: GroupId, upto: u64, record: Vec<u8> },
    /// Sets a per-group value (vote, committed).
    State { group: GroupId, key: &'static str, value: Vec<u8> },
    /// Removes every entry and value of a group.
    RemoveGroup { group: GroupId },
}

enum Job {
    Append {
        group: GroupId,
        seq: u64,
        entries: Vec<(u64, Arc<[u8]>)>,
        flushed: Flushed,
    },
    /// `done` is `None` for a change that need not be durable at once (it becomes durable with the
    /// next durable commit): the transaction holding only such changes is not synced.
    Change {
        change: Change,
        done: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    },
}

/// Appended entries not yet durable, by group and index, with the sequence number of their append.
type Pending = Mutex<HashMap<GroupId, BTreeMap<u64, (u64, Arc<[u8]>)>>>;

/// The node's log writer: submits changes to the writer thread. The thread stops once every clone
/// is dropped (after writing what was queued).
#[derive(Clone)]
pub(crate) struct LogWriter {
    tx: crossbeam_channel::Sender<Job>,
    pending: Arc<Pending>,
    seq: Arc<AtomicU64>,
    /// Durable transactions (fsyncs) committed so far (several appends share one when they arrive
    /// during a sync).
    commits: Arc<AtomicU64>,
}

fn stopped() -> String {
    "the Raft log writer stopped".to_string()
}

impl LogWriter {
    pub(crate) fn start(db: Arc<redb::Database>) -> Result<LogWriter, String> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let pending: Arc<Pending> = Arc::default();
        let commits = Arc::new(AtomicU64::new(0));
        let (p, c) = (Arc::clone(&pending), Arc::clone(&commits));
        std::thread::Builder::new()
            .name("grape-raft-log".into())
            .spawn(move || run(&db, &rx, &p, &c))
            .map_err(|e| format!("start the Raft log writer: {e}"))?;
        Ok(LogWriter { tx, pending, seq: Arc::new(AtomicU64::new(0)), commits })
    }

    /// Queues an append; its entries are readable (through [`LogWriter::overlay`]) when this returns,
    /// `flushed` is called once they are durable (or failed).
    pub(crate) fn append(
        &self,
        group: GroupId,
        entries: Vec<(u64, Vec<u8>)>,
        flushed: Flushed,
    ) -> Result<(), String> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let entries: Vec<(u64, Arc<[u8]>)> = entries.into_iter().map(|(i, b)| (i, Arc::from(b))).collect();
        {
            let mut pending = self.pending.lock();
            let log = pending.entry(group).or_default();
            for (index, bytes) in &entries {
                log.insert(*index, (seq, Arc::clone(bytes)));
            }
        }
        self.tx.send(Job::Append { group, seq, entries, flushed }).map_err(|e| {
            let Job::Append { group, seq, entries, .. } = e.into_inner() else { unreachable!() };
            forget(&self.pending, group, seq, &entries);
            stopped()
        })
    }

    /// Applies a change durably, after everything submitted before it.
    pub(crate) async fn change(&self, change: Change) -> Result<(), String> {
        let (done, rx) = tokio::sync::oneshot::channel();
        self.tx.send(Job::Change { change, done: Some(done) }).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Queues a change that may be lost in a crash (it is written with the next batch and becomes
    /// durable with the next durable commit).
    pub(crate) fn change_lazily(&self, change: Change) -> Result<(), String> {
        self.tx.send(Job::Change { change, done: None }).map_err(|_| stopped())
    }

    /// How many durable transactions (fsyncs) the writer committed.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// The not yet durable entries of `group` with an index in `start..=end`.
    pub(crate) fn overlay(&self, group: GroupId, start: u64, end: u64) -> Vec<(u64, Arc<[u8]>)> {
        let pending = self.pending.lock();
        match pending.get(&group) {
            Some(log) => log.range(start..=end).map(|(i, (_, b))| (*i, Arc::clone(b))).collect(),
            None => Vec::new(),
        }
    }
}

/// Drops the overlay entries of one append (durable now, or failed).
fn forget(pending: &Pending, group: GroupId, seq: u64, entries: &[(u64, Arc<[u8]>)]) {
    let mut pending = pending.lock();
    if let Some(log) = pending.get_mut(&group) {
        for (index, _) in entries {
            if log.get(index).is_some_and(|(s, _)| *s == seq) {
                log.remove(index);
            }
        }
        if log.is_empty() {
            pending.remove(&group);
        }
    }
}

fn run(db: &redb::Database, rx: &crossbeam_channel::Receiver<Job>, pending: &Pending, commits: &AtomicU64) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let durable = batch.iter().any(|j| !matches!(j, Job::Change { done: None, .. }));
        let result = write(db, &batch, durable);
        if durable {
            commits.fetch_add(1, Ordering::Relaxed);
        }
        for job in batch {
            match job {
                Job::Append { group, seq, entries, flushed } => {
                    forget(pending, group, seq, &entries);
                    flushed(result.clone().map_err(io::Error::other));
                }
                Job::Change { done: Some(done), .. } => {
                    let _ = done.send(result.clone());
                }
                Job::Change { done: None, .. } => {
                    if let Err(e) = &result {
                        tracing::warn!("a lazily written Raft value was not written: {e}");
                    }
                }
            }
        }
    }
}

/// Writes a batch in one transaction.
fn write(db: &redb::Database, batch: &[Job], durable: bool) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let mut tx = db.begin_write().map_err(|x| e(&x))?;
    if !durable {
        tx.set_durability(redb::Durability::None);
    }
    {
        let mut log = tx.open_table(LOG).map_err(|x| e(&x))?;
        let mut state = tx.open_table(STATE).map_err(|x| e(&x))?;
        for job in batch {
            match job {
                Job::Append { group, entries, .. } => {
                    for (index, bytes) in entries {
                        log.insert((*group, *index), &bytes[..]).map_err(|x| e(&x))?;
                    }
                }
                Job::Change { change, .. } => match change {
                    Change::Truncate { group, from } => {
                        log.retain_in((*group, *from)..=(*group, u64::MAX), |_, _| false)
                            .map_err(|x| e(&x))?;
                    }
                    Change::Purge { group, upto, record } => {
                        state
                            .insert((*group, crate::log_store::PURGED), record.as_slice())
                            .map_err(|x| e(&x))?;
                        log.retain_in((*group, 0)..=(*group, *upto), |_, _| false).map_err(|x| e(&x))?;
                    }
                    Change::State { group, key, value } => {
                        state.insert((*group, *key), value.as_slice()).map_err(|x| e(&x))?;
                    }
                    Change::RemoveGroup { group } => {
                        log.retain_in((*group, 0)..=(*group, u64::MAX), |_, _| false).map_err(|x| e(&x))?;
                        let keys: Vec<String> = state
                            .range((*group, "")..)
                            .map_err(|x| e(&x))?
                            .map_while(|r| r.ok())
                            .take_while(|(k, _)| k.value().0 == *group)
                            .map(|(k, _)| k.value().1.to_string())
                            .collect();
                        for k in keys {
                            state.remove((*group, k.as_str())).map_err(|x| e(&x))?;
                        }
                    }
                },
            }
        }
    }
    tx.commit().map_err(|x| e(&x))
}
