//! [`NodeHandle`]: what a node reports of itself and the cluster (`GET /cluster`, `/metrics`,
//! `GET /collections/{c}/cluster`) and the operator's changes (shard replicas, peer removal).

use std::sync::Arc;
use std::time::{Duration, Instant};

use grape::{Error, Result};

use crate::node::{chrono_now, NodeInner, ShardGroup};
use crate::transport::{RemoteFailure, RemoteResult};
use crate::types::{shard_group, GroupId, MetaCommand, NodeId};

/// How long a replica change waits for a new replica to join its group before it gives up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Status of a node and its view of the cluster (what `GET /cluster` reports).
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) inner: Arc<NodeInner>,
}

impl NodeHandle {
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// Qdrant's `GET /cluster` result.
    pub fn cluster_status(&self) -> serde_json::Value {
        let m = self.inner.meta.metrics().borrow().clone();
        let view = self.inner.meta_view.borrow().clone();
        let peers: serde_json::Map<String, serde_json::Value> = view
            .state
            .peers
            .iter()
            .map(|(id, p)| {
                (id.to_string(), serde_json::json!({ "uri": format!("{}/", p.p2p.trim_end_matches('/')) }))
            })
            .collect();
        let role = match m.state {
            openraft::ServerState::Leader => "Leader",
            openraft::ServerState::Candidate => "Candidate",
            openraft::ServerState::Follower => "Follower",
            openraft::ServerState::Learner => "Learner",
            openraft::ServerState::Shutdown => "Shutdown",
        };
        let is_voter = m.membership_config.membership().voter_ids().any(|v| v == self.inner.id);
        let commit = m.last_applied.map_or(0, |l| l.index);
        serde_json::json!({
            "status": "enabled",
            "peer_id": self.inner.id,
            "peers": peers,
            "raft_info": {
                "term": m.current_term,
                "commit": commit,
                "pending_operations": m.last_log_index.unwrap_or(0).saturating_sub(commit),
                "leader": m.current_leader,
                "role": role,
                "is_voter": is_voter,
            },
            "consensus_thread_status": {
                "consensus_thread_status": if m.running_state.is_ok() { "working" } else { "stopped" },
                "last_update": chrono_now(),
            },
            "message_send_failures": {},
        })
    }

    /// Qdrant's `GET /cluster/telemetry` result (`DistributedTelemetryData`) as this node sees the
    /// cluster: every collection's shards with the replicas the metadata places (points and status of
    /// the ones held here), and the peers. Other peers are not polled, so only this node is reported
    /// `responsive` with its consensus details; `version` is what it reports as its version.
    pub fn cluster_telemetry(&self, version: &str) -> serde_json::Value {
        let m = self.inner.meta.metrics().borrow().clone();
        let view = self.inner.meta_view.borrow().clone();
        let commit = m.last_applied.map_or(0, |l| l.index);
        let role = match m.state {
            openraft::ServerState::Leader => Some("Leader"),
            openraft::ServerState::Candidate => Some("Candidate"),
            openraft::ServerState::Follower | openraft::ServerState::Learner => Some("Follower"),
            openraft::ServerState::Shutdown => None,
        };
        let peers: serde_json::Map<String, serde_json::Value> = view
            .state
            .peers
            .iter()
            .map(|(&id, p)| {
                let uri = format!("{}/", p.p2p.trim_end_matches('/'));
                let info = if id == self.inner.id {
                    serde_json::json!({
                        "uri": uri,
                        "responsive": true,
                        "details": {
                            "version": version,
                            "role": role,
                            "is_voter": m.membership_config.membership().voter_ids().any(|v| v == id),
                            "term": m.current_term,
                            "commit": commit,
                            "num_pending_operations": m.last_log_index.unwrap_or(0).saturating_sub(commit),
                            "consensus_thread_status": {
                                "consensus_thread_status": if m.running_state.is_ok() { "working" } else { "stopped" },
                                "last_update": chrono_now(),
                            },
                        },
                    })
                } else {
                    serde_json::json!({ "uri": uri, "responsive": false, "details": null })
                };
                (id.to_string(), info)
            })
            .collect();
        let collections: serde_json::Map<String, serde_json::Value> = view
            .state
            .collections
            .iter()
            .map(|(name, c)| {
                let config: Option<grape::CollectionConfig> = serde_json::from_str(&c.config).ok();
                let shards: Vec<serde_json::Value> = c
                    .replicas
                    .iter()
                    .enumerate()
                    .filter(|(_, replicas)| !replicas.is_empty())
                    .map(|(shard, replicas)| {
                        let held = self.inner.groups.lock().get(&shard_group(c.id, shard as u32)).cloned();
                        let mut sorted = replicas.clone();
                        sorted.sort_unstable();
                        let replicas: Vec<serde_json::Value> = sorted
                            .iter()
                            .map(|&peer| match (&held, peer == self.inner.id) {
                                (Some(g), true) => {
                                    let shard = g.replica.shard();
                                    serde_json::json!({
                                        "peer_id": peer,
                                        "state": "Active",
                                        "status": if shard.is_optimizing() { "yellow" } else { "green" },
                                        "num_points": shard.engine().count(None),
                                    })
                                }
                                (None, true) => {
                                    serde_json::json!({ "peer_id": peer, "state": "Initializing" })
                                }
                                (_, false) => serde_json::json!({ "peer_id": peer, "state": "Active" }),
                            })
                            .collect();
                        let mut info = serde_json::json!({ "id": shard, "replicas": replicas });
                        if let Some(key) = config.as_ref().and_then(|cfg| cfg.shard_keys.key_of(shard as u32))
                        {
                            info["key"] = serde_json::json!(key);
                        }
                        info
                    })
                    .collect();
                (name.clone(), serde_json::json!({ "id": name, "shards": shards }))
            })
            .collect();
        serde_json::json!({
            "collections": collections,
            "cluster": {
                "enabled": true,
                "number_of_peers": view.state.peers.len(),
                "peers": peers,
            },
        })
    }

    /// Figures of this node for `/metrics`: peers, metadata Raft state, replicas held and led.
    pub fn metrics(&self) -> grape::ClusterMetrics {
        let m = self.inner.meta.metrics().borrow().clone();
        let commit = m.last_applied.map_or(0, |l| l.index);
        let groups: Vec<Arc<ShardGroup>> = self.inner.groups.lock().values().cloned().collect();
        let led =
            groups.iter().filter(|g| g.raft.metrics().borrow().current_leader == Some(self.inner.id)).count();
        grape::ClusterMetrics {
            peers: self.inner.meta_view.borrow().state.peers.len() as u64,
            term: m.current_term,
            commit,
            pending_operations: m.last_log_index.unwrap_or(0).saturating_sub(commit),
            is_leader: m.current_leader == Some(self.inner.id),
            is_voter: m.membership_config.membership().voter_ids().any(|v| v == self.inner.id),
            shard_replicas: groups.len() as u64,
            shard_leaders: led as u64,
        }
    }

    /// Qdrant's `GET /collections/{name}/cluster` result: shards held here, shards held elsewhere.
    pub fn collection_cluster_info(&self, name: &str) -> Result<serde_json::Value> {
        let view = self.inner.meta_view.borrow().clone();
        let c = view
            .state
            .collections
            .get(name)
            .ok_or_else(|| Error::not_found(format!("Collection `{name}` doesn't exist!")))?;
        let config: grape::CollectionConfig =
            serde_json::from_str(&c.config).map_err(|e| Error::Internal(e.to_string()))?;
        let mut local = Vec::new();
        let mut remote = Vec::new();
        for (shard, replicas) in c.replicas.iter().enumerate() {
            let group = shard_group(c.id, shard as u32);
            let held = self.inner.groups.lock().get(&group).cloned();
            let key = config.shard_keys.key_of(shard as u32);
            for &peer in replicas {
                let mut info = if peer == self.inner.id {
                    let (points, state) = match &held {
                        Some(g) => (g.replica.shard().engine().count(None), "Active"),
                        None => (0, "Initializing"),
                    };
                    serde_json::json!({ "shard_id": shard, "points_count": points, "state": state })
                } else {
                    serde_json::json!({ "shard_id": shard, "peer_id": peer, "state": "Active" })
                };
                if let Some(key) = key {
                    info["shard_key"] = serde_json::json!(key);
                }
                if peer == self.inner.id {
                    local.push(info);
                } else {
                    remote.push(info);
                }
            }
        }
        Ok(serde_json::json!({
            "peer_id": self.inner.id,
            "shard_count": c.replicas.iter().filter(|r| !r.is_empty()).count(),
            "local_shards": local,
            "remote_shards": remote,
            "shard_transfers": [],
        }))
    }

    /// Gives `shard` of `collection` a replica on `add` and/or takes away the one on `remove`. Returns
    /// once the new placement is committed and applied here; the shard's group then follows it.
    pub fn change_replicas(
        &self,
        collection: &str,
        shard: u32,
        add: Option<NodeId>,
        remove: Option<NodeId>,
    ) -> Result<()> {
        let view = self.inner.meta_view.borrow().clone();
        let c = view
            .state
            .collections
            .get(collection)
            .ok_or_else(|| Error::not_found(format!("Collection `{collection}` doesn't exist!")))?;
        let current = c.replicas.get(shard as usize).filter(|r| !r.is_empty()).cloned().ok_or_else(|| {
            Error::bad_input(format!("Shard {shard} does not exist in collection `{collection}`"))
        })?;
        let group = shard_group(c.id, shard);
        let mut replicas = current.clone();
        if let Some(to) = add {
            if !view.state.peers.contains_key(&to) {
                return Err(Error::bad_input(format!("Peer {to} does not exist")));
            }
            if replicas.contains(&to) {
                return Err(Error::bad_input(format!("Shard {shard} is already on peer {to}")));
            }
            replicas.push(to);
        }
        if let Some(from) = remove {
            if !replicas.contains(&from) {
                return Err(Error::bad_input(format!("Shard {shard} is not on peer {from}")));
            }
            replicas.retain(|&p| p != from);
            if replicas.is_empty() {
                return Err(Error::bad_input(format!("Cannot drop the last replica of shard {shard}")));
            }
        }
        // The first replica of a placement initializes the group when it has not joined one, so a
        // placement may only lead with a replica that is already a voter of the group: moving a sole
        // replica first adds the new one beside it and waits until it has joined, then drops the old.
        let first = replicas[0];
        let new_first = !current.contains(&first);
        if new_first {
            let mut both = current.clone();
            both.push(first);
            let cmd = MetaCommand::SetReplicas { name: collection.to_string(), shard, replicas: both };
            self.inner.commit_meta(cmd)?;
        }
        self.wait_until_joined(first, group, shard, new_first)?;
        let cmd = MetaCommand::SetReplicas { name: collection.to_string(), shard, replicas };
        self.inner.commit_meta(cmd)
    }

    /// Waits until `node` is a voter of `group` with a committed membership (asked of the node itself);
    /// a replica just added is one once it has caught up. Unless `strict`, a node that does not answer
    /// counts as joined: it was a replica before this change (it may be down), so it has joined once.
    fn wait_until_joined(&self, node: NodeId, group: GroupId, shard: u32, strict: bool) -> Result<()> {
        let inner = &self.inner;
        let deadline = Instant::now() + JOIN_TIMEOUT;
        loop {
            let answer: RemoteResult<Option<Vec<NodeId>>> = if node == inner.id {
                inner.committed_members(group)
            } else {
                inner.block(inner.remote(node, "group_members", group, &(), Duration::from_secs(2)))
            };
            match answer {
                Ok(Some(_)) => return Ok(()),
                Ok(None) | Err(RemoteFailure::UnknownGroup(_)) => {}
                Err(_) if !strict => return Ok(()),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(Error::Unavailable(format!(
                    "the replica of shard {shard} on peer {node} has not joined its group yet (still catching \
                     up?); the shard keeps its current replicas, retry the change later"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `DELETE /cluster/peer/{id}`: removes a peer from the cluster. Its replicas of shards that have
    /// other replicas go away with it; a peer holding the only replica of a shard is refused unless
    /// `force` (those shards then stay unavailable until the peer's data is recovered elsewhere).
    pub fn remove_peer(&self, id: NodeId, force: bool) -> Result<()> {
        let view = self.inner.meta_view.borrow().clone();
        if !view.state.peers.contains_key(&id) {
            return Err(Error::not_found(format!("Peer {id} doesn't exist")));
        }
        let only_copies: Vec<String> = view
            .state
            .collections
            .iter()
            .flat_map(|(name, c)| {
                c.replicas
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.as_slice() == [id])
                    .map(move |(s, _)| format!("{name}/{s}"))
            })
            .collect();
        if !only_copies.is_empty() && !force {
            return Err(Error::bad_input(format!(
                "Cannot remove peer {id}: it holds the only replica of shards {}; move them first or use force",
                only_copies.join(", ")
            )));
        }
        self.inner.commit_meta(MetaCommand::RemovePeer { id })
    }

    /// The leader of a shard's group as this node knows it (tests, tools).
    pub async fn shard_leader(&self, collection: &str, shard: u32) -> Option<NodeId> {
        let view = self.inner.meta_view.borrow().clone();
        let group = shard_group(view.state.collections.get(collection)?.id, shard);
        let g = self.inner.groups.lock().get(&group).cloned()?;
        g.raft.current_leader().await
    }

    /// The term of a shard's group as this node knows it (tests, tools).
    pub fn shard_term(&self, collection: &str, shard: u32) -> Option<u64> {
        let view = self.inner.meta_view.borrow().clone();
        let group = shard_group(view.state.collections.get(collection)?.id, shard);
        let g = self.inner.groups.lock().get(&group).cloned()?;
        let term = g.raft.metrics().borrow().current_term;
        Some(term)
    }

    /// Log index applied by this node's replica of a shard (0 before any); `None` when the node holds
    /// no replica of it (tests, tools).
    pub fn shard_applied(&self, collection: &str, shard: u32) -> Option<u64> {
        let view = self.inner.meta_view.borrow().clone();
        let group = shard_group(view.state.collections.get(collection)?.id, shard);
        let g = self.inner.groups.lock().get(&group).cloned()?;
        let applied = Some(g.raft.metrics().borrow().last_applied.map_or(0, |l| l.index));
        applied
    }

    /// The nodes holding each shard of a collection.
    pub fn placement(&self, collection: &str) -> Option<Vec<Vec<NodeId>>> {
        self.inner.meta_view.borrow().state.collections.get(collection).map(|c| c.replicas.clone())
    }

    /// Durable transactions (one fsync each) this node's Raft log writer committed so far: appends of
    /// all groups that arrive while one is syncing share the next (tools, benchmarks).
    pub fn raft_log_commits(&self) -> u64 {
        self.inner.raft_db.log_commits()
    }

    pub fn metadata_leader(&self) -> Option<NodeId> {
        self.inner.meta.metrics().borrow().current_leader
    }

    pub fn members(&self) -> Vec<NodeId> {
        self.inner.meta_view.borrow().state.peers.keys().copied().collect()
    }
}
