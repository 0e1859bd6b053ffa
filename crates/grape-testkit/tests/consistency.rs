//! Read consistency and write acknowledgement in an in-process cluster: concurrent clients on every
//! node write and read points while a shard leader is killed, and the history of
//! `majority` reads and `quorum` writes is checked by the linearizability checker; an `all` write
//! needs every replica, an asynchronous write answers before it is applied.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grape::{
    CreateCollection, Database, Distance, PointId, PointStruct, ReadConsistency, UpdateStatus, VectorParams,
    VectorsConfig, WithPayload, WithVector, WriteAck,
};
use grape_testkit::linearizability::{check, Op, OpKind};
use grape_testkit::TestCluster;
use rand::{Rng, SeedableRng};

fn request(shards: u32, rf: u32) -> CreateCollection {
    let mut r = CreateCollection::new(VectorsConfig::Single(VectorParams::new(2, Distance::Dot)));
    r.shard_number = Some(shards);
    r.replication_factor = Some(rf);
    r
}

fn point(id: u64, value: u64) -> PointStruct {
    let mut p = PointStruct::new(id, vec![1.0, id as f32]);
    p.payload = serde_json::json!({ "v": value }).as_object().cloned();
    p
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// The value a linearizable read finds for `id` through `db`; `Err` when the read failed.
fn read(db: &Database, id: u64) -> grape::Result<Option<u64>> {
    let c = db.collection("lin")?.with_consistency(ReadConsistency::Majority, None);
    let found = c.retrieve(&[PointId::Num(id)], &WithPayload::Enable(true), &WithVector::Enable(false))?;
    Ok(found.first().and_then(|r| r.payload.as_ref()?.get("v")?.as_u64()))
}

fn write(db: &Database, id: u64, value: u64) -> grape::Result<()> {
    let c = db.collection("lin")?.with_consistency(ReadConsistency::Majority, Some(WriteAck::Quorum));
    c.upsert(vec![point(id, value)]).map(|_| ())
}

/// Upserts one point through `db`, acknowledged per `ack`.
fn upsert_with(db: &Database, ack: WriteAck, id: u64, value: u64) -> grape::Result<grape::UpdateResult> {
    db.collection("lin")?.with_consistency(ReadConsistency::One, Some(ack)).upsert(vec![point(id, value)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn majority_reads_and_quorum_writes_are_linearizable_across_a_leader_failure() {
    let mut cluster = TestCluster::start(3).await;
    let d0 = cluster.nodes[0].db();
    blocking(move || d0.create_collection("lin", request(2, 3)).unwrap()).await;
    cluster.wait_until("attached", |c| c.running().all(|n| n.db().collection("lin").is_ok())).await;
    let dbs: Vec<Database> = cluster.nodes.iter().map(|n| n.db()).collect();

    const CLIENTS: u64 = 4;
    const OPS: u64 = 60;
    const KEYS: u64 = 5;
    let history: Arc<Mutex<Vec<Op>>> = Arc::default();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (dbs, history) = (dbs.clone(), Arc::clone(&history));
        clients.push(tokio::task::spawn_blocking(move || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(client);
            let mut node = client as usize % dbs.len();
            for seq in 0..OPS {
                let key = rng.gen_range(0..KEYS);
                let db = &dbs[node];
                let invoked = Instant::now();
                let op = if rng.gen_bool(0.5) {
                    let value = client * 1_000 + seq + 1;
                    let ok = write(db, key, value).is_ok();
                    let returned = ok.then(Instant::now);
                    if !ok {
                        node = (node + 1) % dbs.len();
                    }
                    Some(Op { key, kind: OpKind::Write(value), invoked, returned })
                } else {
                    match read(db, key) {
                        Ok(found) => Some(Op {
                            key,
                            kind: OpKind::Read(found),
                            invoked,
                            returned: Some(Instant::now()),
                        }),
                        Err(_) => {
                            node = (node + 1) % dbs.len();
                            None
                        }
                    }
                };
                history.lock().unwrap().extend(op);
                std::thread::sleep(Duration::from_millis(rng.gen_range(0..15)));
            }
        }));
    }

    // Kill the leader of shard 0 while the clients run (its clients' writes in flight end with an
    // unknown outcome; they go on through the other nodes, where a new leader is elected). The node
    // is not restarted: the clients still hold its database handle, which keeps its directory locked.
    while history.lock().unwrap().len() < (CLIENTS * OPS / 4) as usize {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let leader = cluster.nodes[0].handle().shard_leader("lin", 0).await.expect("a leader");
    let victim = cluster.nodes.iter().position(|n| n.handle().id() == leader).unwrap();
    let killed = Instant::now();
    cluster.kill(victim).await;
    for c in clients {
        c.await.unwrap();
    }

    let history = history.lock().unwrap().clone();
    let after = history.iter().filter(|o| o.invoked > killed && o.returned.is_some()).count();
    assert!(after >= 60, "only {after} operations completed after the leader was killed");
    let writes =
        history.iter().filter(|o| matches!(o.kind, OpKind::Write(_)) && o.returned.is_some()).count();
    let reads_found = history.iter().filter(|o| matches!(o.kind, OpKind::Read(Some(_)))).count();
    assert!(writes >= 50, "only {writes} writes were acknowledged");
    assert!(reads_found >= 40, "only {reads_found} reads found a point");
    if let Err(v) = check(&history) {
        panic!("not linearizable: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_needs_every_replica_and_async_answers_before_applying() {
    let mut cluster = TestCluster::start(3).await;
    let d0 = cluster.nodes[0].db();
    blocking(move || d0.create_collection("lin", request(1, 3)).unwrap()).await;
    cluster.wait_until("attached", |c| c.running().all(|n| n.db().collection("lin").is_ok())).await;

    // Every replica up: `all` succeeds, and a linearizable read through any node sees it.
    let db = cluster.nodes[1].db();
    let r = blocking(move || upsert_with(&db, WriteAck::All, 1, 10)).await.unwrap();
    assert_eq!(r.status, UpdateStatus::Completed);
    assert!(r.operation_id.is_some());
    for n in &cluster.nodes {
        let db = n.db();
        assert_eq!(blocking(move || read(&db, 1)).await.unwrap(), Some(10));
    }

    // An asynchronous write answers `acknowledged` without an op_num, and is applied soon after.
    let db = cluster.nodes[2].db();
    let r = blocking(move || upsert_with(&db, WriteAck::Async, 2, 20)).await.unwrap();
    assert_eq!(r.status, UpdateStatus::Acknowledged);
    assert_eq!(r.operation_id, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let db = cluster.nodes[0].db();
        if blocking(move || read(&db, 2)).await.unwrap() == Some(20) {
            break;
        }
        assert!(Instant::now() < deadline, "the asynchronous write was never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // One replica down: `quorum` still succeeds, `all` does not (the write is committed on the
    // majority, so it is readable, but the caller is told that not every replica has it).
    let leader = cluster.nodes[0].handle().shard_leader("lin", 0).await.expect("a leader");
    let victim = cluster.nodes.iter().position(|n| n.handle().id() != leader).unwrap();
    cluster.kill(victim).await;
    let alive = (0..3).find(|&i| i != victim).unwrap();
    let db = cluster.nodes[alive].db();
    blocking(move || write(&db, 3, 30)).await.unwrap();
    let db = cluster.nodes[alive].db();
    let err = blocking(move || upsert_with(&db, WriteAck::All, 4, 40)).await.unwrap_err();
    assert!(matches!(err, grape::Error::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("not every replica"), "{err}");
    let db = cluster.nodes[alive].db();
    assert_eq!(blocking(move || read(&db, 4)).await.unwrap(), Some(40));
}
