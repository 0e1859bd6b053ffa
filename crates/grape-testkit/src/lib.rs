//! In-process Grape clusters for tests. Each node has its own temporary directory and loopback
//! port and runs in the test's tokio runtime (which must be multi-threaded). Nodes can be stopped
//! (gracefully, or abruptly by dropping them) and restarted on the same directory and address.

pub mod linearizability;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use grape::Database;
use grape_cluster::{ClusterNode, ClusterOptions, NodeHandle};

/// A free loopback address (the port is released for the node to bind).
pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local address")
}

pub struct TestNode {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub node: Option<ClusterNode>,
}

impl TestNode {
    pub fn db(&self) -> Database {
        self.node.as_ref().expect("node is running").database()
    }

    pub fn handle(&self) -> NodeHandle {
        self.node.as_ref().expect("node is running").handle()
    }

    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub struct TestCluster {
    pub nodes: Vec<TestNode>,
    /// Raft timing of the nodes: `None`, the fast test timing of [`options`]; `Some(ms)`, a heartbeat
    /// every `ms` with elections after 4 to 8 of them, as `grape serve` derives them from
    /// `cluster.consensus.tick_period_ms`.
    heartbeat_ms: Option<u64>,
}

/// Options of a test node: fast elections so that tests of failover are short.
pub fn options(dir: &std::path::Path, addr: SocketAddr, bootstrap: Option<String>) -> ClusterOptions {
    let mut o = ClusterOptions::new(dir, addr);
    o.bootstrap = bootstrap;
    o.heartbeat_ms = 50;
    o.election_timeout_ms = (250, 500);
    o.write_timeout = Duration::from_secs(10);
    o
}

impl TestCluster {
    /// Starts `n` nodes: the first creates the cluster, the others join through it one by one.
    pub async fn start(n: usize) -> TestCluster {
        Self::start_timed(n, None).await
    }

    /// [`TestCluster::start`] with `grape serve`'s Raft timing for a heartbeat every `heartbeat_ms`.
    pub async fn start_with_heartbeat(n: usize, heartbeat_ms: u64) -> TestCluster {
        Self::start_timed(n, Some(heartbeat_ms)).await
    }

    async fn start_timed(n: usize, heartbeat_ms: Option<u64>) -> TestCluster {
        let mut c = TestCluster { nodes: Vec::new(), heartbeat_ms };
        for i in 0..n {
            let dir = tempfile::tempdir().expect("temp dir");
            let addr = free_addr();
            let bootstrap = c.nodes.first().map(TestNode::uri);
            let node = ClusterNode::start(c.options(dir.path(), addr, bootstrap))
                .await
                .unwrap_or_else(|e| panic!("node {i} did not start: {e}"));
            c.nodes.push(TestNode { dir, addr, node: Some(node) });
        }
        c.wait_until("every node knows every peer", |c| {
            c.running().all(|n| n.handle().members().len() == c.nodes.len())
        })
        .await;
        c
    }

    fn options(&self, dir: &std::path::Path, addr: SocketAddr, bootstrap: Option<String>) -> ClusterOptions {
        let mut o = options(dir, addr, bootstrap);
        if let Some(ms) = self.heartbeat_ms {
            o.heartbeat_ms = ms;
            o.election_timeout_ms = (ms * 4, ms * 8);
        }
        o
    }

    pub fn running(&self) -> impl Iterator<Item = &TestNode> {
        self.nodes.iter().filter(|n| n.node.is_some())
    }

    /// Stops node `i` abruptly (its tasks are aborted, nothing is flushed beyond what is durable).
    pub async fn kill(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].node.take() {
            node.kill().await;
        }
    }

    /// Restarts node `i` on its directory and address.
    pub async fn restart(&mut self, i: usize) {
        let options = self.options(self.nodes[i].dir.path(), self.nodes[i].addr, None);
        let node = ClusterNode::start(options).await.expect("node restarts");
        self.nodes[i].node = Some(node);
    }

    /// Polls `cond` every 20 ms; panics after 20 s.
    pub async fn wait_until(&self, what: &str, cond: impl Fn(&TestCluster) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every running replica of every shard of `collection` applied as much as the
    /// most advanced one.
    pub async fn wait_replicated(&self, collection: &str) {
        let shards =
            self.running().next().and_then(|n| n.handle().placement(collection)).map_or(0, |p| p.len());
        self.wait_until("replicas caught up", |c| {
            (0..shards as u32).all(|s| {
                let applied: Vec<u64> =
                    c.running().filter_map(|n| n.handle().shard_applied(collection, s)).collect();
                applied.windows(2).all(|w| w[0] == w[1])
            })
        })
        .await;
    }
}
