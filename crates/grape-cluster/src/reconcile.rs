//! The reconciler: makes a node hold what the metadata declares (replica groups started and
//! dropped, collections attached and reconfigured, groups led here following their placement, removed
//! peers leaving the metadata group). Level-triggered: it compares state, whatever changed it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::marker::PhantomData;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use grape::{Collection, CollectionConfig, Error, Result};
use grape_collection::ShardAccess;
use grape_shard::ShardOptions;
use openraft::{ChangeMembers, Raft};
use tokio::sync::watch;

use crate::log_store::LogStore;
use crate::meta::MetaView;
use crate::node::{unavailable, NodeInner, ShardGroup};
use crate::replica::{Replica, ShardStateMachine};
use crate::shard_handle::ClusterShard;
use crate::transport::{Network, RemoteFailure, RemoteResult};
use crate::types::{shard_group, GroupId, NodeId, PeerNode, ShardTc, META_GROUP};

pub(crate) async fn reconcile_loop(node: Weak<NodeInner>, mut view: watch::Receiver<MetaView>) {
    loop {
        let changed = tokio::time::timeout(Duration::from_secs(1), view.changed()).await;
        if matches!(changed, Ok(Err(_))) {
            return;
        }
        let Some(node) = node.upgrade() else { return };
        node.reconcile().await;
    }
}

impl NodeInner {
    /// Makes this node hold what the metadata declares: starts replica groups placed here, attaches
    /// collections to the database, applies configuration changes, drops what was deleted.
    pub(crate) async fn reconcile(self: &Arc<Self>) {
        let _one = self.reconcile_lock.lock().await;
        let Some(db) = self.database() else { return };
        let view = self.meta_view.borrow().clone();
        let state = &view.state;
        let mut wanted: HashMap<GroupId, (u64, u32, CollectionConfig, Vec<NodeId>)> = HashMap::new();
        let mut placement: HashMap<GroupId, Vec<NodeId>> = HashMap::new();
        let mut configs: HashMap<String, CollectionConfig> = HashMap::new();
        for (name, c) in &state.collections {
            let config: CollectionConfig = match serde_json::from_str(&c.config) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(collection = %name, "unreadable collection config: {e}");
                    continue;
                }
            };
            // A shard of a dropped shard key has no replicas: its groups are stopped and deleted below.
            for (s, replicas) in c.replicas.iter().enumerate().filter(|(_, r)| !r.is_empty()) {
                placement.insert(shard_group(c.id, s as u32), replicas.clone());
                if replicas.contains(&self.id) {
                    wanted.insert(
                        shard_group(c.id, s as u32),
                        (c.id, s as u32, config.clone(), replicas.clone()),
                    );
                }
            }
            configs.insert(name.clone(), config);
        }
        // Start the groups placed here.
        let mut ok = true;
        for (&group, (cid, shard, config, replicas)) in &wanted {
            if self.groups.lock().contains_key(&group) {
                continue;
            }
            if let Err(e) =
                self.start_group(group, *cid, *shard, config.clone(), replicas, &state.peers).await
            {
                tracing::error!(group, "cannot start shard replica: {e}");
                ok = false;
            }
        }
        // Attach, reconfigure and detach collections.
        for (name, c) in &state.collections {
            let Some(config) = configs.get(name) else { continue };
            let current = self.attached.lock().get(name).cloned();
            match current {
                Some((id, json, replicas)) if id == c.id && replicas == c.replicas => {
                    if json != c.config {
                        let (db2, n, cfg) = (db.clone(), name.clone(), config.clone());
                        match tokio::task::spawn_blocking(move || db2.apply_config(&n, cfg)).await {
                            Ok(Ok(())) => {
                                self.attached.lock().insert(name.clone(), (id, c.config.clone(), replicas));
                            }
                            other => {
                                tracing::error!(collection = %name, "cannot apply config: {other:?}");
                                ok = false;
                            }
                        }
                    }
                }
                _ => {
                    // One handle per shard of the configuration (a dropped shard key's have no replicas).
                    let no_replicas = Vec::new();
                    let handles: Vec<Arc<dyn ShardAccess>> = config
                        .shard_ids()
                        .into_iter()
                        .map(|s| (s as usize, c.replicas.get(s as usize).unwrap_or(&no_replicas)))
                        .map(|(s, replicas)| {
                            let group = shard_group(c.id, s as u32);
                            let local = if replicas.contains(&self.id) {
                                self.groups.lock().get(&group).map(|g| Arc::clone(&g.replica))
                            } else {
                                None
                            };
                            Arc::new(ClusterShard {
                                node: Arc::downgrade(self),
                                group,
                                shard: s as u32,
                                replicas: replicas.clone(),
                                local,
                                linearizable: false,
                            }) as Arc<dyn ShardAccess>
                        })
                        .collect();
                    let dir = self.opts.data_dir.join("cluster").join("collections").join(c.id.to_string());
                    match Collection::with_shards(name, &dir, config.clone(), handles) {
                        Ok(collection) => match db.attach_collection(Arc::new(collection)) {
                            Ok(()) => {
                                self.attached
                                    .lock()
                                    .insert(name.clone(), (c.id, c.config.clone(), c.replicas.clone()));
                            }
                            Err(e) => {
                                tracing::error!(collection = %name, "cannot attach: {e}");
                                ok = false;
                            }
                        },
                        Err(e) => {
                            tracing::error!(collection = %name, "cannot build: {e}");
                            ok = false;
                        }
                    }
                }
            }
        }
        let gone: Vec<String> =
            self.attached.lock().keys().filter(|n| !state.collections.contains_key(*n)).cloned().collect();
        for name in gone {
            let _ = db.detach_collection(&name);
            self.attached.lock().remove(&name);
        }
        // Groups led here follow their placement; the metadata group drops removed peers.
        self.follow_placements(&placement, &state.peers);
        self.drop_removed_peers(&state.removed);
        // Stop and delete replicas no longer placed here: at once when their collection is gone,
        // else once this node is out of the group's membership (or 30 s after it left the placement,
        // should the last membership entry never reach it).
        self.unplaced_since.lock().retain(|g, _| !wanted.contains_key(g));
        let unwanted: Vec<(GroupId, Arc<ShardGroup>)> = self
            .groups
            .lock()
            .iter()
            .filter(|(g, _)| !wanted.contains_key(g))
            .map(|(g, sg)| (*g, Arc::clone(sg)))
            .collect();
        for (group, g) in unwanted {
            if let Some(holders) = placement.get(&group) {
                let member =
                    g.raft.metrics().borrow().membership_config.membership().get_node(&self.id).is_some();
                let since = *self.unplaced_since.lock().entry(group).or_insert_with(Instant::now);
                // Still needed while a joint configuration with this node may be in force: drop only
                // once a holder's committed membership no longer has this node (or after a long grace).
                if member
                    && since.elapsed() < Duration::from_secs(600)
                    && !self.left_group(group, holders).await
                {
                    continue;
                }
            }
            self.unplaced_since.lock().remove(&group);
            self.groups.lock().remove(&group);
            self.forget_group(group, &Arc::downgrade(&g));
            let _ = g.raft.shutdown().await;
            let replica = Arc::clone(&g.replica);
            let removed = tokio::task::spawn_blocking(move || -> Result<()> {
                replica.shard().close()?;
                std::fs::remove_dir_all(replica.dir()).map_err(|e| Error::io("remove replica", e))
            })
            .await;
            if !matches!(removed, Ok(Ok(()))) {
                tracing::warn!(group, "removing a dropped replica failed: {removed:?}");
            }
            if let Err(e) = self.raft_db.remove_group(group).await {
                tracing::warn!(group, "removing a dropped replica's log failed: {e}");
            }
        }
        if ok {
            self.reconciled.send_replace(view.applied);
        }
    }

    /// Whether a node holding `group` reports a committed membership without this node.
    async fn left_group(&self, group: GroupId, holders: &[NodeId]) -> bool {
        for &peer in holders.iter().filter(|&&p| p != self.id) {
            let r: RemoteResult<Option<Vec<NodeId>>> =
                self.remote(peer, "group_members", group, &(), Duration::from_secs(2)).await;
            if let Ok(Some(members)) = r {
                return !members.contains(&self.id);
            }
        }
        false
    }

    /// The members (voters and learners) of a group held here, if its current membership is committed.
    pub(crate) fn committed_members(&self, group: GroupId) -> RemoteResult<Option<Vec<NodeId>>> {
        let g = self.group(group).ok_or(RemoteFailure::UnknownGroup(group))?;
        let m = g.raft.metrics().borrow().clone();
        // Only a voter's committed configuration counts: a fresh learner's empty membership (no log id)
        // would otherwise tell a leaving holder that it may drop what may be the only full copy.
        let config = m.membership_config.log_id().map(|l| l.index);
        let committed = config.is_some() && config <= m.last_applied.map(|l| l.index);
        let voter = m.membership_config.membership().voter_ids().any(|v| v == self.id);
        Ok((committed && voter)
            .then(|| m.membership_config.membership().nodes().map(|(id, _)| *id).collect()))
    }

    /// For every group this node leads whose voters differ from its placement, changes the
    /// membership: new replicas join as learners and catch up (snapshot, then log), then the voter set
    /// is replaced. Runs in the background; the collection serves throughout.
    fn follow_placements(
        self: &Arc<Self>,
        placement: &HashMap<GroupId, Vec<NodeId>>,
        peers: &BTreeMap<NodeId, PeerNode>,
    ) {
        let groups: Vec<(GroupId, Arc<ShardGroup>)> =
            self.groups.lock().iter().map(|(g, sg)| (*g, Arc::clone(sg))).collect();
        for (group, g) in groups {
            let Some(desired) = placement.get(&group) else { continue };
            let membership = {
                let metrics = g.raft.metrics();
                let m = metrics.borrow();
                if m.current_leader != Some(self.id) {
                    continue;
                }
                m.membership_config.membership().clone()
            };
            let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
            let want: BTreeSet<NodeId> = desired.iter().copied().collect();
            if voters == want || membership.get_joint_config().len() > 1 {
                continue;
            }
            if !self.transitions.lock().insert(group) {
                continue;
            }
            let node = Arc::clone(self);
            let learners: Vec<(NodeId, PeerNode)> = want
                .difference(&voters)
                .filter(|n| membership.get_node(n).is_none())
                .filter_map(|n| peers.get(n).map(|p| (*n, p.clone())))
                .collect();
            tokio::spawn(async move {
                let change = async {
                    for (id, peer) in learners {
                        g.raft.add_learner(id, peer, true).await.map_err(|e| e.to_string())?;
                    }
                    g.raft
                        .change_membership(ChangeMembers::ReplaceAllVoters(want), false)
                        .await
                        .map_err(|e| e.to_string())
                };
                match tokio::time::timeout(Duration::from_secs(120), change).await {
                    Ok(Ok(_)) => tracing::info!(group, "replica set changed"),
                    Ok(Err(e)) => tracing::warn!(group, "changing the replica set failed (retried): {e}"),
                    Err(_) => tracing::warn!(group, "changing the replica set timed out (retried)"),
                }
                node.transitions.lock().remove(&group);
            });
        }
    }

    /// On the metadata leader: takes removed peers out of the metadata group's membership.
    fn drop_removed_peers(self: &Arc<Self>, removed: &BTreeSet<NodeId>) {
        let metrics = self.meta.metrics().borrow().clone();
        if metrics.current_leader != Some(self.id) || removed.is_empty() {
            return;
        }
        let membership = metrics.membership_config.membership().clone();
        if membership.get_joint_config().len() > 1 {
            return;
        }
        let gone: BTreeSet<NodeId> = membership
            .nodes()
            .map(|(id, _)| *id)
            .filter(|id| removed.contains(id) && *id != self.id)
            .collect();
        if gone.is_empty() || !self.transitions.lock().insert(META_GROUP) {
            return;
        }
        let node = Arc::clone(self);
        tokio::spawn(async move {
            let voters: BTreeSet<NodeId> = membership.voter_ids().filter(|v| gone.contains(v)).collect();
            let result = async {
                if !voters.is_empty() {
                    node.meta
                        .change_membership(ChangeMembers::RemoveVoters(voters), false)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                node.meta
                    .change_membership(ChangeMembers::RemoveNodes(gone), false)
                    .await
                    .map_err(|e| e.to_string())
            };
            if let Err(e) =
                tokio::time::timeout(Duration::from_secs(60), result).await.unwrap_or(Err("timed out".into()))
            {
                tracing::warn!("removing peers from the metadata group failed (retried): {e}");
            }
            node.transitions.lock().remove(&META_GROUP);
        });
    }

    async fn start_group(
        self: &Arc<Self>,
        group: GroupId,
        collection_id: u64,
        shard: u32,
        config: CollectionConfig,
        replicas: &[NodeId],
        peers: &BTreeMap<NodeId, PeerNode>,
    ) -> Result<()> {
        let dir = self
            .opts
            .data_dir
            .join("cluster")
            .join("collections")
            .join(collection_id.to_string())
            .join(shard.to_string());
        let options = ShardOptions { background: self.opts.background, ..ShardOptions::default() };
        let (db, dir2) = (self.raft_db.clone(), dir.clone());
        let (replica, sm) = tokio::task::spawn_blocking(move || -> Result<_> {
            std::fs::create_dir_all(dir2.parent().unwrap_or(&dir2))
                .map_err(|e| Error::io("create replica dir", e))?;
            let replica = Arc::new(Replica::open(group, &dir2, config, options)?);
            let sm = ShardStateMachine::open(Arc::clone(&replica), db).map_err(Error::Internal)?;
            Ok((replica, sm))
        })
        .await
        .map_err(unavailable)??;
        let network = Network::<ShardTc> { peers: Arc::clone(&self.peers), group, _c: PhantomData };
        let raft = Raft::new(
            self.id,
            Arc::clone(&self.shard_raft_config),
            network,
            LogStore::new(self.raft_db.clone(), group),
            sm,
        )
        .await
        .map_err(unavailable)?;
        if replicas.first() == Some(&self.id) && !raft.is_initialized().await.map_err(unavailable)? {
            let members: BTreeMap<NodeId, PeerNode> =
                replicas.iter().filter_map(|id| peers.get(id).map(|p| (*id, p.clone()))).collect();
            if let Err(e) = raft.initialize(members).await {
                tracing::debug!(group, "initialize: {e}");
            }
        }
        let g = Arc::new(ShardGroup { raft, replica });
        self.watch_group(group, &g);
        self.groups.lock().insert(group, g);
        self.group_added(group);
        Ok(())
    }
}
