//! A shard replica and its group's state machine. The replica is a [`LocalShard`] without WAL: the
//! group's Raft log is its operation log. Entries are applied under their log index, so the engine's
//! persisted op_num is a log index, and after a restart openraft re-applies the committed entries after
//! it. A snapshot is the engine's snapshot (a tar of the persisted segments) taken right after a flush,
//! so its last log id is exactly what it holds.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use grape::{CollectionConfig, Error, Result};
use grape_shard::op_codec::decode_operation;
use grape_shard::{LocalShard, ShardOptions};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use parking_lot::RwLock;

use crate::log_store::RaftDb;
use crate::types::{GroupId, NodeId, PeerNode, ShardResponse, ShardTc};

/// The replica of one shard held by this node. Readers take the current shard from `shard`; installing
/// a snapshot swaps it.
pub struct Replica {
    pub group: GroupId,
    dir: PathBuf,
    options: ShardOptions,
    shard: RwLock<Arc<LocalShard>>,
}

impl Replica {
    pub fn open(
        group: GroupId,
        dir: &Path,
        config: CollectionConfig,
        options: ShardOptions,
    ) -> Result<Replica> {
        let shard = LocalShard::open_replica(dir, config, options.clone())?;
        Ok(Replica { group, dir: dir.to_path_buf(), options, shard: RwLock::new(Arc::new(shard)) })
    }

    pub fn shard(&self) -> Arc<LocalShard> {
        Arc::clone(&self.shard.read())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces the replica's data with a snapshot's.
    fn install(&self, bytes: &[u8]) -> Result<()> {
        let incoming = self.dir.with_extension("incoming");
        let outgoing = self.dir.with_extension("outgoing");
        for d in [&incoming, &outgoing] {
            if d.exists() {
                std::fs::remove_dir_all(d).map_err(|e| Error::io(format!("remove {}", d.display()), e))?;
            }
        }
        grape_shard::snapshot::restore(&incoming, &mut Cursor::new(bytes))?;
        let mut current = self.shard.write();
        let config = current.engine().config();
        current.close()?;
        std::fs::rename(&self.dir, &outgoing).map_err(|e| Error::io("move the old replica aside", e))?;
        std::fs::rename(&incoming, &self.dir).map_err(|e| Error::io("move the snapshot in place", e))?;
        grape_shard::files::fsync_dir(self.dir.parent().unwrap_or(Path::new(".")))?;
        *current = Arc::new(LocalShard::open_replica(&self.dir, config, self.options.clone())?);
        drop(current);
        std::fs::remove_dir_all(&outgoing).map_err(|e| Error::io("remove the old replica", e))?;
        Ok(())
    }
}

const MEMBERSHIPS: &str = "memberships";
const SNAPSHOT_LOG_ID: &str = "snapshot_log_id";

fn sm_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::error(e.to_string())).into()
}

pub struct ShardStateMachine {
    replica: Arc<Replica>,
    db: RaftDb,
    applied: Option<LogId<NodeId>>,
    /// Membership entries applied so far (the few of the group's life), oldest first.
    memberships: Vec<StoredMembership<NodeId, PeerNode>>,
    snapshot: Option<(SnapshotMeta<NodeId, PeerNode>, Vec<u8>)>,
}

impl ShardStateMachine {
    /// Recovers the applied state: what the engine persisted. The entries after it are applied again
    /// by openraft from the log.
    pub fn open(replica: Arc<Replica>, db: RaftDb) -> std::result::Result<ShardStateMachine, String> {
        let group = replica.group;
        let persisted = replica.shard().engine().persisted_op();
        let snapshot_log_id: Option<LogId<NodeId>> =
            db.group_value(group, SNAPSHOT_LOG_ID).map_err(|e| e.to_string())?;
        let applied = if persisted == 0 {
            None
        } else if let Some(id) = db.log_id_at(group, persisted).map_err(|e| e.to_string())? {
            Some(id)
        } else if snapshot_log_id.is_some_and(|l| l.index == persisted) {
            snapshot_log_id
        } else {
            return Err(format!("group {group}: no log id for the persisted op {persisted}"));
        };
        let mut memberships: Vec<StoredMembership<NodeId, PeerNode>> =
            db.group_value(group, MEMBERSHIPS).map_err(|e| e.to_string())?.unwrap_or_default();
        memberships.retain(|m| m.log_id().map(|l| l.index) <= applied.map(|l| l.index));
        Ok(ShardStateMachine { replica, db, applied, memberships, snapshot: None })
    }

    fn membership(&self) -> StoredMembership<NodeId, PeerNode> {
        self.memberships.last().cloned().unwrap_or_default()
    }
}

impl RaftStateMachine<ShardTc> for ShardStateMachine {
    type SnapshotBuilder = ShardSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> std::result::Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, PeerNode>), StorageError<NodeId>>
    {
        Ok((self.applied, self.membership()))
    }

    async fn apply<I>(&mut self, entries: I) -> std::result::Result<Vec<ShardResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<ShardTc>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry<ShardTc>> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else { return Ok(Vec::new()) };
        let count = entries.len();
        let mut membership_changed = false;
        let mut writes = Vec::new();
        for (i, e) in entries.into_iter().enumerate() {
            match e.payload {
                EntryPayload::Membership(m) => {
                    self.memberships.push(StoredMembership::new(Some(e.log_id), m));
                    membership_changed = true;
                }
                EntryPayload::Normal(cmd) => writes.push((i, e.log_id.index, cmd.op)),
                EntryPayload::Blank => {}
            }
        }
        if membership_changed {
            let keep = self.memberships.len().saturating_sub(8);
            self.memberships.drain(..keep);
            self.db.set_group_value(self.replica.group, MEMBERSHIPS, &self.memberships).map_err(sm_err)?;
        }
        let shard = self.replica.shard();
        // The engine is synchronous; applying a batch can take a while.
        let results = tokio::task::spawn_blocking(move || {
            writes
                .into_iter()
                .map(|(i, index, bytes)| {
                    let r = decode_operation(&bytes).and_then(|op| shard.apply(index, &op));
                    (i, r)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(sm_err)?;
        let mut out = vec![ShardResponse::default(); count];
        for (i, r) in results {
            match r {
                Ok(()) => {}
                // A closed replica (being dropped) cannot apply: stop the group rather than skip.
                Err(Error::Closed) => return Err(sm_err("replica closed")),
                Err(Error::Io { context, source }) => return Err(sm_err(format!("{context}: {source}"))),
                Err(e) => out[i].error = Some(e.to_string()),
            }
        }
        self.applied = Some(last);
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> ShardSnapshotBuilder {
        // Taken here, where no entry is being applied, so the data is exactly the applied state.
        let shard = self.replica.shard();
        let applied = self.applied;
        let membership = self.membership();
        let taken = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
            shard.flush()?;
            let mut bytes = Vec::new();
            shard.engine().snapshot(&mut bytes)?;
            Ok(bytes)
        })
        .await;
        let data = match taken {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let (Ok(bytes), Some(id)) = (&data, applied) {
            let meta = SnapshotMeta {
                last_log_id: Some(id),
                last_membership: membership.clone(),
                snapshot_id: format!("{}-{}-{}", self.replica.group, id.leader_id.term, id.index),
            };
            if self.db.set_group_value(self.replica.group, SNAPSHOT_LOG_ID, &id).is_ok() {
                self.snapshot = Some((meta, bytes.clone()));
            }
        }
        ShardSnapshotBuilder { group: self.replica.group, applied, membership, data }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> std::result::Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, PeerNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> std::result::Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let replica = Arc::clone(&self.replica);
        let data = bytes.clone();
        tokio::task::spawn_blocking(move || replica.install(&data)).await.map_err(sm_err)?.map_err(sm_err)?;
        self.applied = meta.last_log_id;
        self.memberships = vec![meta.last_membership.clone()];
        self.db.set_group_value(self.replica.group, MEMBERSHIPS, &self.memberships).map_err(sm_err)?;
        if let Some(id) = meta.last_log_id {
            self.db.set_group_value(self.replica.group, SNAPSHOT_LOG_ID, &id).map_err(sm_err)?;
        }
        self.snapshot = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> std::result::Result<Option<Snapshot<ShardTc>>, StorageError<NodeId>> {
        Ok(self.snapshot.as_ref().map(|(meta, bytes)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(bytes.clone())),
        }))
    }
}

pub struct ShardSnapshotBuilder {
    group: GroupId,
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, PeerNode>,
    data: std::result::Result<Vec<u8>, String>,
}

impl RaftSnapshotBuilder<ShardTc> for ShardSnapshotBuilder {
    async fn build_snapshot(&mut self) -> std::result::Result<Snapshot<ShardTc>, StorageError<NodeId>> {
        let bytes = std::mem::replace(&mut self.data, Ok(Vec::new())).map_err(sm_err)?;
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!(
                "{}-{}-{}",
                self.group,
                self.applied.map_or(0, |l| l.leader_id.term),
                self.applied.map_or(0, |l| l.index)
            ),
        };
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
    }
}
