//! A cluster node: its metadata-group member, the replica groups of the shards placed on it, the
//! internal service, and the reconciler that makes the node hold what the metadata declares.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use grape::{Catalog, CatalogHandle, Collection, CollectionConfig, Database, DatabaseConfig, Error, Result};
use grape_collection::ShardAccess;
use grape_shard::op_codec::encode_operation;
use grape_shard::ShardOptions;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, Raft};
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::log_store::{LogStore, RaftDb};
use crate::meta::{MetaStateMachine, MetaView};
use crate::reads::ShardRead;
use crate::replica::{Replica, ShardStateMachine};
use crate::transport::{Network, Peers, RemoteFailure, RemoteResult};
use crate::types::{
    shard_group, GroupId, MetaCommand, MetaRefusal, MetaTc, NodeId, PeerNode, ShardCommand, ShardTc,
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
    pub raft: Raft<ShardTc>,
    pub replica: Arc<Replica>,
}

/// A collection as attached: (collection id, config JSON, placement).
type Attached = (u64, String, Vec<Vec<NodeId>>);

pub(crate) struct NodeInner {
    pub id: NodeId,
    pub me: PeerNode,
    opts: ClusterOptions,
    raft_db: RaftDb,
    pub meta: Raft<MetaTc>,
    meta_view: watch::Receiver<MetaView>,
    pub groups: Mutex<HashMap<GroupId, Arc<ShardGroup>>>,
    /// Collections attached to the database, by name.
    attached: Mutex<HashMap<String, Attached>>,
    /// Shard groups whose membership this node (their leader) is changing now.
    transitions: Mutex<std::collections::HashSet<GroupId>>,
    /// Since when a group held here is no longer placed here.
    unplaced_since: Mutex<HashMap<GroupId, Instant>>,
    reconciled: watch::Sender<u64>,
    pub peers: Arc<Peers>,
    database: OnceLock<Database>,
    runtime: Handle,
    raft_config: Arc<openraft::Config>,
    reconcile_lock: tokio::sync::Mutex<()>,
}

/// A running node. Dropping it without [`ClusterNode::shutdown`] stops its tasks abruptly.
pub struct ClusterNode {
    inner: Arc<NodeInner>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
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
        let peers = Arc::new(Peers::default());
        let (sm, meta_view) = MetaStateMachine::open(raft_db.clone()).map_err(Error::Internal)?;
        let network = Network::<MetaTc> { peers: Arc::clone(&peers), group: META_GROUP, _c: PhantomData };
        let meta =
            Raft::new(id, Arc::clone(&raft_config), network, LogStore::new(raft_db.clone(), META_GROUP), sm)
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
            attached: Mutex::new(HashMap::new()),
            transitions: Mutex::new(std::collections::HashSet::new()),
            unplaced_since: Mutex::new(HashMap::new()),
            reconciled,
            peers,
            database: OnceLock::new(),
            runtime: Handle::current(),
            raft_config,
            reconcile_lock: tokio::sync::Mutex::new(()),
        });
        let catalog = CatalogHandle(Arc::new(NodeCatalog { node: Arc::downgrade(&inner) }));
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
        tasks.push(tokio::spawn(reconcile_loop(weak, inner.meta_view.clone())));
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

/// Status of a node and its view of the cluster (what `GET /cluster` reports).
#[derive(Clone)]
pub struct NodeHandle {
    inner: Arc<NodeInner>,
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
        let mut local = Vec::new();
        let mut remote = Vec::new();
        for (shard, replicas) in c.replicas.iter().enumerate() {
            let group = shard_group(c.id, shard as u32);
            let held = self.inner.groups.lock().get(&group).cloned();
            for &peer in replicas {
                if peer == self.inner.id {
                    let (points, state) = match &held {
                        Some(g) => (g.replica.shard().engine().count(None), "Active"),
                        None => (0, "Initializing"),
                    };
                    local.push(
                        serde_json::json!({ "shard_id": shard, "points_count": points, "state": state }),
                    );
                } else {
                    remote.push(serde_json::json!({ "shard_id": shard, "peer_id": peer, "state": "Active" }));
                }
            }
        }
        Ok(serde_json::json!({
            "peer_id": self.inner.id,
            "shard_count": c.replicas.len(),
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
        let mut replicas = c.replicas.get(shard as usize).cloned().ok_or_else(|| {
            Error::bad_input(format!("Shard {shard} does not exist in collection `{collection}`"))
        })?;
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
        let cmd = MetaCommand::SetReplicas { name: collection.to_string(), shard, replicas };
        let node = &self.inner;
        node.block(async {
            let index = node.meta_write(cmd).await?;
            node.wait_reconciled(index).await
        })
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
        let node = &self.inner;
        node.block(async {
            let index = node.meta_write(MetaCommand::RemovePeer { id }).await?;
            node.wait_reconciled(index).await
        })
    }

    /// The leader of a shard's group as this node knows it (tests, tools).
    pub async fn shard_leader(&self, collection: &str, shard: u32) -> Option<NodeId> {
        let view = self.inner.meta_view.borrow().clone();
        let group = shard_group(view.state.collections.get(collection)?.id, shard);
        let g = self.inner.groups.lock().get(&group).cloned()?;
        g.raft.current_leader().await
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

    pub fn metadata_leader(&self) -> Option<NodeId> {
        self.inner.meta.metrics().borrow().current_leader
    }

    pub fn members(&self) -> Vec<NodeId> {
        self.inner.meta_view.borrow().state.peers.keys().copied().collect()
    }
}

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

fn chrono_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}", now.as_secs())
}

async fn reconcile_loop(node: Weak<NodeInner>, mut view: watch::Receiver<MetaView>) {
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
    fn database(&self) -> Option<Database> {
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

    async fn remote<Req: serde::Serialize, T: serde::de::DeserializeOwned>(
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
        let write = tokio::time::timeout(self.opts.write_timeout, self.meta.client_write(cmd));
        match write.await {
            Err(_) => {
                Err(RemoteFailure::Unavailable("no quorum: metadata change not committed in time".into()))
            }
            Ok(Ok(resp)) => Ok((resp.log_id.index, resp.data.error)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(RemoteFailure::NotLeader(f.leader_id))
            }
            Ok(Err(e)) => Err(RemoteFailure::Unavailable(e.to_string())),
        }
    }

    /// Proposes a metadata change through the metadata leader, wherever it is; returns its log index.
    async fn meta_write(&self, cmd: MetaCommand) -> Result<u64> {
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
    async fn wait_reconciled(&self, index: u64) -> Result<()> {
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

    // ---- reconciliation ----

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
            for (s, replicas) in c.replicas.iter().enumerate() {
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
                    let handles: Vec<Arc<dyn ShardAccess>> = c
                        .replicas
                        .iter()
                        .enumerate()
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
            if let Err(e) = self.raft_db.remove_group(group) {
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
            let metrics = g.raft.metrics().borrow().clone();
            if metrics.current_leader != Some(self.id) {
                continue;
            }
            let membership = metrics.membership_config.membership().clone();
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
        &self,
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
            Arc::clone(&self.raft_config),
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
        self.groups.lock().insert(group, Arc::new(ShardGroup { raft, replica }));
        Ok(())
    }

    // ---- shard writes and reads ----

    pub(crate) fn group(&self, group: GroupId) -> Option<Arc<ShardGroup>> {
        self.groups.lock().get(&group).cloned()
    }

    /// Proposes a write to a shard's group here (this node must lead it); returns its log index.
    pub(crate) async fn shard_write_here(&self, group: GroupId, op: Vec<u8>) -> RemoteResult<u64> {
        let g = self.group(group).ok_or(RemoteFailure::UnknownGroup(group))?;
        let write = tokio::time::timeout(self.opts.write_timeout, g.raft.client_write(ShardCommand { op }));
        match write.await {
            Err(_) => {
                Err(RemoteFailure::Unavailable("no quorum: the write was not committed in time".into()))
            }
            Ok(Ok(resp)) => match resp.data.error {
                None => Ok(resp.log_id.index),
                Some(e) => Err(RemoteFailure::Failed("apply".into(), e)),
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(RemoteFailure::NotLeader(f.leader_id))
            }
            Ok(Err(e)) => Err(RemoteFailure::Unavailable(e.to_string())),
        }
    }

    /// Writes to a shard through its group's leader, wherever it is.
    async fn shard_write(&self, group: GroupId, replicas: &[NodeId], op: Vec<u8>) -> Result<u64> {
        let deadline = Instant::now() + self.opts.write_timeout;
        let mut hint: Option<NodeId> = None;
        let mut turn = 0usize;
        loop {
            let local_leader = match self.group(group) {
                Some(g) => g.raft.metrics().borrow().current_leader,
                None => None,
            };
            let target = hint.or(local_leader).unwrap_or_else(|| replicas[turn % replicas.len()]);
            turn += 1;
            let attempt = if target == self.id {
                self.shard_write_here(group, op.clone()).await
            } else {
                let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
                self.remote(target, "shard_write", group, &op, left).await
            };
            hint = None;
            match attempt {
                Ok(index) => return Ok(index),
                Err(RemoteFailure::Failed(_, msg)) => return Err(Error::BadInput(msg)),
                Err(e) if Instant::now() >= deadline => {
                    return Err(Error::Unavailable(format!("no quorum: write not acknowledged: {e}")))
                }
                Err(RemoteFailure::NotLeader(Some(l))) if l != target => hint = Some(l),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Reads from a replica: the local one if held, else the others in turn.
    async fn shard_read(
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
        let mut last = String::from("no replica");
        for &peer in replicas {
            let r: RemoteResult<Vec<u8>> =
                self.remote(peer, "shard_read", group, &body, self.opts.write_timeout).await;
            match r {
                Ok(json) => return serde_json::from_slice(&json).map_err(|e| Error::Internal(e.to_string())),
                Err(RemoteFailure::Failed(kind, msg)) => return Err(crate::reads::error_from(&kind, msg)),
                Err(e) => last = e.to_string(),
            }
        }
        Err(Error::Unavailable(format!("no replica of the shard answered: {last}")))
    }
}

/// The catalog of a clustered database: collection changes are metadata-group entries.
struct NodeCatalog {
    node: Weak<NodeInner>,
}

impl NodeCatalog {
    fn node(&self) -> Result<Arc<NodeInner>> {
        self.node.upgrade().ok_or(Error::Closed)
    }

    fn commit(&self, cmd: MetaCommand) -> Result<()> {
        let node = self.node()?;
        node.block(async {
            let index = node.meta_write(cmd).await?;
            node.wait_reconciled(index).await
        })
    }
}

impl Catalog for NodeCatalog {
    fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<()> {
        let config = serde_json::to_string(&config).map_err(|e| Error::Internal(e.to_string()))?;
        self.commit(MetaCommand::CreateCollection { name: name.to_string(), config })
    }

    fn delete_collection(&self, name: &str) -> Result<bool> {
        let node = self.node()?;
        if !node.meta_view.borrow().state.collections.contains_key(name) {
            return Ok(false);
        }
        self.commit(MetaCommand::DeleteCollection { name: name.to_string() })?;
        Ok(true)
    }

    fn update_config(&self, name: &str, config: CollectionConfig) -> Result<()> {
        let config = serde_json::to_string(&config).map_err(|e| Error::Internal(e.to_string()))?;
        self.commit(MetaCommand::UpdateConfig { name: name.to_string(), config })
    }

    fn default_shard_number(&self) -> u32 {
        self.node.upgrade().map_or(1, |n| n.meta_view.borrow().state.peers.len().max(1) as u32)
    }
}

/// A shard of a clustered collection: writes through its group's leader, reads from a replica.
struct ClusterShard {
    node: Weak<NodeInner>,
    group: GroupId,
    shard: u32,
    replicas: Vec<NodeId>,
    local: Option<Arc<Replica>>,
}

impl ClusterShard {
    fn node(&self) -> Result<Arc<NodeInner>> {
        self.node.upgrade().ok_or(Error::Closed)
    }

    fn read<T: serde::de::DeserializeOwned>(&self, read: ShardRead) -> Result<T> {
        if let Some(r) = &self.local {
            let value = read.run(&r.shard())?;
            return serde_json::from_value(value).map_err(|e| Error::Internal(e.to_string()));
        }
        let node = self.node()?;
        let value = node.block(node.shard_read(self.group, &self.replicas, &read))?;
        serde_json::from_value(value).map_err(|e| Error::Internal(e.to_string()))
    }
}

impl ShardAccess for ClusterShard {
    fn update(&self, op: &grape::Operation) -> Result<grape::OpNum> {
        let bytes = encode_operation(op)?;
        let node = self.node()?;
        node.block(node.shard_write(self.group, &self.replicas, bytes)).map_err(|e| match e {
            Error::Unavailable(m) => Error::Unavailable(format!("shard {}: {m}", self.shard)),
            e => e,
        })
    }
    fn search(&self, req: &grape::SearchRequest) -> Result<Vec<grape::ScoredPoint>> {
        self.read(ShardRead::Search(req.clone()))
    }
    fn search_sparse(&self, req: &grape::SparseSearchRequest) -> Result<Vec<grape::ScoredPoint>> {
        self.read(ShardRead::SearchSparse(req.clone()))
    }
    fn search_multi(&self, req: &grape::MultiSearchRequest) -> Result<Vec<grape::ScoredPoint>> {
        self.read(ShardRead::SearchMulti(req.clone()))
    }
    fn retrieve(
        &self,
        ids: &[grape::PointId],
        with_payload: &grape::WithPayload,
        with_vector: &grape::WithVector,
    ) -> Result<Vec<grape::Record>> {
        self.read(ShardRead::Retrieve {
            ids: ids.to_vec(),
            with_payload: with_payload.clone(),
            with_vector: with_vector.clone(),
        })
    }
    fn scroll(&self, req: &grape::ScrollRequest) -> Result<grape::ScrollResult> {
        self.read(ShardRead::Scroll(req.clone()))
    }
    fn count(&self, filter: Option<&grape::Filter>) -> Result<usize> {
        self.read(ShardRead::Count(filter.cloned()))
    }
    fn sparse_document_frequencies(&self, name: &str, indices: &[u32]) -> Result<(u64, Vec<u64>)> {
        self.read(ShardRead::SparseDf { name: name.to_string(), indices: indices.to_vec() })
    }
    fn local(&self) -> Option<Arc<grape_shard::LocalShard>> {
        self.local.as_ref().map(|r| r.shard())
    }
}
