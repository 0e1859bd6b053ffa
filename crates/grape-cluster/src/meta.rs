//! The metadata group's state machine: peers, collections with their configurations and the placement
//! of their shards' replicas. Small; persisted whole in the node's redb after every applied batch and
//! sent whole as the group's snapshot. Every change is published on a watch channel, which the node's
//! reconciler follows (level-triggered: it compares the state with what the node holds).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::log_store::RaftDb;
use crate::types::{MetaCommand, MetaRefusal, MetaResponse, MetaTc, NodeId, PeerNode, META_GROUP};

/// A collection as the cluster declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionMeta {
    /// Unique for the cluster's life: the log index of the entry that created it.
    pub id: u64,
    /// The configuration as JSON.
    pub config: String,
    /// For each shard id, the nodes holding a replica (the first is where the group starts). A shard of
    /// a dropped shard key has none (custom sharding never reuses a shard id).
    pub replicas: Vec<Vec<NodeId>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaState {
    pub peers: BTreeMap<NodeId, PeerNode>,
    pub collections: BTreeMap<String, CollectionMeta>,
    /// Peers removed from the cluster: the metadata leader takes them out of the group's membership,
    /// and they may not join again under the same id.
    #[serde(default)]
    pub removed: std::collections::BTreeSet<NodeId>,
}

/// What the state machine publishes: the state after applying up to `applied`.
#[derive(Debug, Clone, Default)]
pub struct MetaView {
    pub applied: u64,
    pub state: Arc<MetaState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Persisted {
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, PeerNode>,
    state: MetaState,
}

const SM_KEY: &str = "meta_sm";

pub struct MetaStateMachine {
    db: RaftDb,
    data: Persisted,
    publish: watch::Sender<MetaView>,
    snapshot: Option<(SnapshotMeta<NodeId, PeerNode>, Vec<u8>)>,
}

fn sm_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::error(e.to_string())).into()
}

/// A 64-bit mix (splitmix64): placement must be the same on every node and in every release.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Rendezvous (highest random weight) placement: the `rf` peers with the highest weight for this shard.
pub fn place(peers: &[NodeId], collection_id: u64, shard: u32, rf: usize) -> Vec<NodeId> {
    let mut ranked: Vec<(u64, NodeId)> =
        peers.iter().map(|&p| (mix(mix(collection_id ^ mix(u64::from(shard))) ^ p), p)).collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked.into_iter().take(rf.max(1)).map(|(_, p)| p).collect()
}

/// Puts first, for each shard in order, the replica that leads the fewest shards so far (`leading`
/// counts them and is updated; rendezvous order breaks ties). A shard group's first replica
/// initializes it and so leads it at first: spreading first replicas spreads the write load.
pub fn lead_evenly(placements: &mut [Vec<NodeId>], leading: &mut BTreeMap<NodeId, usize>) {
    for replicas in placements.iter_mut().filter(|r| !r.is_empty()) {
        let (pos, _) = replicas
            .iter()
            .enumerate()
            .min_by_key(|(i, id)| (leading.get(id).copied().unwrap_or(0), *i))
            .expect("not empty");
        let first = replicas.remove(pos);
        replicas.insert(0, first);
        *leading.entry(first).or_default() += 1;
    }
}

impl MetaStateMachine {
    pub fn open(db: RaftDb) -> Result<(MetaStateMachine, watch::Receiver<MetaView>), String> {
        let data: Persisted =
            db.group_value(META_GROUP, SM_KEY).map_err(|e| e.to_string())?.unwrap_or_default();
        let view =
            MetaView { applied: data.applied.map_or(0, |l| l.index), state: Arc::new(data.state.clone()) };
        let (publish, rx) = watch::channel(view);
        Ok((MetaStateMachine { db, data, publish, snapshot: None }, rx))
    }

    #[allow(clippy::result_large_err)] // openraft's error type
    fn persist_and_publish(&self) -> Result<(), StorageError<NodeId>> {
        self.db.set_group_value(META_GROUP, SM_KEY, &self.data).map_err(sm_err)?;
        self.publish.send_replace(MetaView {
            applied: self.data.applied.map_or(0, |l| l.index),
            state: Arc::new(self.data.state.clone()),
        });
        Ok(())
    }

    fn apply_command(&mut self, index: u64, cmd: MetaCommand) -> MetaResponse {
        let state = &mut self.data.state;
        let error = match cmd {
            MetaCommand::AddPeer { id, node } => {
                if state.removed.contains(&id) {
                    Some(MetaRefusal::BadInput(format!("peer {id} was removed from this cluster")))
                } else {
                    state.peers.insert(id, node);
                    None
                }
            }
            MetaCommand::RemovePeer { id } => {
                state.peers.remove(&id);
                state.removed.insert(id);
                for c in state.collections.values_mut() {
                    for replicas in &mut c.replicas {
                        if replicas.len() > 1 {
                            replicas.retain(|&p| p != id);
                        }
                    }
                }
                None
            }
            MetaCommand::CreateCollection { name, config } => {
                if state.collections.contains_key(&name) {
                    Some(MetaRefusal::AlreadyExists(format!("Collection `{name}`")))
                } else {
                    match serde_json::from_str::<grape::CollectionConfig>(&config) {
                        Err(e) => Some(MetaRefusal::BadInput(format!("collection config: {e}"))),
                        Ok(c) => {
                            let peers: Vec<NodeId> = state.peers.keys().copied().collect();
                            let rf = (c.params.replication_factor as usize).min(peers.len());
                            let mut replicas: Vec<_> =
                                c.shard_ids().into_iter().map(|s| place(&peers, index, s, rf)).collect();
                            lead_evenly(&mut replicas, &mut BTreeMap::new());
                            state.collections.insert(name, CollectionMeta { id: index, config, replicas });
                            None
                        }
                    }
                }
            }
            MetaCommand::DeleteCollection { name } => {
                state.collections.remove(&name);
                None
            }
            MetaCommand::SetReplicas { name, shard, replicas } => {
                match state.collections.get_mut(&name).and_then(|c| c.replicas.get_mut(shard as usize)) {
                    Some(r) if !replicas.is_empty() => {
                        *r = replicas;
                        None
                    }
                    Some(_) => Some(MetaRefusal::BadInput("a shard needs at least one replica".into())),
                    None => Some(MetaRefusal::NotFound(format!(
                        "Shard {shard} of collection `{name}` doesn't exist!"
                    ))),
                }
            }
            MetaCommand::CreateShardKey { name, request } => {
                let peers: Vec<NodeId> = state.peers.keys().copied().collect();
                match state.collections.get_mut(&name) {
                    Some(c) => add_shard_key(c, &request, &peers).err(),
                    None => Some(MetaRefusal::NotFound(format!("Collection `{name}` doesn't exist!"))),
                }
            }
            MetaCommand::DeleteShardKey { name, key } => match state.collections.get_mut(&name) {
                Some(c) => drop_shard_key(c, &key).err(),
                None => Some(MetaRefusal::NotFound(format!("Collection `{name}` doesn't exist!"))),
            },
            MetaCommand::UpdateConfig { name, config } => match state.collections.get_mut(&name) {
                Some(c) => {
                    c.config = config;
                    None
                }
                None => Some(MetaRefusal::NotFound(format!("Collection `{name}` doesn't exist!"))),
            },
        };
        MetaResponse { error }
    }
}

fn refusal(e: grape::Error) -> MetaRefusal {
    match e {
        grape::Error::NotFound(m) => MetaRefusal::NotFound(m),
        grape::Error::AlreadyExists(m) => MetaRefusal::AlreadyExists(m),
        e => MetaRefusal::BadInput(e.to_string().trim_start_matches("Wrong input: ").to_string()),
    }
}

fn config_of(c: &CollectionMeta) -> Result<grape::CollectionConfig, MetaRefusal> {
    serde_json::from_str(&c.config).map_err(|e| MetaRefusal::BadInput(format!("collection config: {e}")))
}

/// Adds a shard key to `c`: the key's shards get the next ids and replicas placed by rendezvous
/// hashing over `peers` (or over the request's `placement`), as a collection's shards are.
fn add_shard_key(c: &mut CollectionMeta, request: &str, peers: &[NodeId]) -> Result<(), MetaRefusal> {
    let request: grape::CreateShardKey = serde_json::from_str(request)
        .map_err(|e| MetaRefusal::BadInput(format!("shard key request: {e}")))?;
    let config = config_of(c)?;
    let (next, ids) = request.apply_to(&config).map_err(refusal)?;
    let allowed: Vec<NodeId> = match &request.placement {
        Some(p) if !p.is_empty() => {
            if let Some(unknown) = p.iter().find(|id| !peers.contains(id)) {
                return Err(MetaRefusal::BadInput(format!("placement: peer {unknown} does not exist")));
            }
            p.clone()
        }
        _ => peers.to_vec(),
    };
    let rf = request.replication_factor.unwrap_or(config.params.replication_factor) as usize;
    let rf = rf.min(allowed.len());
    let mut leading = BTreeMap::new();
    for first in c.replicas.iter().filter_map(|r| r.first()) {
        *leading.entry(*first).or_default() += 1;
    }
    for id in ids {
        // Shard ids are allocated in order and never reused, so `replicas` is indexed by them.
        c.replicas.resize(id as usize, Vec::new());
        let mut placed = [place(&allowed, c.id, id, rf)];
        lead_evenly(&mut placed, &mut leading);
        let [placed] = placed;
        c.replicas.push(placed);
    }
    c.config = serde_json::to_string(&next).map_err(|e| MetaRefusal::BadInput(e.to_string()))?;
    Ok(())
}

/// Drops a shard key of `c`; its shards lose their replicas (every holder deletes its copy).
fn drop_shard_key(c: &mut CollectionMeta, key: &str) -> Result<(), MetaRefusal> {
    let key: grape::ShardKey =
        serde_json::from_str(key).map_err(|e| MetaRefusal::BadInput(format!("shard key: {e}")))?;
    let (next, ids) = grape::drop_shard_key(&config_of(c)?, &key).map_err(refusal)?;
    for id in ids {
        if let Some(r) = c.replicas.get_mut(id as usize) {
            r.clear();
        }
    }
    c.config = serde_json::to_string(&next).map_err(|e| MetaRefusal::BadInput(e.to_string()))?;
    Ok(())
}

impl RaftStateMachine<MetaTc> for MetaStateMachine {
    type SnapshotBuilder = MetaSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, PeerNode>), StorageError<NodeId>> {
        Ok((self.data.applied, self.data.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetaResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<MetaTc>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for entry in entries {
            self.data.applied = Some(entry.log_id);
            out.push(match entry.payload {
                EntryPayload::Blank => MetaResponse::default(),
                EntryPayload::Normal(cmd) => self.apply_command(entry.log_id.index, cmd),
                EntryPayload::Membership(m) => {
                    self.data.membership = StoredMembership::new(Some(entry.log_id), m);
                    MetaResponse::default()
                }
            });
        }
        self.persist_and_publish()?;
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> MetaSnapshotBuilder {
        MetaSnapshotBuilder {
            applied: self.data.applied,
            membership: self.data.membership.clone(),
            bytes: postcard::to_allocvec(&self.data).unwrap_or_default(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, PeerNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let data: Persisted = postcard::from_bytes(&bytes).map_err(sm_err)?;
        self.data = Persisted {
            applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            state: data.state,
        };
        self.snapshot = Some((meta.clone(), bytes));
        self.persist_and_publish()
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<MetaTc>>, StorageError<NodeId>> {
        Ok(self.snapshot.as_ref().map(|(meta, bytes)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(bytes.clone())),
        }))
    }
}

pub struct MetaSnapshotBuilder {
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, PeerNode>,
    bytes: Vec<u8>,
}

impl RaftSnapshotBuilder<MetaTc> for MetaSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<MetaTc>, StorageError<NodeId>> {
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("meta-{}", self.applied.map_or(0, |l| l.index)),
        };
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(std::mem::take(&mut self.bytes))) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_placement_is_even_and_stable() {
        let peers = [11u64, 22, 33];
        let mut per_node = BTreeMap::new();
        for shard in 0..1000 {
            let r = place(&peers, 7, shard, 2);
            assert_eq!(r.len(), 2);
            assert_ne!(r[0], r[1]);
            assert_eq!(r, place(&peers, 7, shard, 2));
            for p in r {
                *per_node.entry(p).or_insert(0usize) += 1;
            }
        }
        // 2000 replicas over 3 nodes: within 5% of the mean.
        let mean = 2000.0 / 3.0;
        for (&p, &n) in &per_node {
            assert!((n as f64 - mean).abs() / mean < 0.05, "node {p}: {n} replicas, {per_node:?}");
        }
    }

    #[test]
    fn first_replicas_are_spread_evenly() {
        let peers = [11u64, 22, 33];
        for (shards, rf) in [(3u32, 3usize), (1000, 3), (1000, 2), (7, 2)] {
            let placed: Vec<_> = (0..shards).map(|s| place(&peers, 5, s, rf)).collect();
            let mut led = placed.clone();
            lead_evenly(&mut led, &mut BTreeMap::new());
            let mut per_node = BTreeMap::new();
            for (a, b) in placed.iter().zip(&led) {
                let (mut a, mut b) = (a.clone(), b.clone());
                *per_node.entry(b[0]).or_insert(0usize) += 1;
                a.sort_unstable();
                b.sort_unstable();
                assert_eq!(a, b, "the same replicas, reordered");
            }
            let (lo, hi) = (per_node.values().min().unwrap(), per_node.values().max().unwrap());
            assert!(hi - lo <= 1, "{shards} shards x {rf}: leaders per node {per_node:?}");
            let mut again = placed.clone();
            lead_evenly(&mut again, &mut BTreeMap::new());
            assert_eq!(again, led, "deterministic");
        }
    }

    #[test]
    fn adding_a_node_moves_only_its_share() {
        let before = [1u64, 2, 3];
        let after = [1u64, 2, 3, 4];
        let moved = (0..1000).filter(|&s| place(&before, 9, s, 1) != place(&after, 9, s, 1)).count();
        // About a quarter of the shards move to the new node, and only to it.
        assert!((200..300).contains(&moved), "{moved}");
        for s in 0..1000 {
            let (a, b) = (place(&before, 9, s, 1), place(&after, 9, s, 1));
            assert!(a == b || b == vec![4]);
        }
    }
}
