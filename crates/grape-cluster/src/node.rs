//! A cluster node: start (new cluster, rejoin, join), its metadata-group member, the replica groups
//! of the shards placed on it, and the write / read paths through them. What it reports is in
//! `handle`, the reconciler in `reconcile`, the database's view of the cluster in `shard_handle`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use grape::{CatalogHandle, Database, DatabaseConfig, Error, Result, WriteAck};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::raft::ClientWriteResponse;
use openraft::{ChangeMembers, Raft};
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::beats::Beats;
use crate::handle::NodeHandle;
use crate::log_store::{LogStore, RaftDb};
use crate::meta::{MetaStateMachine, MetaView};
use crate::reads::ShardRead;
use crate::replica::Replica;
use crate::transport::{Network, Peers, RemoteFailure, RemoteResult};
use crate::types::{
    GroupId, MetaCommand, MetaRefusal, MetaTc, NodeId, PeerNode, ShardCommand, ShardTc, ShardWrite,
    META_GROUP,
};

/// At most this many voters in the metadata group; later nodes stay learners.
pub const MAX_VOTERS: usize = 5;

/// How to run a node.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The database directory (collections' replicas and the Raft logs live under `cluster/`).
    pub data_dir: PathBuf,
    /// Where the internal service listens.
    pub p2p_bind: SocketAddr,
    /// How other nodes reach this one, e.g. `http://10.0.0.2:6335`.
    pub p2p_uri: String,
    /// This node's public REST address, reported by `GET /cluster`.
    pub api_uri: String,
    /// A member's p2p address to join; `None` starts a new cluster (or restarts a member).
    pub bootstrap: Option<String>,
    pub heartbeat_ms: u64,
    pub election_timeout_ms: (u64, u64),
    /// How long a write may wait for its group to commit it before answering "unavailable".
    pub write_timeout: Duration,
    /// How long a new node tries to join through `bootstrap`.
    pub join_timeout: Duration,
    /// Run flushing and optimization in the background (as embedded mode does).
    pub background: bool,
}

impl ClusterOptions {
    pub fn new(data_dir: impl Into<PathBuf>, p2p_bind: SocketAddr) -> ClusterOptions {
        ClusterOptions {
            data_dir: data_dir.into(),
            p2p_bind,
            p2p_uri: format!("http://{p2p_bind}"),
            api_uri: String::new(),
            bootstrap: None,
            heartbeat_ms: 100,
            election_timeout_ms: (400, 800),
            write_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(30),
            background: true,
        }
    }
}

pub(crate) struct ShardGroup {
    pub(crate) raft: Raft<ShardTc>,
    pub(crate) replica: Arc<Replica>,
}

/// A collection as attached: (collection id, config JSON, placement).
pub(crate) type Attached = (u64, String, Vec<Vec<NodeId>>);

pub(crate) struct NodeInner {
    pub(crate) id: NodeId,
    pub(crate) me: PeerNode,
    pub(crate) opts: ClusterOptions,
    pub(crate) raft_db: RaftDb,
    pub(crate) meta: Raft<MetaTc>,
    pub(crate) meta_view: watch::Receiver<MetaView>,
    pub(crate) groups: Mutex<HashMap<GroupId, Arc<ShardGroup>>>,
    /// Raft RPCs waiting for a shard group to be added to `groups`, by group (woken when it is).
    pub(crate) group_waiters: Mutex<HashMap<GroupId, Arc<tokio::sync::Notify>>>,
    /// Collections attached to the database, by name.
    pub(crate) attached: Mutex<HashMap<String, Attached>>,
    /// Shard groups whose membership this node (their leader) is changing now.
    pub(crate) transitions: Mutex<std::collections::HashSet<GroupId>>,
    /// Since when a group held here is no longer placed here.
    pub(crate) unplaced_since: Mutex<HashMap<GroupId, Instant>>,
    pub(crate) reconciled: watch::Sender<u64>,
    pub(crate) peers: Arc<Peers>,
    pub(crate) database: OnceLock<Database>,
    pub(crate) runtime: Handle,
    /// Shard groups: openraft's heartbeats and elections off, driven by the node's beats.
    pub(crate) shard_raft_config: Arc<openraft::Config>,
    pub(crate) beats: Beats,
    pub(crate) reconcile_lock: tokio::sync::Mutex<()>,
}

/// A running node. Dropping it without [`ClusterNode::shutdown`] stops its tasks abruptly.
pub struct ClusterNode {
    inner: Arc<NodeInner>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

fn unavailable_remote(e: impl std::fmt::Display) -> RemoteFailure {
    RemoteFailure::Unavailable(e.to_string())
}

impl ClusterNode {
    /// Starts a node: opens (or creates) its state, serves the internal service, then starts a new
    /// cluster, rejoins as a member, or joins through `bootstrap`. Call from a multi-thread runtime.
    pub async fn start(opts: ClusterOptions) -> Result<ClusterNode> {
        let root = opts.data_dir.join("cluster");
        std::fs::create_dir_all(root.join("collections")).map_err(|e| Error::io("create cluster dir", e))?;
        let raft_db = open_raft_db(&root.join("raft.redb")).await?;
        let id = match raft_db.node_value("id").map_err(Error::Internal)? {
            Some(b) if b.len() == 8 => u64::from_le_bytes(b.try_into().unwrap_or_default()),
            _ => {
                let id = loop {
                    let id: u64 = rand::random::<u64>() >> 11; // fits a JSON number exactly
                    if id != 0 {
                        break id;
                    }
                };
                raft_db.set_node_value("id", &id.to_le_bytes()).map_err(Error::Internal)?;
                id
            }
        };
        let me = PeerNode { p2p: opts.p2p_uri.clone(), api: opts.api_uri.clone() };
        let raft_config = Arc::new(
            openraft::Config {
                cluster_name: "grape".into(),
                heartbeat_interval: opts.heartbeat_ms,
                election_timeout_min: opts.election_timeout_ms.0,
                election_timeout_max: opts.election_timeout_ms.1,
                install_snapshot_timeout: 30_000,
                snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(5_000),
                max_in_snapshot_log_to_keep: 1_000,
                ..Default::default()
            }
            .validate()
            .map_err(|e| Error::bad_input(format!("raft config: {e}")))?,
        );
        let shard_raft_config = Arc::new(shard_config(&raft_config));
        let peers = Arc::new(Peers::default());
        let (sm, meta_view) = MetaStateMachine::open(raft_db.clone()).map_err(Error::Internal)?;
        let network = Network::<MetaTc> { peers: Arc::clone(&peers), group: META_GROUP, _c: PhantomData };
        let meta = Raft::new(id, raft_config, network, LogStore::new(raft_db.clone(), META_GROUP), sm)
            .await
            .map_err(unavailable)?;
        let (reconciled, _) = watch::channel(0);
        let inner = Arc::new(NodeInner {
            id,
            me: me.clone(),
            opts: opts.clone(),
            raft_db,
            meta,
            meta_view,
            groups: Mutex::new(HashMap::new()),
            group_waiters: Mutex::new(HashMap::new()),
            attached: Mutex::new(HashMap::new()),
            transitions: Mutex::new(std::collections::HashSet::new()),
            unplaced_since: Mutex::new(HashMap::new()),
            reconciled,
            peers,
            database: OnceLock::new(),
            runtime: Handle::current(),
            shard_raft_config,
            beats: Beats::default(),
            reconcile_lock: tokio::sync::Mutex::new(()),
        });
        let catalog =
            CatalogHandle(Arc::new(crate::shard_handle::NodeCatalog { node: Arc::downgrade(&inner) }));
        let db_config = DatabaseConfig {
            background: opts.background,
            catalog: Some(catalog),
            ..DatabaseConfig::new(&opts.data_dir)
        };
        let db = tokio::task::spawn_blocking(move || Database::open_with(db_config))
            .await
            .map_err(unavailable)??;
        let _ = inner.database.set(db);

        let mut tasks = Vec::new();
        let listener = tokio::net::TcpListener::bind(opts.p2p_bind)
            .await
            .map_err(|e| Error::io(format!("bind the p2p port {}", opts.p2p_bind), e))?;
        let (stop, stop_rx) = watch::channel(false);
        tasks.push(tokio::spawn(crate::service::serve(Arc::downgrade(&inner), listener, stop_rx)));

        if !inner.meta.is_initialized().await.map_err(unavailable)? {
            match &opts.bootstrap {
                None => {
                    let members = BTreeMap::from([(id, me.clone())]);
                    inner.meta.initialize(members).await.map_err(unavailable)?;
                }
                Some(addr) => inner.join_through(addr).await?,
            }
        }
        // The first member records itself once it leads; a joined node is recorded by the leader.
        inner.ensure_peer_recorded().await?;
        inner.reconcile().await;
        let weak = Arc::downgrade(&inner);
        tasks.push(tokio::spawn(crate::reconcile::reconcile_loop(weak, inner.meta_view.clone())));
        tasks.push(tokio::spawn(crate::beats::beat_loop(Arc::downgrade(&inner))));
        tracing::info!(peer_id = id, p2p = %opts.p2p_uri, "cluster node started");
        Ok(ClusterNode { inner, tasks, stop })
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The node's database: collections declared in the cluster, attached here.
    pub fn database(&self) -> Database {
        self.inner.database.get().cloned().expect("database opened in start")
    }

    /// A cheap handle for status reports (`GET /cluster`) and peer removal.
    pub fn handle(&self) -> NodeHandle {
        NodeHandle { inner: Arc::clone(&self.inner) }
    }

    /// Stops the node as a crash would, as far as one process can: the internal service and every
    /// group stop at once; nothing is flushed (what was acknowledged is in the Raft logs).
    pub async fn kill(self) {
        self.stop.send_replace(true);
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        let groups: Vec<Arc<ShardGroup>> = self.inner.groups.lock().drain().map(|(_, g)| g).collect();
        for g in groups {
            let _ = g.raft.shutdown().await;
        }
        let _ = self.inner.meta.shutdown().await;
    }

    /// Stops the node's groups and tasks and closes its database.
    pub async fn shutdown(self) -> Result<()> {
        self.stop.send_replace(true);
        for t in &self.tasks {
            t.abort();
        }
        let groups: Vec<Arc<ShardGroup>> = self.inner.groups.lock().drain().map(|(_, g)| g).collect();
        for g in groups {
            let _ = g.raft.shutdown().await;
        }
        let _ = self.inner.meta.shutdown().await;
        if let Some(db) = self.inner.database.get().cloned() {
            tokio::task::spawn_blocking(move || db.close()).await.map_err(unavailable)??;
        }
        Ok(())
    }
}

/// Shard groups run without openraft's heartbeats and election timers: the node's beats (module
/// `beats`) keep their followers from electing while the leader's node lives and start elections when
/// it does not. openraft's tick would then only let a leader removed from its group step down, so it
/// is off (an idle group's Raft core is never woken) and the beats switch it on for a leader that is
/// no longer a voter of its group. `heartbeat_interval` is also the timeout of an AppendEntries RPC
/// and of a read barrier, hence a second. This breaks `Config::validate`'s rule "election timeout > heartbeat interval", which guards
/// openraft's own election timer, unused here; the election timeout still sets the leader lease (a
/// voter refuses votes that long after its last append from a leader).
fn shard_config(base: &openraft::Config) -> openraft::Config {
    openraft::Config {
        heartbeat_interval: SHARD_TICK_MS,
        enable_tick: false,
        enable_heartbeat: false,
        enable_elect: false,
        ..base.clone()
    }
}

/// openraft's tick period of a shard group is 1.5 times this (see [`shard_config`]).
const SHARD_TICK_MS: u64 = 1_000;

/// Opens the node's Raft database. A node stopped in this same process (tests) may hold it for a
/// moment while its tasks wind down, so "already open" is retried briefly.
async fn open_raft_db(path: &std::path::Path) -> Result<RaftDb> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match RaftDb::open(path) {
            Ok(db) => return Ok(db),
            Err(e) if e.contains("already open") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => return Err(Error::Internal(e)),
        }
    }
}

/// Waits for a proposal made on this node, at most `timeout`, and says how it ended as it is told
/// between nodes: not the leader (with the one it knows), or unavailable (no quorum in time).
async fn propose<C, F>(timeout: Duration, write: F) -> RemoteResult<ClientWriteResponse<C>>
where
    C: openraft::RaftTypeConfig<NodeId = NodeId, Node = PeerNode>,
    F: Future<
        Output = std::result::Result<
            ClientWriteResponse<C>,
            RaftError<NodeId, ClientWriteError<NodeId, PeerNode>>,
        >,
    >,
{
    match tokio::time::timeout(timeout, write).await {
        Err(_) => Err(RemoteFailure::Unavailable("no quorum: not committed in time".into())),
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
            Err(RemoteFailure::NotLeader(f.leader_id))
        }
        Ok(Err(e)) => Err(RemoteFailure::Unavailable(e.to_string())),
    }
}

/// `find()`'s value as soon as it is `Some`, re-checked whenever `added` is notified, for at most `wait`.
async fn appears<T>(added: &tokio::sync::Notify, wait: Duration, find: impl Fn() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Registered before the check, so an addition between the check and the wait is not missed.
        let notified = added.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(found) = find() {
            return Some(found);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return find();
        }
    }
}

/// Now as an RFC 3339 UTC timestamp, as Qdrant reports `consensus_thread_status.last_update`.
pub(crate) fn chrono_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    chrono::DateTime::from_timestamp(now.as_secs() as i64, now.subsec_nanos())
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

impl NodeInner {
    pub(crate) fn database(&self) -> Option<Database> {
        self.database.get().cloned()
    }

    /// Runs a future to completion from synchronous code (the engine's callers).
    pub(crate) fn block<F: Future>(&self, f: F) -> F::Output {
        tokio::task::block_in_place(|| self.runtime.block_on(f))
    }

    fn peer_addr(&self, id: NodeId) -> Option<String> {
        if let Some(p) = self.meta_view.borrow().state.peers.get(&id) {
            return Some(p.p2p.clone());
        }
        let m = self.meta.metrics().borrow().membership_config.clone();
        let addr = m.membership().get_node(&id).map(|n| n.p2p.clone());
        addr
    }

    pub(crate) async fn remote<Req: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        peer: NodeId,
        kind: &str,
        group: GroupId,
        req: &Req,
        timeout: Duration,
    ) -> RemoteResult<T> {
        let addr = self
            .peer_addr(peer)
            .ok_or(RemoteFailure::Unavailable(format!("peer {peer} has no known address")))?;
        self.remote_at(&addr, kind, group, req, timeout).await
    }

    async fn remote_at<Req: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        addr: &str,
        kind: &str,
        group: GroupId,
        req: &Req,
        timeout: Duration,
    ) -> RemoteResult<T> {
        let bytes = postcard::to_allocvec(req)
            .map_err(|e| RemoteFailure::Failed("internal".into(), e.to_string()))?;
        let reply = self
            .peers
            .call(addr, kind, group, bytes, timeout)
            .await
            .map_err(|s| RemoteFailure::Unavailable(format!("{addr}: {}", s.message())))?;
        postcard::from_bytes::<RemoteResult<T>>(&reply)
            .map_err(|e| RemoteFailure::Failed("internal".into(), format!("bad reply from {addr}: {e}")))?
    }

    // ---- metadata ----

    /// Proposes a metadata change here (this node must lead the metadata group).
    pub(crate) async fn meta_write_here(&self, cmd: MetaCommand) -> RemoteResult<(u64, Option<MetaRefusal>)> {
        let resp = propose(self.opts.write_timeout, self.meta.client_write(cmd)).await?;
        Ok((resp.log_id.index, resp.data.error))
    }

    /// Commits a metadata change (from synchronous code) and waits until this node acted on it.
    pub(crate) fn commit_meta(&self, cmd: MetaCommand) -> Result<()> {
        self.block(async {
            let index = self.meta_write(cmd).await?;
            self.wait_reconciled(index).await
        })
    }

    /// Proposes a metadata change through the metadata leader, wherever it is; returns its log index.
    pub(crate) async fn meta_write(&self, cmd: MetaCommand) -> Result<u64> {
        let deadline = Instant::now() + self.opts.write_timeout;
        loop {
            let leader = self.meta.metrics().borrow().current_leader;
            let attempt = match leader {
                Some(l) if l == self.id => self.meta_write_here(cmd.clone()).await,
                Some(l) => self.remote(l, "meta_write", META_GROUP, &cmd, self.opts.write_timeout).await,
                None => Err(RemoteFailure::Unavailable("no metadata leader".into())),
            };
            match attempt {
                Ok((index, None)) => return Ok(index),
                Ok((_, Some(MetaRefusal::AlreadyExists(what)))) => return Err(Error::AlreadyExists(what)),
                Ok((_, Some(MetaRefusal::NotFound(what)))) => return Err(Error::NotFound(what)),
                Ok((_, Some(MetaRefusal::BadInput(what)))) => return Err(Error::BadInput(what)),
                Err(RemoteFailure::Failed(_, msg)) => return Err(Error::Internal(msg)),
                Err(e) if Instant::now() >= deadline => {
                    return Err(Error::Unavailable(format!("no quorum: metadata change not committed: {e}")))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Waits until this node's reconciler has acted on the metadata up to `index`.
    pub(crate) async fn wait_reconciled(&self, index: u64) -> Result<()> {
        let mut rx = self.reconciled.subscribe();
        let waited = tokio::time::timeout(self.opts.write_timeout, rx.wait_for(|&done| done >= index)).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::Unavailable(format!("metadata entry {index} not applied on this node in time"))),
        }
    }

    /// Handles a join request: on the metadata leader adds the node as a learner, records it, and
    /// promotes it while there are fewer than [`MAX_VOTERS`] voters; elsewhere forwards to the leader.
    pub(crate) async fn handle_join(&self, id: NodeId, node: PeerNode) -> RemoteResult<()> {
        let leader = self.meta.metrics().borrow().current_leader;
        match leader {
            Some(l) if l == self.id => {}
            Some(l) => return self.remote(l, "join", META_GROUP, &(id, node), self.opts.join_timeout).await,
            None => return Err(RemoteFailure::Unavailable("no metadata leader".into())),
        }
        let known = self.meta.metrics().borrow().membership_config.membership().get_node(&id).cloned();
        if known.is_none() {
            let added =
                tokio::time::timeout(self.opts.join_timeout, self.meta.add_learner(id, node.clone(), true))
                    .await;
            match added {
                Err(_) => {
                    return Err(RemoteFailure::Unavailable("the new node did not catch up in time".into()))
                }
                Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                    return Err(RemoteFailure::NotLeader(f.leader_id))
                }
                Ok(Err(e)) => return Err(RemoteFailure::Unavailable(e.to_string())),
                Ok(Ok(_)) => {}
            }
        }
        let recorded = self.meta_view.borrow().state.peers.get(&id) == Some(&node);
        if !recorded {
            self.meta_write_here(MetaCommand::AddPeer { id, node }).await?;
        }
        let membership = self.meta.metrics().borrow().membership_config.membership().clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        if !voters.contains(&id) && voters.len() < MAX_VOTERS {
            let promote =
                self.meta.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false);
            match tokio::time::timeout(self.opts.join_timeout, promote).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(RemoteFailure::Unavailable(format!("promote {id}: {e}"))),
                Err(_) => return Err(RemoteFailure::Unavailable(format!("promote {id}: timed out"))),
            }
        }
        Ok(())
    }

    async fn join_through(&self, addr: &str) -> Result<()> {
        let deadline = Instant::now() + self.opts.join_timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            let r: RemoteResult<()> = self
                .remote_at(addr, "join", META_GROUP, &(self.id, self.me.clone()), self.opts.join_timeout)
                .await;
            match r {
                Ok(()) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(Error::Unavailable(format!("cannot join the cluster through {addr}: {last}")))
    }

    /// Makes sure the metadata lists this node (a new cluster's first node records itself).
    async fn ensure_peer_recorded(&self) -> Result<()> {
        let deadline = Instant::now() + self.opts.join_timeout;
        loop {
            if self.meta_view.borrow().state.peers.get(&self.id) == Some(&self.me) {
                return Ok(());
            }
            let leader = self.meta.metrics().borrow().current_leader;
            if leader == Some(self.id) {
                let _ =
                    self.meta_write_here(MetaCommand::AddPeer { id: self.id, node: self.me.clone() }).await;
            } else if let Some(l) = leader {
                // A restarted member with a new address, or a join still being recorded.
                let _: RemoteResult<()> = self
                    .remote(l, "join", META_GROUP, &(self.id, self.me.clone()), self.opts.join_timeout)
                    .await;
            }
            if Instant::now() >= deadline {
                return Err(Error::Unavailable(
                    "this node was not recorded in the cluster metadata in time".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // ---- shard writes and reads ----

    pub(crate) fn group(&self, group: GroupId) -> Option<Arc<ShardGroup>> {
        self.groups.lock().get(&group).cloned()
    }

    /// The group held here, waiting up to `wait` for it to be created. A new collection's (or new
    /// replica's) group starts on its first replica, whose first vote requests reach the other replicas
    /// while they are still applying the metadata entry that creates the group there: answering "not
    /// held here" at once would fail that election and leave the shard without a leader until the next
    /// election timeout.
    /// How long a Raft RPC for a shard group not held here waits for it ([`NodeInner::group_soon`]):
    /// three quarters of the vote RPC's timeout (the minimal election timeout), so that the answer
    /// still reaches the candidate.
    pub(crate) fn group_creation_wait(&self) -> Duration {
        Duration::from_millis(self.opts.election_timeout_ms.0 * 3 / 4)
    }

    pub(crate) async fn group_soon(&self, group: GroupId, wait: Duration) -> Option<Arc<ShardGroup>> {
        if let Some(g) = self.group(group) {
            return Some(g);
        }
        // One notification per group: a node creating a thousand groups while their first votes wait
        // wakes each waiter once, not once per group created.
        let added = Arc::clone(self.group_waiters.lock().entry(group).or_default());
        let found = appears(&added, wait, || self.group(group)).await;
        let mut waiters = self.group_waiters.lock();
        // The last waiter of a group that did not come removes its entry (clones are made under this
        // lock, so the count is exact here).
        if waiters.get(&group).is_some_and(|n| Arc::ptr_eq(n, &added) && Arc::strong_count(n) == 2) {
            waiters.remove(&group);
        }
        found
    }

    /// Wakes the RPCs waiting for `group` (just added to `groups`).
    pub(crate) fn group_added(&self, group: GroupId) {
        if let Some(waiting) = self.group_waiters.lock().remove(&group) {
            waiting.notify_waiters();
        }
    }

    /// Proposes a write to a shard's group here (this node must lead it). Answers once `ack` is met:
    /// with the entry's log index when committed (and, for `All`, durable on every replica), or with
    /// `None` as soon as the leader took it (`Async`).
    pub(crate) async fn shard_write_here(
        &self,
        group: GroupId,
        write: ShardWrite,
    ) -> RemoteResult<Option<u64>> {
        let g = self.group(group).ok_or(RemoteFailure::UnknownGroup(group))?;
        let command = ShardCommand { op: write.op };
        if write.ack == WriteAck::Async {
            let leader = g.raft.metrics().borrow().current_leader;
            if leader != Some(self.id) {
                return Err(RemoteFailure::NotLeader(leader));
            }
            let answer = g.raft.client_write_ff(command).await.map_err(unavailable_remote)?;
            tokio::spawn(async move {
                match answer.await {
                    Ok(Ok(r)) if r.data.error.is_none() => {}
                    Ok(Ok(r)) => tracing::warn!(group, "an asynchronous write failed: {:?}", r.data.error),
                    Ok(Err(e)) => tracing::warn!(group, "an asynchronous write was not committed: {e}"),
                    Err(e) => tracing::warn!(group, "an asynchronous write was dropped: {e}"),
                }
            });
            return Ok(None);
        }
        let resp = propose(self.opts.write_timeout, g.raft.client_write(command)).await?;
        if let Some(e) = resp.data.error {
            return Err(RemoteFailure::Failed("apply".into(), e));
        }
        let index = resp.log_id.index;
        if write.ack == WriteAck::All {
            let every = |m: &openraft::RaftMetrics<NodeId, PeerNode>| {
                m.replication.as_ref().is_some_and(|r| {
                    m.membership_config
                        .membership()
                        .nodes()
                        .filter(|(id, _)| **id != self.id)
                        .all(|(id, _)| r.get(id).copied().flatten().is_some_and(|l| l.index >= index))
                })
            };
            // Half the write timeout: the answer must reach a forwarding node before its call ends.
            g.raft
                .wait(Some(self.opts.write_timeout / 2))
                .metrics(every, "every replica has the write")
                .await
                .map_err(|e| {
                    RemoteFailure::Incomplete(format!(
                        "the write is committed, but not every replica acknowledged it in time: {e}"
                    ))
                })?;
        }
        Ok(Some(index))
    }

    /// Writes to a shard through its group's leader, wherever it is; the leader answers per `ack`.
    pub(crate) async fn shard_write(
        &self,
        group: GroupId,
        replicas: &[NodeId],
        op: Vec<u8>,
        ack: WriteAck,
    ) -> Result<Option<u64>> {
        let deadline = Instant::now() + self.opts.write_timeout;
        let mut hint: Option<NodeId> = None;
        let mut turn = 0usize;
        let write = ShardWrite { op, ack };
        loop {
            let target =
                hint.or_else(|| self.local_leader(group)).unwrap_or_else(|| replicas[turn % replicas.len()]);
            turn += 1;
            let attempt = if target == self.id {
                self.shard_write_here(group, write.clone()).await
            } else {
                let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
                self.remote(target, "shard_write", group, &write, left).await
            };
            hint = None;
            match attempt {
                Ok(index) => return Ok(index),
                Err(RemoteFailure::Failed(_, msg)) => return Err(Error::BadInput(msg)),
                Err(RemoteFailure::Incomplete(msg)) => return Err(Error::Unavailable(msg)),
                Err(e) if Instant::now() >= deadline => {
                    return Err(Error::Unavailable(format!("no quorum: write not acknowledged: {e}")))
                }
                Err(RemoteFailure::NotLeader(Some(l))) if l != target => hint = Some(l),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The leader of a group held here, as this node knows it.
    fn local_leader(&self, group: GroupId) -> Option<NodeId> {
        self.group(group).and_then(|g| g.raft.metrics().borrow().current_leader)
    }

    /// Runs a read on the replica of the group here after a read barrier: this node must lead the group;
    /// it confirms that with a quorum and applies everything committed before the read began.
    pub(crate) async fn shard_read_leader(
        &self,
        group: GroupId,
        read: ShardRead,
    ) -> RemoteResult<serde_json::Value> {
        let g = self.group(group).ok_or(RemoteFailure::UnknownGroup(group))?;
        match tokio::time::timeout(self.opts.write_timeout, g.raft.ensure_linearizable()).await {
            Err(_) => {
                return Err(RemoteFailure::Unavailable(
                    "no quorum: read barrier not confirmed in time".into(),
                ))
            }
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                return Err(RemoteFailure::NotLeader(f.leader_id))
            }
            Ok(Err(e)) => return Err(RemoteFailure::Unavailable(format!("no quorum: {e}"))),
            Ok(Ok(_)) => {}
        }
        let shard = g.replica.shard();
        match tokio::task::spawn_blocking(move || read.run(&shard)).await.map_err(unavailable_remote)? {
            Ok(v) => Ok(v),
            Err(e) => Err(RemoteFailure::Failed(crate::reads::error_kind(&e).into(), e.to_string())),
        }
    }

    /// A linearizable read: on the group's leader, wherever it is, after its read barrier.
    pub(crate) async fn shard_read_linearizable(
        &self,
        group: GroupId,
        replicas: &[NodeId],
        read: ShardRead,
    ) -> Result<serde_json::Value> {
        let deadline = Instant::now() + self.opts.write_timeout;
        let mut hint: Option<NodeId> = None;
        let mut turn = 0usize;
        loop {
            let target =
                hint.or_else(|| self.local_leader(group)).unwrap_or_else(|| replicas[turn % replicas.len()]);
            turn += 1;
            let attempt = if target == self.id {
                self.shard_read_leader(group, read.clone()).await
            } else {
                let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
                let body = serde_json::to_vec(&read).map_err(|e| Error::Internal(e.to_string()))?;
                let r: RemoteResult<Vec<u8>> =
                    self.remote(target, "shard_read_leader", group, &body, left).await;
                r.and_then(|json| {
                    serde_json::from_slice(&json)
                        .map_err(|e| RemoteFailure::Failed("internal".into(), e.to_string()))
                })
            };
            hint = None;
            match attempt {
                Ok(v) => return Ok(v),
                Err(RemoteFailure::Failed(kind, msg)) => return Err(crate::reads::error_from(&kind, msg)),
                Err(e) if Instant::now() >= deadline => {
                    return Err(Error::Unavailable(format!("no quorum: linearizable read not served: {e}")))
                }
                Err(RemoteFailure::NotLeader(Some(l))) if l != target => hint = Some(l),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Reads from a replica: the local one if held, else the others in turn.
    pub(crate) async fn shard_read(
        &self,
        group: GroupId,
        replicas: &[NodeId],
        read: &ShardRead,
    ) -> Result<serde_json::Value> {
        if let Some(g) = self.group(group) {
            let shard = g.replica.shard();
            let read = read.clone();
            return tokio::task::spawn_blocking(move || read.run(&shard)).await.map_err(unavailable)?;
        }
        let body = serde_json::to_vec(read).map_err(|e| Error::Internal(e.to_string()))?;
        let deadline = Instant::now() + self.opts.write_timeout;
        loop {
            let mut last = String::from("no replica");
            // A replica that does not hold the group yet (a shard just created, its replicas still
            // being set up by their nodes' reconcilers) is asked again until the deadline; other
            // failures end the read after one round over the replicas.
            let mut settling = false;
            for &peer in replicas {
                let r: RemoteResult<Vec<u8>> =
                    self.remote(peer, "shard_read", group, &body, self.opts.write_timeout).await;
                match r {
                    Ok(json) => {
                        return serde_json::from_slice(&json).map_err(|e| Error::Internal(e.to_string()))
                    }
                    Err(RemoteFailure::Failed(kind, msg)) => {
                        return Err(crate::reads::error_from(&kind, msg))
                    }
                    Err(e) => {
                        settling |= matches!(e, RemoteFailure::UnknownGroup(_));
                        last = e.to_string();
                    }
                }
            }
            if !settling || Instant::now() >= deadline {
                return Err(Error::Unavailable(format!("no replica of the shard answered: {last}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use parking_lot::Mutex;

    /// `appears` answers as soon as the value is there (also when it is added while it waits, however
    /// the addition and its notification fall around its check), and `None` once the wait is over.
    #[tokio::test]
    async fn appears_waits_for_an_addition() {
        let added = Arc::new(tokio::sync::Notify::new());
        let slot: Arc<Mutex<Option<u32>>> = Arc::default();
        let find = || *slot.lock();
        assert_eq!(super::appears(&added, Duration::from_millis(20), find).await, None);
        *slot.lock() = Some(1);
        assert_eq!(super::appears(&added, Duration::ZERO, find).await, Some(1));
        for delay_ms in [0, 1, 5, 30] {
            *slot.lock() = None;
            let (a, s) = (Arc::clone(&added), Arc::clone(&slot));
            let adder = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                *s.lock() = Some(2);
                a.notify_waiters();
            });
            // A missed notification would not give a wrong answer (the value is looked up again when
            // the wait ends) but the whole wait: far longer than the addition takes.
            let started = std::time::Instant::now();
            assert_eq!(super::appears(&added, Duration::from_secs(60), find).await, Some(2));
            assert!(started.elapsed() < Duration::from_secs(30), "woken by the addition");
            adder.await.unwrap();
        }
    }

    #[test]
    fn last_update_is_an_rfc3339_timestamp() {
        let now = super::chrono_now();
        let parsed = chrono::DateTime::parse_from_rfc3339(&now).unwrap_or_else(|e| panic!("{now}: {e}"));
        assert!(parsed.timestamp() > 1_700_000_000, "{now}");
    }
}
