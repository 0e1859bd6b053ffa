//! The shard engine as a state machine: deterministic and idempotent application, durable op_num,
//! snapshot and restore.

use grape_shard::wal::SyncPolicy;
use grape_shard::{LocalShard, ShardEngine, ShardOptions};
use grape_types::operation::PointWrite;
use grape_types::{
    CollectionConfig, CreateCollection, Distance, Operation, OptimizersConfigDiff, PointId, Record,
    ScrollRequest, VectorParams, VectorsConfig, WithPayload, WithVector,
};
use serde_json::json;

fn config() -> CollectionConfig {
    let mut c = CreateCollection::new(VectorsConfig::Single(VectorParams::new(2, Distance::Dot)));
    c.optimizers_config = Some(OptimizersConfigDiff {
        indexing_threshold: Some(1),
        max_segment_size: Some(1),
        ..Default::default()
    });
    c.into_config().unwrap()
}

fn write(id: u64, x: f32, tag: &str) -> PointWrite {
    PointWrite {
        id: PointId::Num(id),
        vectors: [(String::new(), grape_types::Vector::Dense(vec![x, 1.0]))].into(),
        payload: json!({"tag": tag}).as_object().cloned(),
    }
}

fn ops() -> Vec<Operation> {
    vec![
        Operation::Upsert((0..20).map(|i| write(i, i as f32, "a")).collect()),
        Operation::Delete(vec![PointId::Num(3), PointId::Num(4)]),
        Operation::SetPayload {
            points: vec![PointId::Num(5)],
            payload: json!({"x": 1}).as_object().cloned().unwrap(),
            key: None,
        },
        Operation::Upsert(vec![write(3, 33.0, "b"), write(5, 55.0, "c")]),
        Operation::ClearPayload { points: vec![PointId::Num(6)] },
        Operation::DeletePayloadKeys { points: vec![PointId::Num(7)], keys: vec!["tag".into()] },
        Operation::OverwritePayload {
            points: vec![PointId::Num(8)],
            payload: json!({"o": true}).as_object().cloned().unwrap(),
        },
    ]
}

fn dump(engine: &ShardEngine) -> Vec<Record> {
    engine
        .scroll(&ScrollRequest {
            offset: None,
            limit: 1000,
            with_payload: WithPayload::Enable(true),
            with_vector: WithVector::Enable(true),
            filter: None,
        })
        .unwrap()
        .points
}

#[test]
fn application_is_deterministic_and_idempotent() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = ShardEngine::open(a_dir.path(), config()).unwrap();
    let b = ShardEngine::open(b_dir.path(), config()).unwrap();
    for (i, op) in ops().iter().enumerate() {
        a.apply(i as u64 + 1, op).unwrap();
        b.apply(i as u64 + 1, op).unwrap();
        if i == 2 {
            // Segment layout must not change the outcome.
            b.flush().unwrap();
        }
    }
    let once = dump(&a);
    assert_eq!(once, dump(&b));
    assert_eq!(once.len(), 19, "20 upserted, 2 deleted, 1 re-upserted");
    // Replaying everything (as after a crash before truncation) changes nothing.
    for (i, op) in ops().iter().enumerate() {
        a.apply(i as u64 + 1, op).unwrap();
    }
    assert_eq!(dump(&a), once);
    // A replayed suffix (recovery replays from the persisted op_num on) changes nothing either.
    for (i, op) in ops().iter().enumerate().skip(3) {
        a.apply(i as u64 + 1, op).unwrap();
    }
    assert_eq!(dump(&a), once);
}

#[test]
fn persisted_op_advances_only_on_flush() {
    let dir = tempfile::tempdir().unwrap();
    let engine = ShardEngine::open(dir.path(), config()).unwrap();
    for (i, op) in ops().iter().enumerate() {
        engine.apply(i as u64 + 1, op).unwrap();
    }
    assert_eq!(engine.last_applied(), 7);
    assert_eq!(engine.persisted_op(), 0);
    assert_eq!(engine.flush().unwrap(), 7);
    assert_eq!(engine.persisted_op(), 7);
    drop(engine);
    let engine = ShardEngine::open(dir.path(), config()).unwrap();
    assert_eq!(engine.persisted_op(), 7);
    assert_eq!(dump(&engine).len(), 19);
}

#[test]
fn snapshot_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let options = ShardOptions { wal_sync: SyncPolicy::Never, background: false };
    let shard = LocalShard::open(dir.path(), config(), options.clone()).unwrap();
    for op in ops() {
        shard.update(&op).unwrap();
    }
    shard.optimize_now().unwrap();
    let before = dump(shard.engine());
    let mut archive = Vec::new();
    shard.flush().unwrap();
    let at = shard.engine().snapshot(&mut archive).unwrap();
    assert_eq!(at, 7);

    let restored_dir = tempfile::tempdir().unwrap();
    let target = restored_dir.path().join("shard");
    assert_eq!(grape_shard::snapshot::restore(&target, &mut archive.as_slice()).unwrap(), 7);
    let restored = LocalShard::open(&target, config(), options).unwrap();
    assert_eq!(dump(restored.engine()), before);
    // Numbering continues after the snapshot's op_num.
    assert_eq!(restored.update(&Operation::Delete(vec![PointId::Num(0)])).unwrap(), 8);
    // Restoring over an existing shard is refused.
    assert!(grape_shard::snapshot::restore(&target, &mut archive.as_slice()).is_err());
}

/// Filter operations resolve against the state they see: deterministic across segment layouts, no-ops on
/// replay, and decodable from the WAL after a restart.
#[test]
fn filter_operations() {
    let tag = |t: &str| -> grape_types::Filter {
        serde_json::from_value(json!({"must": [{"key": "tag", "match": {"value": t}}]})).unwrap()
    };
    let filter_ops = [
        Operation::SetPayloadByFilter {
            filter: tag("a"),
            payload: json!({"f": 1}).as_object().cloned().unwrap(),
            key: None,
        },
        Operation::DeleteByFilter { filter: tag("c") },
    ];
    let all: Vec<Operation> = ops().into_iter().chain(filter_ops.iter().cloned()).collect();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ShardEngine::open(a_dir.path(), config()).unwrap();
    let b = ShardEngine::open(b_dir.path(), config()).unwrap();
    for (i, op) in all.iter().enumerate() {
        a.apply(i as u64 + 1, op).unwrap();
        b.apply(i as u64 + 1, op).unwrap();
        b.flush().unwrap();
    }
    let state = dump(&a);
    assert_eq!(state, dump(&b));
    // Point 5 (tag "c") is gone; every point still tagged "a" got f = 1, and no other point did.
    assert_eq!(state.len(), 18);
    assert!(!state.iter().any(|r| r.id == PointId::Num(5)));
    for r in &state {
        let p = r.payload.as_ref().unwrap();
        assert_eq!(p.get("f").is_some(), p.get("tag") == Some(&json!("a")), "{r:?}");
    }
    // Replaying the filter operations changes nothing.
    for (i, op) in all.iter().enumerate().skip(ops().len()) {
        a.apply(i as u64 + 1, op).unwrap();
    }
    assert_eq!(dump(&a), state);

    // Through the WAL: written, not flushed, recovered on open.
    let dir = tempfile::tempdir().unwrap();
    let options = ShardOptions { wal_sync: SyncPolicy::Never, background: false };
    let shard = LocalShard::open(dir.path(), config(), options.clone()).unwrap();
    for op in &all {
        shard.update(op).unwrap();
    }
    assert_eq!(shard.engine().persisted_op(), 0, "nothing flushed: the reopen must replay the WAL");
    // As after a crash: no close, no flush (the memory is leaked on purpose).
    std::mem::forget(shard);
    let shard = LocalShard::open(dir.path(), config(), options).unwrap();
    assert_eq!(dump(shard.engine()), state);
}

/// The background worker sleeps while nothing is due (no polling: an idle shard costs no CPU), yet a
/// write is flushed when the flush interval ends without any further write to wake the worker.
#[test]
fn idle_worker_sleeps_and_the_flush_interval_still_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = CreateCollection::new(VectorsConfig::Single(VectorParams::new(2, Distance::Dot)));
    c.optimizers_config = Some(OptimizersConfigDiff { flush_interval_sec: Some(1), ..Default::default() });
    let options = ShardOptions { wal_sync: SyncPolicy::Always, background: true };
    let shard = LocalShard::open(dir.path(), c.into_config().unwrap(), options).unwrap();
    shard.update(&Operation::Upsert((0..5).map(|i| write(i, i as f32, "a")).collect())).unwrap();
    let engine = shard.engine();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while engine.persisted_op() < engine.last_applied() {
        assert!(std::time::Instant::now() < deadline, "the write was never flushed by the worker");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!engine.needs_flush());
    // Let the step that flushed finish, then watch the worker sleep.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = shard.worker_wakeups();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(shard.worker_wakeups(), before, "an idle worker woke up with nothing to do");
    // A write wakes it again.
    shard.update(&Operation::Delete(vec![PointId::Num(0)])).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while shard.worker_wakeups() == before {
        assert!(std::time::Instant::now() < deadline, "a write did not wake the worker");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    shard.close().unwrap();
}
