//! Custom sharding through the embedded API: random sequences of shard key creations and drops, writes
//! under keys, reopens, snapshots and recoveries, compared after every step with a model (one
//! `BTreeMap` of points per key) and brute-force search; plus the refusals Qdrant gives and the crash
//! states of a key creation or drop.

use std::collections::BTreeMap;

use grape::{
    Collection, CountRequest, CreateCollection, CreateShardKey, Database, DatabaseConfig, Distance, Error,
    Payload, PointId, PointStruct, ScoredPoint, ScrollRequest, SearchParams, SearchRequest, ShardKey,
    ShardKeySelector, ShardKeyWithFallback, ShardingMethod, SyncPolicy, VectorParams, VectorStruct,
    VectorsConfig, WithPayload, WithVector,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const DIM: usize = 4;

/// Points by id under each key: (vector, payload).
type Model = BTreeMap<ShardKey, BTreeMap<u64, (Vec<f32>, Payload)>>;

fn open(dir: &std::path::Path) -> Database {
    let mut config = DatabaseConfig::new(dir);
    config.background = false;
    config.wal_sync = SyncPolicy::Never;
    Database::open_with(config).unwrap()
}

fn custom(shard_number: u32) -> CreateCollection {
    let mut c = CreateCollection::new(VectorsConfig::Single(VectorParams::new(DIM, Distance::Euclid)));
    c.sharding_method = Some(ShardingMethod::Custom);
    c.shard_number = Some(shard_number);
    c
}

fn keys() -> [ShardKey; 4] {
    ["eu".into(), "us".into(), 7.into(), 8.into()]
}

fn point(id: u64, v: &[f32], tag: u64) -> PointStruct {
    PointStruct {
        id: PointId::Num(id),
        vectors: VectorStruct::Single(v.to_vec()),
        payload: Some(json!({ "tag": tag }).as_object().cloned().unwrap()),
    }
}

fn all_points(c: &Collection) -> BTreeMap<u64, Payload> {
    let page = c
        .scroll(&ScrollRequest {
            offset: None,
            limit: 10_000,
            with_payload: WithPayload::Enable(true),
            with_vector: WithVector::Enable(false),
            filter: None,
        })
        .unwrap();
    assert!(page.next_page_offset.is_none());
    page.points
        .into_iter()
        .map(|r| match r.id {
            PointId::Num(n) => (n, r.payload.unwrap_or_default()),
            other => panic!("unexpected id {other}"),
        })
        .collect()
}

fn search(c: &Collection, q: &[f32], limit: usize) -> Vec<ScoredPoint> {
    c.search(&SearchRequest {
        using: String::new(),
        vector: q.to_vec(),
        limit,
        offset: 0,
        score_threshold: None,
        params: SearchParams { exact: true, ..Default::default() },
        with_payload: WithPayload::Enable(false),
        with_vector: WithVector::Enable(false),
        filter: None,
    })
    .unwrap()
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt()
}

/// The model's view through the keys `selected`: an id stored under several keys appears once, with
/// the payload of the first key that has it (the union of points), and for search with its best score.
fn expected(model: &Model, selected: &[ShardKey]) -> BTreeMap<u64, Vec<(Vec<f32>, Payload)>> {
    let mut out: BTreeMap<u64, Vec<(Vec<f32>, Payload)>> = BTreeMap::new();
    for key in selected {
        for (id, p) in model.get(key).into_iter().flatten() {
            out.entry(*id).or_default().push(p.clone());
        }
    }
    out
}

/// Compares every read of `c` through each selection with the model.
fn check(db: &Database, model: &Model, rng: &mut SmallRng) {
    let c = db.collection("c").unwrap();
    let present: Vec<ShardKey> = model.keys().cloned().collect();
    assert_eq!(
        {
            let mut k = c.shard_keys();
            k.sort();
            k
        },
        present
    );
    let mut selections: Vec<(Option<ShardKeySelector>, Vec<ShardKey>)> = vec![(None, present.clone())];
    for k in &present {
        selections.push((Some(ShardKeySelector::One(k.clone())), vec![k.clone()]));
    }
    if present.len() >= 2 {
        let two = vec![present[0].clone(), present[present.len() - 1].clone()];
        selections.push((Some(ShardKeySelector::Many(two.clone())), two));
    }
    let q: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-4.0..4.0)).collect();
    for (selector, selected) in selections {
        let view = c.select(selector.as_ref()).unwrap();
        let want = expected(model, &selected);
        let got = all_points(&view);
        assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "ids via {selector:?}");
        for (id, payload) in &got {
            assert!(want[id].iter().any(|(_, p)| p == payload), "payload of {id} via {selector:?}");
        }
        let copies: usize = selected.iter().map(|k| model.get(k).map_or(0, BTreeMap::len)).sum();
        assert_eq!(view.count(&CountRequest { exact: true, filter: None }).unwrap(), copies, "{selector:?}");
        // Brute force: each id once, at its best (smallest) distance over its copies.
        let mut brute: Vec<(f32, u64)> = want
            .iter()
            .map(|(id, copies)| (copies.iter().map(|(v, _)| l2(v, &q)).fold(f32::INFINITY, f32::min), *id))
            .collect();
        brute.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        brute.truncate(5);
        let found = search(&view, &q, 5);
        assert_eq!(found.len(), brute.len(), "{selector:?}");
        for (f, (d, _)) in found.iter().zip(&brute) {
            assert!((f.score - d).abs() < 1e-3, "{selector:?}: {found:?} vs {brute:?}");
        }
        let mut seen = std::collections::BTreeSet::new();
        assert!(found.iter().all(|p| seen.insert(p.id)), "duplicate ids via {selector:?}");
    }
}

#[test]
fn random_key_lifecycles_match_the_model() {
    for seed in 0..4u64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let mut db = Some(open(dir.path()));
        db.as_ref().unwrap().create_collection("c", custom(2)).unwrap();
        let mut model = Model::new();
        for step in 0..60 {
            let d = db.as_ref().unwrap();
            let key = keys()[rng.gen_range(0..4)].clone();
            match rng.gen_range(0..10) {
                0 | 1 => {
                    let mut req = CreateShardKey::new(key.clone());
                    req.shards_number = Some(rng.gen_range(1..4));
                    let r = d.create_shard_key("c", &req);
                    match model.entry(key) {
                        std::collections::btree_map::Entry::Occupied(_) => {
                            let e = r.unwrap_err();
                            assert!(e.to_string().contains("already exists"), "{e}");
                        }
                        std::collections::btree_map::Entry::Vacant(v) => {
                            r.unwrap();
                            v.insert(BTreeMap::new());
                        }
                    }
                }
                2 => {
                    let r = d.delete_shard_key("c", &key);
                    match model.remove(&key) {
                        Some(_) => r.unwrap(),
                        None => assert!(matches!(r, Err(Error::BadInput(m)) if m.contains("not found"))),
                    }
                }
                3..=5 => {
                    let batch: Vec<PointStruct> = (0..rng.gen_range(1..8))
                        .map(|_| {
                            let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-4.0..4.0)).collect();
                            point(rng.gen_range(0..30), &v, step)
                        })
                        .collect();
                    let c = d.collection("c").unwrap();
                    let sel = ShardKeySelector::One(key.clone());
                    let r = c.select(Some(&sel)).and_then(|v| v.upsert(batch.clone()));
                    match model.get_mut(&key) {
                        Some(points) => {
                            r.unwrap();
                            for p in batch {
                                let PointId::Num(id) = p.id else { unreachable!() };
                                let VectorStruct::Single(v) = p.vectors else { unreachable!() };
                                points.insert(id, (v, p.payload.unwrap()));
                            }
                        }
                        None => assert!(matches!(r, Err(Error::BadInput(m)) if m.contains("not found"))),
                    }
                }
                6 => {
                    let Some(points) = model.get_mut(&key) else { continue };
                    let ids: Vec<u64> = (0..3).map(|_| rng.gen_range(0..30)).collect();
                    let c = d.collection("c").unwrap();
                    let sel = ShardKeySelector::One(key.clone());
                    c.select(Some(&sel))
                        .unwrap()
                        .delete(ids.iter().map(|&i| PointId::Num(i)).collect())
                        .unwrap();
                    ids.iter().for_each(|i| drop(points.remove(i)));
                }
                7 => {
                    let Some(points) = model.get_mut(&key) else { continue };
                    let Some(&id) = points.keys().next() else { continue };
                    let c = d.collection("c").unwrap();
                    let sel = ShardKeySelector::One(key.clone());
                    let payload = json!({ "set": step }).as_object().cloned().unwrap();
                    c.select(Some(&sel))
                        .unwrap()
                        .set_payload(vec![PointId::Num(id)], payload.clone(), None)
                        .unwrap();
                    points.get_mut(&id).unwrap().1.extend(payload);
                }
                8 => {
                    // Drop without close: the WAL of every key's shards is replayed.
                    drop(db.take());
                    db = Some(open(dir.path()));
                }
                _ => {
                    let path = d.create_collection_snapshot("c").unwrap();
                    let file = d.collection_snapshot_path("c", &path.name).unwrap();
                    d.recover_collection_snapshot("c", &file, path.checksum.as_deref()).unwrap();
                }
            }
            check(db.as_ref().unwrap(), &model, &mut rng);
        }
    }
}

#[test]
fn writes_need_an_existing_key_and_keys_need_custom_sharding() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.create_collection("c", custom(1)).unwrap();
    let c = db.collection("c").unwrap();
    assert!(c.shards().is_empty(), "a custom-sharded collection starts without shards");
    let e = c.upsert(vec![point(1, &[0.0; DIM], 0)]).unwrap_err();
    assert_eq!(e.to_string(), "Wrong input: Shard key not specified");
    let e = c.select(Some(&ShardKeySelector::One("nope".into()))).err().unwrap();
    assert_eq!(e.to_string(), "Wrong input: Shard key nope not found");
    let e = db.delete_shard_key("c", &"nope".into()).unwrap_err();
    assert_eq!(e.to_string(), "Wrong input: Shard key nope not found");
    db.create_shard_key("c", &CreateShardKey::new("a".into())).unwrap();
    let e = db.create_shard_key("c", &CreateShardKey::new("a".into())).unwrap_err();
    assert_eq!(e.to_string(), "Wrong input: Shard key a already exists");
    // Reads without a key see every key; an empty custom collection reads as empty.
    assert_eq!(c.count(&CountRequest { exact: true, filter: None }).unwrap(), 0);

    let mut auto = CreateCollection::new(VectorsConfig::Single(VectorParams::new(DIM, Distance::Dot)));
    auto.shard_number = Some(2);
    db.create_collection("auto", auto).unwrap();
    let e = db.create_shard_key("auto", &CreateShardKey::new(1.into())).unwrap_err();
    assert_eq!(e.to_string(), "Wrong input: Shard Key 1 cannot be created with Auto sharding method");
    let e = db.collection("auto").unwrap().select(Some(&ShardKeySelector::One(1.into()))).err().unwrap();
    assert_eq!(e.to_string(), "Wrong input: Shard key 1 not found");
    assert_eq!(db.list_shard_keys("auto").unwrap(), Vec::<ShardKey>::new());
}

#[test]
fn one_point_id_under_two_keys_is_two_points() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.create_collection("c", custom(3)).unwrap();
    for k in ["a", "b"] {
        db.create_shard_key("c", &CreateShardKey::new(k.into())).unwrap();
    }
    let c = db.collection("c").unwrap();
    let under = |k: &str| c.select(Some(&ShardKeySelector::One(k.into()))).unwrap();
    under("a").upsert(vec![point(1, &[1.0, 0.0, 0.0, 0.0], 1)]).unwrap();
    under("b").upsert(vec![point(1, &[0.0, 0.0, 0.0, 5.0], 2)]).unwrap();
    // A list writes the same points under both keys.
    let both = ShardKeySelector::Many(vec!["a".into(), "b".into()]);
    c.select(Some(&both)).unwrap().upsert(vec![point(2, &[0.0; DIM], 3)]).unwrap();
    let tag = |c: &Collection, id: u64| all_points(c)[&id]["tag"].clone();
    assert_eq!(tag(&under("a"), 1), json!(1));
    assert_eq!(tag(&under("b"), 1), json!(2));
    assert_eq!(under("a").count(&CountRequest { exact: true, filter: None }).unwrap(), 2);
    // Without a selector: each copy is counted, an id is listed and found once (its best copy).
    assert_eq!(c.count(&CountRequest { exact: true, filter: None }).unwrap(), 4);
    assert_eq!(all_points(&c).len(), 2);
    let hits = search(&c, &[0.0, 0.0, 0.0, 5.0], 10);
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![PointId::Num(1), PointId::Num(2)]);
    assert!(hits[0].score.abs() < 1e-6, "the copy under b is at distance 0: {hits:?}");
    // Deleting under one key leaves the other copy.
    under("a").delete(vec![PointId::Num(1)]).unwrap();
    assert!(!all_points(&under("a")).contains_key(&1));
    assert_eq!(tag(&under("b"), 1), json!(2));
    // A fallback is used when the target key does not exist.
    let fallback =
        ShardKeySelector::WithFallback(ShardKeyWithFallback { target: "zz".into(), fallback: "b".into() });
    c.select(Some(&fallback)).unwrap().upsert(vec![point(9, &[0.0; DIM], 9)]).unwrap();
    assert!(all_points(&under("b")).contains_key(&9));
    // Dropping a key deletes its shards' data; a new key of the same name starts empty.
    db.delete_shard_key("c", &"b".into()).unwrap();
    db.create_shard_key("c", &CreateShardKey::new("b".into())).unwrap();
    assert!(all_points(&under("b")).is_empty());
    let ids: Vec<u32> = c.shards().iter().map(|h| h.id).collect();
    assert_eq!(ids, vec![0, 1, 2, 6, 7, 8], "shard ids are never reused");
}

#[test]
fn interrupted_key_changes_leave_no_stray_shards() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        db.create_collection("c", custom(1)).unwrap();
        db.create_shard_key("c", &CreateShardKey::new("a".into())).unwrap();
        let c = db.collection("c").unwrap();
        c.select(Some(&ShardKeySelector::One("a".into())))
            .unwrap()
            .upsert(vec![point(1, &[0.0; DIM], 1)])
            .unwrap();
        db.close().unwrap();
    }
    let shards = dir.path().join("collections").join("c").join("shards");
    // A creation that crashed before its metadata commit left a shard directory with data in it (the
    // id the next key gets), and a drop that crashed after its commit left its directory behind.
    std::fs::create_dir_all(shards.join("1").join("wal")).unwrap();
    std::fs::write(shards.join("1").join("wal").join("junk"), b"stale").unwrap();
    let db = open(dir.path());
    assert!(!shards.join("1").exists(), "a shard the configuration does not list is removed on open");
    db.create_shard_key("c", &CreateShardKey::new("b".into())).unwrap();
    let c = db.collection("c").unwrap();
    assert!(all_points(&c.select(Some(&ShardKeySelector::One("b".into()))).unwrap()).is_empty());
    assert_eq!(all_points(&c).len(), 1);
    assert_eq!(db.list_shard_keys("c").unwrap(), vec![ShardKey::from("a"), ShardKey::from("b")]);
    db.delete_shard_key("c", &"a".into()).unwrap();
    assert!(!shards.join("0").exists(), "a dropped key's shard directory is deleted");
    drop(db);
    let db = open(dir.path());
    assert_eq!(db.list_shard_keys("c").unwrap(), vec![ShardKey::from("b")]);
    assert_eq!(db.collection("c").unwrap().config().params.sharding_method, Some(ShardingMethod::Custom));
}
