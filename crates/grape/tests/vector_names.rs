//! Named vectors added to and dropped from existing collections: searches, upserts and retrieval
//! against a model (brute force over the model's vectors), across flushes, optimizations, reopening and
//! a process that exits without closing (a crash: nothing flushed beyond the WAL), and the requests
//! Qdrant refuses.

use std::collections::BTreeMap;
use std::process::Command;

use grape::tracker::OptimizationStatus;

use grape::{
    CreateCollection, Database, DatabaseConfig, Distance, NamedVectors, NewDenseVector, NewSparseVector,
    NewVector, Operation, OptimizersConfigDiff, PointId, PointStruct, SearchRequest, SparseVector,
    SyncPolicy, Vector, VectorOutput, VectorParams, VectorStruct, VectorsConfig, WithPayload, WithVector,
};

fn open(dir: &std::path::Path) -> Database {
    let mut config = DatabaseConfig::new(dir);
    config.background = false;
    config.wal_sync = SyncPolicy::Always;
    Database::open_with(config).unwrap()
}

fn dense(size: usize, distance: Distance) -> NewVector {
    NewVector::Dense(NewDenseVector { size, distance, multivector_config: None, datatype: None })
}

/// A deterministic vector of `dim` for point `id` and generation `g`.
fn vec_of(id: u64, dim: usize, g: u64) -> Vec<f32> {
    (0..dim).map(|i| ((id * 31 + i as u64 * 7 + g * 13) % 17) as f32 - 8.0).collect()
}

fn point(id: u64, vectors: &[(&str, Vec<f32>)]) -> PointStruct {
    let named: NamedVectors =
        vectors.iter().map(|(n, v)| (n.to_string(), Vector::Dense(v.clone()))).collect();
    PointStruct { id: PointId::Num(id), vectors: VectorStruct::Named(named), payload: None }
}

/// The collection's points with their vectors, by id.
fn stored(db: &Database, name: &str) -> BTreeMap<u64, NamedVectors> {
    let c = db.collection(name).unwrap();
    let ids: Vec<PointId> = (0..100).map(PointId::Num).collect();
    c.retrieve(&ids, &WithPayload::Enable(false), &WithVector::Enable(true))
        .unwrap()
        .into_iter()
        .map(|r| {
            let PointId::Num(id) = r.id else { panic!("numeric ids only") };
            let named = match r.vector {
                Some(VectorOutput::Named(m)) => m,
                Some(VectorOutput::Single(v)) => [(String::new(), Vector::Dense(v))].into(),
                None => NamedVectors::new(),
            };
            (id, named)
        })
        .collect()
}

/// Exact nearest ids by `vector` under Euclid (smaller is better) among the model's points having it.
fn brute_euclid(model: &BTreeMap<u64, NamedVectors>, vector: &str, q: &[f32], k: usize) -> Vec<u64> {
    let mut scored: Vec<(f32, u64)> = model
        .iter()
        .filter_map(|(id, v)| match v.get(vector) {
            Some(Vector::Dense(d)) => {
                Some((d.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(), *id))
            }
            _ => None,
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|s| s.1).collect()
}

fn search_ids(db: &Database, name: &str, vector: &str, q: Vec<f32>, k: usize) -> grape::Result<Vec<u64>> {
    let mut req = SearchRequest::new(q, k);
    req.using = vector.to_string();
    req.params.exact = true;
    Ok(db
        .collection(name)?
        .search(&req)?
        .into_iter()
        .map(|p| match p.id {
            PointId::Num(n) => n,
            PointId::Uuid(_) => unreachable!(),
        })
        .collect())
}

fn create(db: &Database, name: &str) {
    let mut create = CreateCollection::new(VectorsConfig::Multi(
        [("a".to_string(), VectorParams::new(4, Distance::Dot))].into(),
    ));
    // Small thresholds: a few dozen points make sealed and indexed segments.
    create.optimizers_config = Some(OptimizersConfigDiff {
        indexing_threshold: Some(1),
        default_segment_number: Some(2),
        ..Default::default()
    });
    db.create_collection(name, create).unwrap();
}

/// The scenario run by [`crash_child`], stopping (the process exits, nothing flushed or closed) after
/// step `stop`. Returns the model of the state after that step.
fn scenario(db: &Database, stop: u32) -> BTreeMap<u64, NamedVectors> {
    let mut model: BTreeMap<u64, NamedVectors> = BTreeMap::new();
    let upsert = |db: &Database, points: Vec<PointStruct>, model: &mut BTreeMap<u64, NamedVectors>| {
        for p in &points {
            let PointId::Num(id) = p.id else { unreachable!() };
            model.insert(id, p.vectors.clone().into_named());
        }
        db.collection("v").unwrap().upsert(points).unwrap();
    };
    // 1: thirty points with "a", sealed and indexed.
    create(db, "v");
    upsert(db, (0..30).map(|i| point(i, &[("a", vec_of(i, 4, 0))])).collect(), &mut model);
    db.collection("v").unwrap().optimize_now().unwrap();
    if stop == 1 {
        return model;
    }
    // 2: add "x" (Euclid, 3) and give it to points 0..10 (replaced whole).
    db.create_vector("v", "x", &dense(3, Distance::Euclid)).unwrap();
    upsert(
        db,
        (0..10).map(|i| point(i, &[("a", vec_of(i, 4, 1)), ("x", vec_of(i, 3, 1))])).collect(),
        &mut model,
    );
    if stop == 2 {
        return model;
    }
    // 3: flush, then drop "a".
    db.flush().unwrap();
    db.delete_vector("v", "a").unwrap();
    model.values_mut().for_each(|v| drop(v.remove("a")));
    if stop == 3 {
        return model;
    }
    // 4: "a" again, another shape (Euclid, 2), for points 5..15.
    db.create_vector("v", "a", &dense(2, Distance::Euclid)).unwrap();
    for i in 5..15 {
        let mut vectors = model.get(&i).cloned().unwrap_or_default();
        vectors.insert("a".into(), Vector::Dense(vec_of(i, 2, 2)));
        let named = VectorStruct::Named(vectors);
        upsert(db, vec![PointStruct { id: PointId::Num(i), vectors: named, payload: None }], &mut model);
    }
    model
}

/// Child process of [`crash_keeps_vector_changes`]: runs the scenario to a step and exits at once.
#[test]
#[ignore]
fn crash_child() {
    let (Ok(dir), Ok(stop)) = (std::env::var("GRAPE_VN_DIR"), std::env::var("GRAPE_VN_STOP")) else { return };
    let db = open(std::path::Path::new(&dir));
    scenario(&db, stop.parse().unwrap());
    std::process::exit(0); // no destructor runs: nothing is flushed or closed
}

fn check(db: &Database, model: &BTreeMap<u64, NamedVectors>, step: u32) {
    assert_eq!(&stored(db, "v"), model, "step {step}: stored points");
    let config = db.collection("v").unwrap().config();
    match step {
        1 => assert!(config.params.vectors.get("x").is_none()),
        2 => assert_eq!(config.params.vectors.get("x").unwrap().size, 3),
        3 => assert!(config.params.vectors.get("a").is_none()),
        _ => assert_eq!(config.params.vectors.get("a").unwrap().size, 2),
    }
    if step >= 2 {
        let q = vec![1.0, -2.0, 0.5];
        assert_eq!(
            search_ids(db, "v", "x", q.clone(), 5).unwrap(),
            brute_euclid(model, "x", &q, 5),
            "step {step}"
        );
    }
    if step == 4 {
        let q = vec![3.0, -1.0];
        let found = search_ids(db, "v", "a", q.clone(), 20).unwrap();
        assert_eq!(found, brute_euclid(model, "a", &q, 20), "only points 5..15 have the new a");
        assert_eq!(found.len(), 10);
    }
    if step == 3 {
        let e = search_ids(db, "v", "a", vec![0.0; 4], 3).unwrap_err();
        assert!(e.to_string().contains("Not existing vector name"), "{e}");
    }
}

#[test]
fn crash_keeps_vector_changes() {
    if std::env::var("GRAPE_VN_DIR").is_ok() {
        return;
    }
    for stop in 1..=4 {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("GRAPE_VN_DIR", dir.path())
            .env("GRAPE_VN_STOP", stop.to_string())
            .status()
            .unwrap();
        assert!(status.success());
        // The same scenario in a scratch database gives the expected state.
        let scratch = tempfile::tempdir().unwrap();
        let model = scenario(&open(scratch.path()), stop);
        let db = open(dir.path());
        check(&db, &model, stop);
        // Closed (the manifest records which segments hold dropped vectors) and opened again.
        db.close().unwrap();
        drop(db);
        let db = open(dir.path());
        check(&db, &model, stop);
        // The optimizer rewrites the segments that hold dropped vectors; nothing visible changes.
        db.collection("v").unwrap().optimize_now().unwrap();
        let rewrites: usize = db
            .collection("v")
            .unwrap()
            .optimizations()
            .iter()
            .flat_map(|(_, r)| r.completed.iter())
            .filter(|o| o.optimizer == "drop_vectors" && o.status == OptimizationStatus::Done)
            .count();
        assert_eq!(rewrites > 0, stop >= 3, "step {stop}: segments rewritten without dropped vectors");
        check(&db, &model, stop);
        db.close().unwrap();
        drop(db);
        check(&open(dir.path()), &model, stop);
    }
}

#[test]
fn sparse_and_multi_vectors_can_be_added_and_upserted() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    create(&db, "s");
    let c = db.collection("s").unwrap();
    c.upsert((0..5).map(|i| point(i, &[("a", vec_of(i, 4, 0))])).collect()).unwrap();
    let sparse = NewVector::Sparse(NewSparseVector { modifier: None, datatype: None });
    db.create_vector("s", "text", &sparse).unwrap();
    let multi = NewVector::Dense(NewDenseVector {
        size: 2,
        distance: Distance::Dot,
        multivector_config: Some(grape::MultiVectorConfig {
            comparator: grape::MultiVectorComparator::MaxSim,
        }),
        datatype: None,
    });
    db.create_vector("s", "late", &multi).unwrap();
    let c = db.collection("s").unwrap();
    let sv = SparseVector { indices: vec![1, 7], values: vec![0.5, 2.0] };
    let named: NamedVectors = [
        ("a".to_string(), Vector::Dense(vec_of(9, 4, 0))),
        ("text".to_string(), Vector::Sparse(sv.clone())),
        ("late".to_string(), Vector::Multi(vec![vec![1.0, 0.0], vec![0.0, 1.0]])),
    ]
    .into();
    c.upsert(vec![PointStruct { id: PointId::Num(9), vectors: VectorStruct::Named(named), payload: None }])
        .unwrap();
    let hits = c
        .search_sparse(&grape::SparseSearchRequest::new(
            "text",
            SparseVector { indices: vec![7], values: vec![1.0] },
            10,
        ))
        .unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![PointId::Num(9)]);
    assert_eq!(stored(&db, "s")[&9].get("text"), Some(&Vector::Sparse(sv)));
    db.close().unwrap();
    let db = open(dir.path());
    let config = db.collection("s").unwrap().config();
    assert!(config.sparse("text").is_some() && config.params.vectors.get("late").unwrap().is_multi());
    db.delete_vector("s", "text").unwrap();
    db.delete_vector("s", "late").unwrap();
    assert_eq!(stored(&db, "s")[&9].keys().collect::<Vec<_>>(), vec!["a"]);
}

#[test]
fn refused_requests() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    create(&db, "r");
    let bad = |e: grape::Error, what: &str| {
        assert!(matches!(e, grape::Error::BadInput(_)), "{e}");
        assert!(e.to_string().contains(what), "{e} should mention {what}");
    };
    bad(db.create_vector("r", "a", &dense(4, Distance::Dot)).unwrap_err(), "already exists");
    bad(db.delete_vector("r", "nope").unwrap_err(), "Not existing vector name");
    bad(db.delete_vector("r", "a").unwrap_err(), "last vector");
    bad(db.create_vector("r", "z", &dense(0, Distance::Dot)).unwrap_err(), "size");
    assert!(matches!(
        db.create_vector("missing", "z", &dense(2, Distance::Dot)),
        Err(grape::Error::NotFound(_))
    ));
    db.create_collection(
        "single",
        CreateCollection::new(VectorsConfig::Single(VectorParams::new(2, Distance::Dot))),
    )
    .unwrap();
    bad(db.delete_vector("single", "").unwrap_err(), "only dense vector");
    // Upserts of a vector that does not exist (yet, or any more) are refused; nothing was changed.
    let c = db.collection("r").unwrap();
    bad(c.upsert(vec![point(1, &[("z", vec![1.0, 2.0])])]).unwrap_err(), "z");
    assert_eq!(c.config().params.vectors.iter().count(), 1);
}

/// A change some shards logged while the stored configuration missed it (a crash between the two)
/// is finished when the database opens.
#[test]
fn an_interrupted_change_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        let mut create = CreateCollection::new(VectorsConfig::Single(VectorParams::new(2, Distance::Dot)));
        create.shard_number = Some(3);
        db.create_collection("c", create).unwrap();
        let c = db.collection("c").unwrap();
        c.upsert((0..20).map(|i| point(i, &[("", vec_of(i, 2, 0))])).collect()).unwrap();
        // Shard 1 alone logs the new vector: the configuration and the other shards never hear of it.
        let op = Operation::CreateVector { name: "x".into(), vector: dense(3, Distance::Cosine) };
        c.shards()[1].shard.update(&op, grape::WriteAck::Quorum).unwrap();
        db.close().unwrap();
    }
    let db = open(dir.path());
    let config = db.collection("c").unwrap().config();
    assert_eq!(config.params.vectors.get("x").map(|p| p.size), Some(3));
    assert_eq!(config.params.vectors.get("").map(|p| p.size), Some(2));
    for shard in db.collection("c").unwrap().shards() {
        assert_eq!(
            shard.shard.local().unwrap().engine().config().params.vectors.get("x").map(|p| p.size),
            Some(3)
        );
    }
    // Every shard takes the vector now.
    let c = db.collection("c").unwrap();
    c.upsert((0..20).map(|i| point(i, &[("", vec_of(i, 2, 0)), ("x", vec_of(i, 3, 5))])).collect()).unwrap();
    assert_eq!(stored(&db, "c").values().filter(|v| v.contains_key("x")).count(), 20);
    db.close().unwrap();
    // The stored configuration has it too.
    assert_eq!(open(dir.path()).collection("c").unwrap().config(), config);
}
