//! In-process clusters against a single-node oracle: the same data written through any node reads
//! back the same through every node; leaders fail over; restarted nodes catch up.

use std::time::Duration;

use grape::{
    CountRequest, CreateCollection, Database, Distance, PointId, PointStruct, ScrollRequest, SearchRequest,
    VectorParams, VectorsConfig, WithPayload, WithVector,
};
use grape_testkit::TestCluster;
use rand::{Rng, SeedableRng};

const DIM: usize = 8;

fn request(shards: u32, rf: u32) -> CreateCollection {
    let mut r = CreateCollection::new(VectorsConfig::Single(VectorParams::new(DIM, Distance::Cosine)));
    r.shard_number = Some(shards);
    r.replication_factor = Some(rf);
    r
}

fn points(range: std::ops::Range<u64>, seed: u64) -> Vec<PointStruct> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    range
        .map(|i| {
            let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut p = PointStruct::new(i, v);
            p.payload = Some(
                serde_json::json!({ "n": i, "even": i % 2 == 0 }).as_object().cloned().unwrap_or_default(),
            );
            p
        })
        .collect()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Search, scroll and count of `db` equal those of the oracle.
fn assert_same_reads(db: &Database, oracle: &Database, name: &str) {
    let c = db.collection(name).unwrap();
    let o = oracle.collection(name).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    for _ in 0..10 {
        let q: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut req = SearchRequest::new(q, 10);
        req.params.exact = true;
        req.with_payload = WithPayload::Enable(true);
        let got = c.search(&req).unwrap();
        let want = o.search(&req).unwrap();
        let ids = |v: &[grape::ScoredPoint]| v.iter().map(|p| p.id).collect::<Vec<_>>();
        assert_eq!(ids(&got), ids(&want));
        for (g, w) in got.iter().zip(&want) {
            assert!((g.score - w.score).abs() < 1e-5);
            assert_eq!(g.payload, w.payload);
        }
    }
    let scroll = ScrollRequest {
        offset: None,
        limit: 1000,
        with_payload: WithPayload::Enable(true),
        with_vector: WithVector::Enable(false),
        filter: None,
    };
    assert_eq!(c.scroll(&scroll).unwrap(), o.scroll(&scroll).unwrap());
    let count = CountRequest { filter: None, exact: true };
    assert_eq!(c.count(&count).unwrap(), o.count(&count).unwrap());
}

fn oracle_with(points: Vec<PointStruct>) -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_collection("c", request(1, 1)).unwrap();
    db.collection("c").unwrap().upsert(points).unwrap();
    (dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_read_like_one_node() {
    let cluster = TestCluster::start(3).await;
    let dbs: Vec<Database> = cluster.nodes.iter().map(|n| n.db()).collect();
    let d0 = dbs[0].clone();
    blocking(move || d0.create_collection("c", request(3, 2)).unwrap()).await;
    // Every node sees the collection as soon as the creating call returned on the first one.
    let placement = cluster.nodes[1].handle().placement("c");
    cluster
        .wait_until("all nodes attached the collection", |c| {
            c.running().all(|n| n.db().collection("c").is_ok())
        })
        .await;
    let placement = placement.expect("placement");
    assert_eq!(placement.len(), 3);
    assert!(placement.iter().all(|r| r.len() == 2));

    let data = points(0..300, 1);
    // Writes through different nodes.
    for (i, chunk) in data.chunks(50).enumerate() {
        let (db, chunk) = (dbs[i % 3].clone(), chunk.to_vec());
        blocking(move || db.collection("c").unwrap().upsert(chunk).unwrap()).await;
    }
    let d1 = dbs[1].clone();
    blocking(move || d1.collection("c").unwrap().delete(vec![PointId::Num(7), PointId::Num(8)]).unwrap())
        .await;
    cluster.wait_replicated("c").await;
    let (_odir, oracle) = oracle_with(data);
    oracle.collection("c").unwrap().delete(vec![PointId::Num(7), PointId::Num(8)]).unwrap();
    for db in &dbs {
        let (db, oracle) = (db.clone(), oracle.clone());
        blocking(move || assert_same_reads(&db, &oracle, "c")).await;
    }
    // Collection info counts all points, wherever they are.
    let d2 = dbs[2].clone();
    let info = blocking(move || d2.collection_info("c").unwrap()).await;
    assert_eq!(info.points_count, 298);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_shard_leader_elects_another_and_writes_go_on() {
    let mut cluster = TestCluster::start(3).await;
    let d0 = cluster.nodes[0].db();
    blocking(move || d0.create_collection("c", request(1, 3)).unwrap()).await;
    cluster.wait_until("attached", |c| c.running().all(|n| n.db().collection("c").is_ok())).await;
    let first = points(0..100, 2);
    let (db, batch) = (cluster.nodes[1].db(), first.clone());
    blocking(move || db.collection("c").unwrap().upsert(batch).unwrap()).await;

    let leader = cluster.nodes[0].handle().shard_leader("c", 0).await.expect("a leader");
    let victim = cluster.nodes.iter().position(|n| n.handle().id() == leader).unwrap();
    let started = std::time::Instant::now();
    cluster.kill(victim).await;
    let survivor = (victim + 1) % 3;
    let handle = cluster.nodes[survivor].handle();
    let mut new_leader = None;
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(l) = handle.shard_leader("c", 0).await.filter(|&l| l != leader) {
            new_leader = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(new_leader.is_some(), "no new shard leader within 10 s");

    let second = points(100..200, 3);
    let (db, batch) = (cluster.nodes[survivor].db(), second.clone());
    blocking(move || db.collection("c").unwrap().upsert(batch).unwrap()).await;

    // The killed node comes back and catches up from the log.
    cluster.restart(victim).await;
    cluster.wait_until("restarted node attached", |c| c.nodes[victim].db().collection("c").is_ok()).await;
    cluster.wait_replicated("c").await;
    let mut all = first;
    all.extend(second);
    let (_odir, oracle) = oracle_with(all);
    for n in cluster.running() {
        let (db, oracle) = (n.db(), oracle.clone());
        blocking(move || assert_same_reads(&db, &oracle, "c")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_without_quorum_refuses_writes() {
    let mut cluster = TestCluster::start(3).await;
    let d0 = cluster.nodes[0].db();
    blocking(move || d0.create_collection("c", request(1, 3)).unwrap()).await;
    cluster.wait_until("attached", |c| c.running().all(|n| n.db().collection("c").is_ok())).await;
    cluster.kill(1).await;
    cluster.kill(2).await;
    let db = cluster.nodes[0].db();
    let err = blocking(move || db.collection("c").unwrap().upsert(points(0..5, 4)).unwrap_err()).await;
    assert!(matches!(err, grape::Error::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("no quorum"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collections_are_created_configured_and_deleted_cluster_wide() {
    let cluster = TestCluster::start(3).await;
    let d1 = cluster.nodes[1].db();
    // Default shard number in cluster mode: one per node, as Qdrant does.
    let config = blocking(move || {
        d1.create_collection(
            "c",
            CreateCollection::new(VectorsConfig::Single(VectorParams::new(DIM, Distance::Dot))),
        )
        .unwrap()
    })
    .await;
    assert_eq!(config.params.shard_number, 3);
    let d2 = cluster.nodes[2].db();
    let err = blocking(move || d2.create_collection("c", request(1, 1)).unwrap_err()).await;
    assert!(matches!(err, grape::Error::AlreadyExists(_)), "{err}");
    cluster.wait_until("attached", |c| c.running().all(|n| n.db().collection("c").is_ok())).await;
    let d0 = cluster.nodes[0].db();
    blocking(move || {
        d0.create_payload_index("c", "n", grape::PayloadFieldSchema::Type(grape::PayloadSchemaType::Integer))
            .unwrap()
    })
    .await;
    cluster
        .wait_until("every node has the index declared", |c| {
            c.running().all(|n| n.db().collection("c").unwrap().config().payload_schema.contains_key("n"))
        })
        .await;
    let d2 = cluster.nodes[2].db();
    assert!(blocking(move || d2.delete_collection("c").unwrap()).await);
    cluster.wait_until("gone everywhere", |c| c.running().all(|n| n.db().collection("c").is_err())).await;
    let d0 = cluster.nodes[0].db();
    assert!(!blocking(move || d0.delete_collection("c").unwrap()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_nodes_with_three_replicas_read_like_one_node() {
    let cluster = TestCluster::start(5).await;
    // All five are metadata voters (the cap is five).
    let status = cluster.nodes[4].handle().cluster_status();
    assert_eq!(status["peers"].as_object().map(|p| p.len()), Some(5));
    let d3 = cluster.nodes[3].db();
    blocking(move || d3.create_collection("c", request(4, 3)).unwrap()).await;
    cluster.wait_until("attached", |c| c.running().all(|n| n.db().collection("c").is_ok())).await;
    let placement = cluster.nodes[0].handle().placement("c").unwrap();
    assert!(placement
        .iter()
        .all(|r| r.len() == 3 && r.iter().collect::<std::collections::BTreeSet<_>>().len() == 3));
    let data = points(0..200, 5);
    for (i, chunk) in data.chunks(40).enumerate() {
        let (db, chunk) = (cluster.nodes[i % 5].db(), chunk.to_vec());
        blocking(move || db.collection("c").unwrap().upsert(chunk).unwrap()).await;
    }
    cluster.wait_replicated("c").await;
    let (_odir, oracle) = oracle_with(data);
    for n in cluster.running() {
        let (db, oracle) = (n.db(), oracle.clone());
        blocking(move || assert_same_reads(&db, &oracle, "c")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moving_and_replicating_a_shard_under_writes_loses_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let cluster = TestCluster::start(3).await;
    let d0 = cluster.nodes[0].db();
    blocking(move || d0.create_collection("c", request(1, 2)).unwrap()).await;
    cluster.wait_until("attached", |c| c.running().all(|n| n.db().collection("c").is_ok())).await;
    let handle = cluster.nodes[0].handle();
    let before = handle.placement("c").unwrap()[0].clone();
    let ids: Vec<u64> = cluster.nodes.iter().map(|n| n.handle().id()).collect();
    let outsider = *ids.iter().find(|id| !before.contains(id)).unwrap();
    let (from, stays) = (before[0], before[1]);
    let index_of = |id: u64| ids.iter().position(|&x| x == id).unwrap();

    // Bad requests first: clear errors, nothing changes.
    let h = handle.clone();
    let errors = blocking(move || {
        [
            h.change_replicas("c", 0, Some(stays), None),
            h.change_replicas("c", 0, Some(12345), None),
            h.change_replicas("c", 0, None, Some(outsider)),
            h.change_replicas("c", 7, Some(outsider), None),
        ]
    })
    .await;
    for e in errors {
        assert!(matches!(e, Err(grape::Error::BadInput(_))), "{e:?}");
    }

    // A writer through the outsider node (every write is forwarded) runs throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (db, stop, acked) =
            (cluster.nodes[index_of(outsider)].db(), Arc::clone(&stop), Arc::clone(&acked));
        tokio::task::spawn_blocking(move || {
            let c = db.collection("c").unwrap();
            let mut next = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let batch = points(next..next + 5, next);
                if c.upsert(batch).is_ok() {
                    acked.lock().unwrap().extend(next..next + 5);
                }
                next += 5;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Move the replica from `from` to the outsider.
    let h = handle.clone();
    blocking(move || h.change_replicas("c", 0, Some(outsider), Some(from)).unwrap()).await;
    cluster
        .wait_until("the outsider holds the shard and the old holder dropped it", |c| {
            c.nodes[index_of(outsider)].handle().shard_applied("c", 0).is_some()
                && c.nodes[index_of(from)].handle().shard_applied("c", 0).is_none()
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Replicate it back: three replicas.
    let h = handle.clone();
    blocking(move || h.change_replicas("c", 0, Some(from), None).unwrap()).await;
    cluster
        .wait_until("all three hold the shard", |c| {
            c.running().all(|n| n.handle().shard_applied("c", 0).is_some())
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    cluster.wait_replicated("c").await;

    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 50, "too few writes went through: {}", acked.len());
    let want: Vec<PointId> = acked.iter().map(|&i| PointId::Num(i)).collect();
    for n in cluster.running() {
        let (db, want) = (n.db(), want.clone());
        blocking(move || {
            let c = db.collection("c").unwrap();
            let got = c.retrieve(&want, &WithPayload::Enable(false), &WithVector::Enable(false)).unwrap();
            assert_eq!(got.len(), want.len(), "a node misses acknowledged points");
        })
        .await;
        let p = n.handle().placement("c").unwrap();
        assert_eq!(p[0].len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_a_peer_keeps_every_point_and_refuses_only_copies() {
    let mut cluster = TestCluster::start(3).await;
    let d0 = cluster.nodes[0].db();
    blocking(move || {
        d0.create_collection("r2", request(2, 2)).unwrap();
        d0.create_collection("r1", request(3, 1)).unwrap();
    })
    .await;
    cluster.wait_until("attached", |c| c.running().all(|n| n.db().collection("r2").is_ok())).await;
    let d1 = cluster.nodes[1].db();
    let data = points(0..100, 9);
    blocking(move || d1.collection("r2").unwrap().upsert(data).unwrap()).await;
    let handle = cluster.nodes[0].handle();
    let ids: Vec<u64> = cluster.nodes.iter().map(|n| n.handle().id()).collect();
    // A peer holding the only replica of an r1 shard is refused without force.
    let r1 = handle.placement("r1").unwrap();
    let holder = r1[0][0];
    let h = handle.clone();
    let refused = blocking(move || h.remove_peer(holder, false)).await;
    assert!(matches!(refused, Err(grape::Error::BadInput(_))), "{refused:?}");
    let h = handle.clone();
    assert!(matches!(blocking(move || h.remove_peer(424242, false)).await, Err(grape::Error::NotFound(_))));
    // Drop r1, then remove a peer other than node 0: r2's shards keep their other replica.
    let d0 = cluster.nodes[0].db();
    blocking(move || d0.delete_collection("r1").unwrap()).await;
    let victim = ids[2];
    let h = handle.clone();
    blocking(move || h.remove_peer(victim, false).unwrap()).await;
    cluster
        .wait_until("the peer is out of the metadata and of every shard", |c| {
            let h = c.nodes[0].handle();
            !h.members().contains(&victim) && h.placement("r2").unwrap().iter().all(|r| !r.contains(&victim))
        })
        .await;
    cluster
        .wait_until("the removed peer handed its replicas over", |c| {
            (0..2).all(|s| c.nodes[2].handle().shard_applied("r2", s).is_none())
        })
        .await;
    cluster.kill(2).await;
    let d1 = cluster.nodes[1].db();
    let count = blocking(move || {
        d1.collection("r2").unwrap().count(&CountRequest { filter: None, exact: true }).unwrap()
    })
    .await;
    assert_eq!(count, 100);
    // Writes still commit on the two remaining nodes.
    let d0 = cluster.nodes[0].db();
    blocking(move || d0.collection("r2").unwrap().upsert(points(100..110, 10)).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moving_a_single_replica_shard_keeps_its_points() {
    let cluster = TestCluster::start(3).await;
    let d0 = cluster.nodes[0].db();
    blocking(move || d0.create_collection("c", request(1, 1)).unwrap()).await;
    cluster.wait_until("attached", |c| c.running().all(|n| n.db().collection("c").is_ok())).await;
    let data = points(0..200, 7);
    let (d0, chunk) = (cluster.nodes[0].db(), data.clone());
    blocking(move || d0.collection("c").unwrap().upsert(chunk).unwrap()).await;
    let handle = cluster.nodes[0].handle();
    let from = handle.placement("c").unwrap()[0][0];
    let to = cluster.nodes.iter().map(|n| n.handle().id()).find(|&id| id != from).unwrap();
    let index_of = |id: u64| cluster.nodes.iter().position(|n| n.handle().id() == id).unwrap();
    let h = handle.clone();
    // The only replica moves: the new holder must join the group, not start an empty one.
    blocking(move || h.change_replicas("c", 0, Some(to), Some(from)).unwrap()).await;
    assert_eq!(handle.placement("c").unwrap()[0], vec![to]);
    cluster
        .wait_until("the new holder has the shard and the old one dropped it", |c| {
            c.nodes[index_of(to)].handle().shard_applied("c", 0).is_some()
                && c.nodes[index_of(from)].handle().shard_applied("c", 0).is_none()
        })
        .await;
    let (_odir, oracle) = oracle_with(data);
    for n in cluster.running() {
        let (db, oracle) = (n.db(), oracle.clone());
        blocking(move || assert_same_reads(&db, &oracle, "c")).await;
    }
}
