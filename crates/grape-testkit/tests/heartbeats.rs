//! Shard groups run without openraft's heartbeats: one beat per pair of nodes keeps the followers of
//! every group led on a living node from electing, a dead leader's groups elect a new one, and a
//! restarted node rejoins its groups as a follower.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use grape::{CreateCollection, Distance, VectorParams, VectorsConfig};
use grape_testkit::TestCluster;

const SHARDS: u32 = 6;

/// (leader, term) of every shard as each running node sees it, by node id.
type Views = BTreeMap<u64, Vec<(Option<u64>, Option<u64>)>>;

async fn views(cluster: &TestCluster) -> Views {
    let mut out = BTreeMap::new();
    for n in cluster.running() {
        let h = n.handle();
        let mut v = Vec::new();
        for s in 0..SHARDS {
            v.push((h.shard_leader("c", s).await, h.shard_term("c", s)));
        }
        out.insert(h.id(), v);
    }
    out
}

/// Every running node knows the same leader, in the same term, for every shard.
fn agreed(views: &Views) -> Option<Vec<(u64, u64)>> {
    let first = views.values().next()?;
    if views.values().any(|v| v != first) {
        return None;
    }
    first.iter().map(|&(l, t)| Some((l?, t?))).collect()
}

async fn wait_agreed(cluster: &TestCluster, within: Duration) -> Vec<(u64, u64)> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(a) = agreed(&views(cluster).await) {
            return a;
        }
        assert!(Instant::now() < deadline, "shard leaders not agreed within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_followers_keep_their_leader_and_elect_when_it_dies() {
    let mut cluster = TestCluster::start(3).await;
    let d0 = cluster.nodes[0].db();
    let mut req = CreateCollection::new(VectorsConfig::Single(VectorParams::new(4, Distance::Dot)));
    req.shard_number = Some(SHARDS);
    req.replication_factor = Some(3);
    tokio::task::spawn_blocking(move || d0.create_collection("c", req).unwrap()).await.unwrap();
    cluster.wait_until("attached", |c| c.running().all(|n| n.db().collection("c").is_ok())).await;
    let before = wait_agreed(&cluster, Duration::from_secs(10)).await;

    // No writes: twelve times the longest election timeout (500 ms in the testkit) without a change.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let idle = views(&cluster).await;
    assert_eq!(agreed(&idle).as_ref(), Some(&before), "an idle group changed leader or term: {idle:?}");

    // The node leading shard 0 dies: its groups elect new leaders among the survivors, in a newer
    // term; the groups led elsewhere keep their leader and term.
    let dead = before[0].0;
    let victim = cluster.nodes.iter().position(|n| n.handle().id() == dead).unwrap();
    cluster.kill(victim).await;
    let started = Instant::now();
    let after = loop {
        if let Some(a) = agreed(&views(&cluster).await).filter(|a| a.iter().all(|(l, _)| *l != dead)) {
            break a;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no new leaders within 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for (s, (old, new)) in before.iter().zip(&after).enumerate() {
        if old.0 == dead {
            assert!(new.1 > old.1, "shard {s}: new leader in term {} after {}", new.1, old.1);
        } else {
            assert_eq!(old, new, "shard {s}: its leader lives, yet it changed");
        }
    }

    // The dead node comes back: it learns the leaders from their beats and takes no group over.
    cluster.restart(victim).await;
    cluster.wait_until("restarted node attached", |c| c.nodes[victim].db().collection("c").is_ok()).await;
    let rejoined = wait_agreed(&cluster, Duration::from_secs(10)).await;
    assert_eq!(rejoined, after, "the restarted node disturbed a group");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = views(&cluster).await;
    assert_eq!(agreed(&settled).as_ref(), Some(&after), "a group changed after the restart: {settled:?}");
}
