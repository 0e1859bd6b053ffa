//! Crash test: a child process writes continuously and is killed with SIGKILL at random moments. After
//! each kill the directory must open cleanly and every acknowledged write must be there with its latest
//! value (the one batch in flight at the kill may or may not be).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use grape::{
    CreateCollection, Database, Distance, OptimizersConfigDiff, PointId, PointStruct, VectorParams,
    VectorsConfig, WithPayload, WithVector,
};
use rand::{Rng, SeedableRng};

const ROUNDS: u64 = 20;
const IDS: u64 = 300;

/// What the child reports: an operation per id with a sequence number (`None` = deleted).
type Batch = Vec<(u64, Option<u64>)>;

fn parse_batch(s: &str) -> Batch {
    serde_json::from_str(s).expect("child output")
}

#[test]
fn kill9_keeps_every_acknowledged_write() {
    if std::env::var("GRAPE_CRASH_DIR").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // Last acknowledged state per id, across rounds.
    let mut acked: BTreeMap<u64, Option<u64>> = BTreeMap::new();
    let mut total_acks = 0usize;
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_writer", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("GRAPE_CRASH_DIR", dir.path())
            .env("GRAPE_CRASH_SEED", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => lines.push(l),
                    Err(_) => break,
                }
            }
            lines
        });
        // Wait until the child is writing, then kill it at a random moment.
        let started = Instant::now();
        while !dir.path().join("collections").exists() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..700)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        let mut in_flight: Option<Batch> = None;
        for line in &lines {
            // libtest may print "test child_writer ... " on the same line as the first message.
            if let Some(at) = line.find("BEGIN ") {
                in_flight = Some(parse_batch(&line[at + "BEGIN ".len()..]));
            } else if line.ends_with("ACK") {
                for (id, state) in in_flight.take().expect("ACK without BEGIN") {
                    acked.insert(id, state);
                    total_acks += 1;
                }
            }
        }
        let db = Database::open(dir.path()).expect("directory must open cleanly after kill -9");
        let Ok(c) = db.collection("crash") else {
            assert!(acked.is_empty(), "round {round}: collection lost after acknowledged writes");
            continue;
        };
        let ids: Vec<PointId> = (0..IDS).map(PointId::Num).collect();
        let stored: BTreeMap<u64, u64> = c
            .retrieve(&ids, &WithPayload::Enable(true), &WithVector::Enable(true))
            .unwrap()
            .into_iter()
            .map(|r| {
                let PointId::Num(id) = r.id else { panic!("uuid") };
                let seq = r.payload.unwrap()["seq"].as_u64().unwrap();
                let Some(grape::VectorOutput::Single(v)) = r.vector else { panic!("vector") };
                assert_eq!(v[0], (seq % 1000) as f32, "vector and payload of point {id} disagree");
                (id, seq)
            })
            .collect();
        let pending: BTreeMap<u64, Option<u64>> = in_flight.unwrap_or_default().into_iter().collect();
        for id in 0..IDS {
            let now = stored.get(&id).copied();
            let expected = acked.get(&id).copied().flatten();
            let ok = now == expected || pending.get(&id).is_some_and(|p| *p == now);
            assert!(
                ok,
                "round {round}: point {id} is {now:?}, acknowledged {expected:?}, in flight {:?}",
                pending.get(&id)
            );
        }
        // Adopt the in-flight batch's outcome as the new truth.
        for (id, _) in pending {
            acked.insert(id, stored.get(&id).copied());
        }
        db.close().unwrap();
    }
    assert!(total_acks > 1000, "the child acknowledged only {total_acks} writes");
}

/// The writer run by the test above in a child process.
#[test]
#[ignore = "run by kill9_keeps_every_acknowledged_write as a child process"]
fn child_writer() {
    let Ok(dir) = std::env::var("GRAPE_CRASH_DIR") else { return };
    let seed: u64 = std::env::var("GRAPE_CRASH_SEED").unwrap().parse().unwrap();
    let db = Database::open(&dir).unwrap();
    if !db.collection_exists("crash").unwrap() {
        let mut create = CreateCollection::new(VectorsConfig::Single(VectorParams::new(4, Distance::Euclid)));
        create.optimizers_config = Some(OptimizersConfigDiff {
            indexing_threshold: Some(2),
            max_segment_size: Some(8),
            flush_interval_sec: Some(0),
            deleted_threshold: Some(0.1),
            vacuum_min_vector_number: Some(10),
            ..Default::default()
        });
        db.create_collection("crash", create).unwrap();
    }
    let c = db.collection("crash").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut seq = (seed + 1) * 1_000_000;
    let out = std::io::stdout();
    loop {
        let n = rng.gen_range(1..20);
        let deleting = rng.gen_bool(0.15);
        let batch: Batch = (0..n)
            .map(|_| {
                seq += 1;
                (rng.gen_range(0..IDS), if deleting { None } else { Some(seq) })
            })
            .collect();
        // Later entries for the same id win, as in the engine.
        let mut dedup: BTreeMap<u64, Option<u64>> = BTreeMap::new();
        for (id, s) in &batch {
            dedup.insert(*id, *s);
        }
        let batch: Batch = dedup.into_iter().collect();
        {
            let mut o = out.lock();
            writeln!(o, "BEGIN {}", serde_json::to_string(&batch).unwrap()).unwrap();
            o.flush().unwrap();
        }
        if deleting {
            c.delete(batch.iter().map(|(id, _)| PointId::Num(*id)).collect()).unwrap();
        } else {
            let points = batch
                .iter()
                .map(|(id, s)| {
                    let s = s.unwrap();
                    PointStruct::new(*id, vec![(s % 1000) as f32, 1.0, 2.0, 3.0])
                        .with_payload(serde_json::json!({"seq": s}))
                        .unwrap()
                })
                .collect();
            c.upsert(points).unwrap();
        }
        let mut o = out.lock();
        writeln!(o, "ACK").unwrap();
        o.flush().unwrap();
    }
}
