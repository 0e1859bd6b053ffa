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
//! The ticker does not read every group's Raft metrics: a task per group waits on its metrics and keeps
//! a compact [`GroupView`] of what the ticker needs (term, leader, membership, lagging followers) in one
//! node-level table; an idle group's task sleeps. Walking a thousand groups' metrics each tick (a few
//! cache misses each) was most of an idle node's CPU.
//!
//! Raft's safety does not depend on any of this timing (openraft still decides every vote, and a voter
//! refuses to vote within the leader lease of its last append from a leader); it decides only when
//! elections start. A group's Raft core is woken only by writes, elections, and the rare explicit
//! heartbeat, so an idle node costs little whatever its number of groups.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use openraft::{RaftMetrics, ServerState};
use parking_lot::Mutex;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::node::{NodeInner, ShardGroup};
use crate::transport::RemoteResult;
use crate::types::{GroupId, NodeId, PeerNode, META_GROUP};

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
    /// What the ticker needs of each group held here (lock order: views, then deadlines, then behind).
    views: Mutex<HashMap<GroupId, GroupView>>,
    /// When each group held here as a voter (and not led here) may start an election.
    deadlines: Mutex<HashMap<GroupId, Instant>>,
    /// Groups led here: each follower's matched index at the previous tick, when behind the log.
    behind: Mutex<HashMap<(GroupId, NodeId), u64>>,
}

/// One group's state as the beats need it, from its latest Raft metrics.
struct GroupView {
    /// The group object described (a group dropped and started again is another one).
    group: Weak<ShardGroup>,
    term: u64,
    leader: Option<NodeId>,
    /// Led by this node.
    leading: bool,
    /// This node votes in the group.
    voter: bool,
    /// This node is the group's only voter.
    alone: bool,
    /// The other members (voters and learners).
    others: Vec<NodeId>,
    /// When led here: the followers whose matched log index is behind the leader's log, with it.
    behind: Vec<(NodeId, u64)>,
}

impl GroupView {
    fn of(m: &RaftMetrics<NodeId, PeerNode>, me: NodeId, group: Weak<ShardGroup>) -> GroupView {
        let membership = m.membership_config.membership();
        let leading = m.state == ServerState::Leader;
        let last = m.last_log_index.unwrap_or(0);
        let behind = if leading {
            m.replication
                .iter()
                .flatten()
                .filter(|(id, _)| **id != me)
                .map(|(id, matched)| (*id, matched.map_or(0, |l| l.index)))
                .filter(|(_, matched)| *matched < last)
                .collect()
        } else {
            Vec::new()
        };
        GroupView {
            group,
            term: m.current_term,
            leader: m.current_leader,
            leading,
            voter: is_voter(membership, me),
            alone: membership.get_joint_config().iter().all(|c| c.iter().all(|&v| v == me)),
            others: membership.nodes().map(|(id, _)| *id).filter(|id| *id != me).collect(),
            behind,
        }
    }
}

impl NodeInner {
    /// Keeps the beats' view of a group started here current: a task updates it on every change of
    /// the group's Raft metrics, and removes it when the group's Raft stops.
    pub(crate) fn watch_group(self: &Arc<Self>, group: GroupId, g: &Arc<ShardGroup>) {
        let mut metrics = g.raft.metrics();
        let (me, weak_group) = (self.id, Arc::downgrade(g));
        let view = GroupView::of(&metrics.borrow_and_update(), me, weak_group.clone());
        self.beats.views.lock().insert(group, view);
        let node = Arc::downgrade(self);
        tokio::spawn(async move {
            while metrics.changed().await.is_ok() {
                let Some(node) = node.upgrade() else { return };
                if weak_group.strong_count() == 0 {
                    // Dropped (its Raft winding down): a group started since under the same id must
                    // not get this one's view.
                    break;
                }
                let view = GroupView::of(&metrics.borrow_and_update(), me, weak_group.clone());
                node.beats.views.lock().insert(group, view);
            }
            if let Some(node) = node.upgrade() {
                node.forget_group(group, &weak_group);
            }
        });
    }

    /// Drops the beats' view of `group` if it still describes the group object `g`.
    pub(crate) fn forget_group(&self, group: GroupId, g: &Weak<ShardGroup>) {
        let mut views = self.beats.views.lock();
        if views.get(&group).is_some_and(|v| v.group.ptr_eq(g)) {
            views.remove(&group);
        }
    }
}

/// Whether `id` votes in `membership` (without `voter_ids`, which collects every voter into a new set:
/// most of an idle node's CPU with a thousand groups).
fn is_voter(membership: &openraft::Membership<NodeId, PeerNode>, id: NodeId) -> bool {
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
        let mut beats: BTreeMap<NodeId, Vec<(GroupId, u64)>> = BTreeMap::new();
        let mut behind_twice: Vec<(GroupId, NodeId)> = Vec::new();
        let mut elect: Vec<GroupId> = Vec::new();
        let mut step_down: Vec<GroupId> = Vec::new();
        {
            let views = self.beats.views.lock();
            let mut deadlines = self.beats.deadlines.lock();
            let mut behind = self.beats.behind.lock();
            let mut still_behind = HashMap::new();
            for (&group, v) in views.iter() {
                if v.leading {
                    if !deadlines.is_empty() {
                        deadlines.remove(&group);
                    }
                    if !v.voter {
                        // Removed from its group: openraft's tick lets it step down once the change
                        // is applied.
                        step_down.push(group);
                    }
                    for &id in &v.others {
                        beats.entry(id).or_default().push((group, v.term));
                    }
                    for &(id, matched) in &v.behind {
                        if behind.get(&(group, id)) == Some(&matched) {
                            behind_twice.push((group, id));
                        }
                        still_behind.insert((group, id), matched);
                    }
                } else if v.voter {
                    let deadline = deadlines.entry(group).or_insert_with(|| {
                        if v.alone {
                            now
                        } else {
                            self.election_deadline(now)
                        }
                    });
                    if now >= *deadline {
                        *deadline = self.election_deadline(now);
                        elect.push(group);
                    }
                } else if !deadlines.is_empty() {
                    deadlines.remove(&group);
                }
            }
            *behind = still_behind;
            deadlines.retain(|g, _| views.contains_key(g));
        }
        for group in step_down {
            if let Some(g) = self.group(group) {
                g.raft.runtime_config().tick(true);
            }
        }
        let elect: Vec<Arc<ShardGroup>> = elect.into_iter().filter_map(|group| self.group(group)).collect();
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
        let views = self.beats.views.lock();
        let mut deadlines = self.beats.deadlines.lock();
        for &(group, term) in &beat.groups {
            let Some(v) = views.get(&group) else { continue };
            if v.term <= term {
                // The sender leads the group in the newest term this node knows of.
                deadlines.insert(group, self.election_deadline(now));
            }
            if v.term != term || v.leader != Some(beat.from) {
                stale.push(group);
            }
        }
        stale
    }
}
