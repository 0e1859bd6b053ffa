//! Node-level heartbeats of the shard groups. A node holds hundreds of shard groups; openraft's own
//! heartbeats and election timers would cost every group a timer, a wake-up of its Raft core and, for a
//! leader, one RPC per follower every heartbeat interval. Instead the shard groups run with openraft's
//! heartbeats and elections switched off, and one ticker per node (every `heartbeat_ms`):
//!
//! - sends every peer ONE [`Beat`] listing the groups led here that have it as a member, with their
//!   terms; the peer keeps those groups' election deadlines fresh and answers which of them it sees
//!   differently (another leader or term, e.g. after a restart or a missed election): those get a real
//!   openraft heartbeat (`trigger().heartbeat()`), which teaches the follower its leader or the leader
//!   a newer term. Groups with a follower behind the leader's log for two ticks (a follower that was
//!   down) get one as well, which restarts their replication;
//! - starts an election (`trigger().elect()`) in every group held here as a voter whose deadline passed:
//!   neither a beat nor an accepted AppendEntries from a leader for a randomized election timeout, as
//!   openraft's own timer would.
//!
//! openraft's own tick is off for shard groups; a leader no longer a voter of its group (a membership
//! change removed it) gets it back, which makes it step down.
//!
//! Raft's safety does not depend on any of this timing (openraft still decides every vote, and a voter
//! refuses to vote within the leader lease of its last append from a leader); it decides only when
//! elections start. A group's Raft core is woken only by writes, elections, and the rare explicit
//! heartbeat, so an idle node costs little whatever its number of groups.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use openraft::ServerState;
use parking_lot::Mutex;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::node::{NodeInner, ShardGroup};
use crate::transport::RemoteResult;
use crate::types::{GroupId, NodeId, META_GROUP};

/// Message kind of a beat on the internal service.
pub const BEAT: &str = "beat";

/// One beat from a leader's node to a peer: the groups the sender leads with the peer as a member.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Beat {
    pub(crate) from: NodeId,
    /// (group, the leader's term).
    pub(crate) groups: Vec<(GroupId, u64)>,
}

/// The node's election deadlines and replication watch.
#[derive(Default)]
pub(crate) struct Beats {
    /// When each group held here as a voter (and not led here) may start an election.
    deadlines: Mutex<HashMap<GroupId, Instant>>,
    /// Groups led here: each follower's matched index at the previous tick, when behind the log.
    behind: Mutex<HashMap<(GroupId, NodeId), u64>>,
}

/// Whether `id` votes in `membership` (without `voter_ids`, which collects every voter into a new set:
/// most of an idle node's CPU with a thousand groups).
fn is_voter(membership: &openraft::Membership<NodeId, crate::types::PeerNode>, id: NodeId) -> bool {
    membership.get_joint_config().iter().any(|c| c.contains(&id))
}

pub(crate) async fn beat_loop(node: Weak<NodeInner>) {
    let Some(period) = node.upgrade().map(|n| Duration::from_millis(n.opts.heartbeat_ms.max(1))) else {
        return;
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(node) = node.upgrade() else { return };
        node.beat_tick(period).await;
    }
}

impl NodeInner {
    fn election_deadline(&self, now: Instant) -> Instant {
        let (min, max) = self.opts.election_timeout_ms;
        now + Duration::from_millis(rand::thread_rng().gen_range(min..max.max(min + 1)))
    }

    /// One tick: elections where a deadline passed, beats to every peer, heartbeats where needed.
    async fn beat_tick(self: &Arc<Self>, timeout: Duration) {
        let now = Instant::now();
        let groups: Vec<(GroupId, Arc<ShardGroup>)> =
            self.groups.lock().iter().map(|(g, sg)| (*g, Arc::clone(sg))).collect();
        let mut beats: BTreeMap<NodeId, Vec<(GroupId, u64)>> = BTreeMap::new();
        let mut behind_twice: Vec<(GroupId, NodeId)> = Vec::new();
        let mut elect: Vec<Arc<ShardGroup>> = Vec::new();
        {
            let mut deadlines = self.beats.deadlines.lock();
            let mut behind = self.beats.behind.lock();
            let mut still_behind = HashMap::new();
            for (group, g) in &groups {
                let metrics = g.raft.metrics();
                let m = metrics.borrow();
                let membership = m.membership_config.membership();
                if m.state == ServerState::Leader {
                    deadlines.remove(group);
                    if !is_voter(membership, self.id) {
                        // Removed from its group: openraft's tick lets it step down once the change
                        // is applied.
                        g.raft.runtime_config().tick(true);
                    }
                    for (&id, _) in membership.nodes().filter(|(id, _)| **id != self.id) {
                        beats.entry(id).or_default().push((*group, m.current_term));
                    }
                    let last = m.last_log_index.unwrap_or(0);
                    for (&id, matched) in m.replication.iter().flatten().filter(|(id, _)| **id != self.id) {
                        let matched = matched.map_or(0, |l| l.index);
                        if matched < last {
                            if behind.get(&(*group, id)) == Some(&matched) {
                                behind_twice.push((*group, id));
                            }
                            still_behind.insert((*group, id), matched);
                        }
                    }
                } else if is_voter(membership, self.id) {
                    // The only voter (every configuration of a joint membership is just this node).
                    let alone = membership.get_joint_config().iter().all(|c| c.iter().all(|&v| v == self.id));
                    let deadline = deadlines.entry(*group).or_insert_with(|| {
                        if alone {
                            now
                        } else {
                            self.election_deadline(now)
                        }
                    });
                    if now >= *deadline {
                        *deadline = self.election_deadline(now);
                        elect.push(Arc::clone(g));
                    }
                } else {
                    deadlines.remove(group);
                }
            }
            *behind = still_behind;
            let held: BTreeSet<GroupId> = groups.iter().map(|(g, _)| *g).collect();
            deadlines.retain(|g, _| held.contains(g));
        }
        for g in elect {
            let _ = g.raft.trigger().elect().await;
        }

        let mut sends = tokio::task::JoinSet::new();
        for (peer, groups) in beats {
            let node = Arc::clone(self);
            sends.spawn(async move {
                let beat = Beat { from: node.id, groups };
                let stale: RemoteResult<Vec<GroupId>> =
                    node.remote(peer, BEAT, META_GROUP, &beat, timeout).await;
                (peer, stale)
            });
        }
        let mut alive = BTreeSet::new();
        let mut heartbeat = BTreeSet::new();
        while let Some(answer) = sends.join_next().await {
            if let Ok((peer, Ok(stale))) = answer {
                alive.insert(peer);
                heartbeat.extend(stale);
            }
        }
        heartbeat.extend(behind_twice.into_iter().filter(|(_, peer)| alive.contains(peer)).map(|(g, _)| g));
        for group in heartbeat {
            if let Some(g) = self.group(group) {
                let _ = g.raft.trigger().heartbeat().await;
            }
        }
    }

    /// A shard group held here accepted an AppendEntries of its leader: no election for a while.
    pub(crate) fn leader_heard(&self, group: GroupId) {
        let deadline = self.election_deadline(Instant::now());
        self.beats.deadlines.lock().insert(group, deadline);
    }

    /// Handles a peer's beat: keeps the listed groups from electing, and answers the groups whose
    /// leader or term this node sees differently.
    pub(crate) fn beat_received(&self, beat: Beat) -> Vec<GroupId> {
        let now = Instant::now();
        let mut stale = Vec::new();
        let held: Vec<(GroupId, u64, Option<Arc<ShardGroup>>)> = {
            let groups = self.groups.lock();
            beat.groups.iter().map(|&(g, term)| (g, term, groups.get(&g).cloned())).collect()
        };
        let mut deadlines = self.beats.deadlines.lock();
        for (group, term, g) in held {
            let Some(g) = g else { continue };
            let metrics = g.raft.metrics();
            let m = metrics.borrow();
            if m.current_term <= term {
                // The sender leads the group in the newest term this node knows of.
                deadlines.insert(group, self.election_deadline(now));
            }
            if m.current_term != term || m.current_leader != Some(beat.from) {
                stale.push(group);
            }
        }
        stale
    }
}
