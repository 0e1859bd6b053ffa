//! Collection and full snapshots through the embedded API: a recovered collection equals a model of the
//! state at snapshot time; damaged snapshots are refused without touching the live collection; snapshots
//! recover into another database.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use grape::{
    AliasOperation, CreateCollection, Database, Distance, Error, OptimizersConfigDiff, PointId, PointStruct,
    ScrollRequest, SearchRequest, VectorOutput, VectorParams, VectorsConfig, WithPayload, WithVector,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const DIM: usize = 4;

/// id -> (vector, payload): what a collection should hold.
type Model = BTreeMap<PointId, (Vec<f32>, Value)>;

fn request(shards: u32) -> CreateCollection {
    let mut r = CreateCollection::new(VectorsConfig::Single(VectorParams::new(DIM, Distance::Dot)));
    r.shard_number = Some(shards);
    r.optimizers_config = Some(OptimizersConfigDiff { indexing_threshold: Some(1), ..Default::default() });
    r
}

/// Every point of a collection, read back with vectors and payloads.
fn state(db: &Database, name: &str) -> Model {
    let c = db.collection(name).unwrap();
    let mut out = Model::new();
    let mut req = ScrollRequest {
        limit: 64,
        with_payload: WithPayload::Enable(true),
        with_vector: WithVector::Enable(true),
        ..ScrollRequest::default()
    };
    loop {
        let page = c.scroll(&req).unwrap();
        for r in page.points {
            let Some(VectorOutput::Single(v)) = r.vector else { panic!("point {} has no vector", r.id) };
            out.insert(r.id, (v, Value::Object(r.payload.unwrap_or_default())));
        }
        match page.next_page_offset {
            Some(next) => req.offset = Some(next),
            None => return out,
        }
    }
}

/// Random upserts (ids below `ids`) and a few deletes, applied to the collection and the model.
fn write_random(db: &Database, name: &str, model: &mut Model, rng: &mut SmallRng, n: usize, ids: u64) {
    let c = db.collection(name).unwrap();
    let points: Vec<PointStruct> = (0..n)
        .map(|_| {
            let id = rng.gen_range(0..ids);
            let v: Vec<f32> = (0..DIM).map(|_| f32::from(rng.gen_range(-100i8..100)) / 10.0).collect();
            PointStruct::new(id, v).with_payload(json!({"tag": rng.gen_range(0..5), "id": id})).unwrap()
        })
        .collect();
    for p in &points {
        let v = match &p.vectors {
            grape::VectorStruct::Single(v) => v.clone(),
            other => panic!("unexpected {other:?}"),
        };
        model.insert(p.id, (v, Value::Object(p.payload.clone().unwrap_or_default())));
    }
    c.upsert(points).unwrap();
    let gone: Vec<PointId> = (0..n / 10).map(|_| PointId::Num(rng.gen_range(0..ids))).collect();
    if !gone.is_empty() {
        for id in &gone {
            model.remove(id);
        }
        c.delete(gone).unwrap();
    }
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A collection with sealed, indexed segments and unflushed writes: everything a snapshot must carry.
fn populated(db: &Database, name: &str, shards: u32, rng: &mut SmallRng) -> Model {
    db.create_collection(name, request(shards)).unwrap();
    let mut model = Model::new();
    write_random(db, name, &mut model, rng, 300, 400);
    db.collection(name).unwrap().optimize_now().unwrap();
    assert!(db.collection(name).unwrap().info().unwrap().indexed_vectors_count > 0);
    write_random(db, name, &mut model, rng, 60, 400);
    model
}

#[test]
fn recovery_restores_the_state_at_snapshot_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut model = populated(&db, "c", 2, &mut rng);
    assert_eq!(state(&db, "c"), model);

    let snap = db.create_collection_snapshot("c").unwrap();
    assert!(snap.name.starts_with("c-") && snap.name.ends_with(".snapshot"), "{}", snap.name);
    let at_snapshot = model.clone();
    let path = db.collection_snapshot_path("c", &snap.name).unwrap();
    assert_eq!(path, dir.path().join("snapshots").join("c").join(&snap.name));
    assert_eq!(snap.size, std::fs::metadata(&path).unwrap().len());
    assert_eq!(snap.checksum.as_deref(), Some(sha256_hex(&path).as_str()));
    assert!(snap.creation_time.is_some());
    assert_eq!(db.list_collection_snapshots("c").unwrap(), vec![snap.clone()]);

    // Later writes are not in the snapshot.
    write_random(&db, "c", &mut model, &mut rng, 200, 600);
    db.collection("c").unwrap().flush().unwrap();
    write_random(&db, "c", &mut model, &mut rng, 30, 600);
    assert_ne!(state(&db, "c"), at_snapshot);
    let held = db.collection("c").unwrap();

    db.recover_collection_snapshot("c", &path, snap.checksum.as_deref()).unwrap();
    assert_eq!(state(&db, "c"), at_snapshot);
    assert_eq!(db.collection("c").unwrap().config().params.shard_number, 2);
    // A handle to the replaced collection refuses writes instead of writing into nothing.
    assert!(held.upsert(vec![PointStruct::new(1, vec![0.0; DIM])]).is_err());
    let hits = db.collection("c").unwrap().search(&SearchRequest::new(vec![1.0, 0.0, 0.0, 0.0], 5)).unwrap();
    assert_eq!(hits.len(), 5);
    assert!(!dir.path().join("recovery").read_dir().unwrap().any(|_| true), "staging left behind");

    // The recovered collection takes writes, and everything survives a reopen.
    let mut after = at_snapshot.clone();
    write_random(&db, "c", &mut after, &mut rng, 50, 600);
    db.close().unwrap();
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(state(&db, "c"), after);
    assert_eq!(db.list_collection_snapshots("c").unwrap(), vec![snap.clone()]);

    db.delete_collection_snapshot("c", &snap.name).unwrap();
    assert!(db.list_collection_snapshots("c").unwrap().is_empty());
    assert!(matches!(db.delete_collection_snapshot("c", &snap.name), Err(Error::NotFound(_))));
    assert!(!path.exists());
}

#[test]
fn snapshot_names_are_unique_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut rng = SmallRng::seed_from_u64(1);
    populated(&db, "c", 1, &mut rng);
    let a = db.create_collection_snapshot("c").unwrap();
    let b = db.create_collection_snapshot("c").unwrap();
    assert_ne!(a.name, b.name);
    let names: Vec<String> = db.list_collection_snapshots("c").unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names.len(), 2);
    for bad in ["../c/".to_string() + &a.name, format!("{}.checksum", a.name), "x".into(), String::new()] {
        assert!(matches!(db.collection_snapshot_path("c", &bad), Err(Error::NotFound(_))), "{bad}");
        assert!(matches!(db.delete_collection_snapshot("c", &bad), Err(Error::NotFound(_))), "{bad}");
    }
    assert!(matches!(db.create_collection_snapshot("missing"), Err(Error::NotFound(_))));
    assert!(matches!(db.list_collection_snapshots("missing"), Err(Error::NotFound(_))));
    // Snapshots through an alias land in the collection's own directory.
    db.update_aliases(&[AliasOperation::CreateAlias {
        collection_name: "c".into(),
        alias_name: "al".into(),
    }])
    .unwrap();
    let via_alias = db.create_collection_snapshot("al").unwrap();
    assert!(via_alias.name.starts_with("c-"));
    assert_eq!(db.list_collection_snapshots("c").unwrap().len(), 3);
}

/// Offsets just past each occurrence of `needle` in `bytes`.
fn find_all(bytes: &[u8], needle: &[u8]) -> Vec<usize> {
    bytes.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect()
}

#[test]
fn damaged_snapshots_are_refused_and_leave_the_collection_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut rng = SmallRng::seed_from_u64(3);
    let mut model = populated(&db, "c", 2, &mut rng);
    let snap = db.create_collection_snapshot("c").unwrap();
    let good = std::fs::read(db.collection_snapshot_path("c", &snap.name).unwrap()).unwrap();
    write_random(&db, "c", &mut model, &mut rng, 80, 400);

    let mut damaged: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("not a tar".into(), b"hello, this is not a snapshot".repeat(100)),
        ("first half".into(), good[..good.len() / 2].to_vec()),
        ("first kilobyte".into(), good[..1024].to_vec()),
        ("all but the last shard".into(), good[..good.len() - 4096].to_vec()),
    ];
    // A flipped byte inside segment file bodies (ids, payloads, vectors) fails their checksums.
    for magic in [&b"GRPIDS\0\0"[..], b"GRPPAYL\0", b"GRPVEC\0\0", b"GRPMANI\0"] {
        let at = find_all(&good, magic);
        assert!(!at.is_empty(), "no {magic:?} in the snapshot");
        let mut bytes = good.clone();
        bytes[at[0] + 64 + 1] ^= 0x5a;
        damaged.push((format!("flipped byte after {}", String::from_utf8_lossy(magic)), bytes));
    }
    for (what, bytes) in damaged {
        let path = dir.path().join("damaged.snapshot");
        std::fs::write(&path, &bytes).unwrap();
        let result = db.recover_collection_snapshot("c", &path, None);
        assert!(result.is_err(), "{what}: recovered from a damaged snapshot");
        assert_eq!(state(&db, "c"), model, "{what}: the live collection changed");
    }
    // An intact file with the wrong checksum is refused before anything is unpacked.
    let path = dir.path().join("good.snapshot");
    std::fs::write(&path, &good).unwrap();
    let wrong = "0".repeat(64);
    assert!(matches!(db.recover_collection_snapshot("c", &path, Some(&wrong)), Err(Error::BadInput(_))));
    assert!(matches!(
        db.recover_collection_snapshot("c", &dir.path().join("absent.snapshot"), None),
        Err(Error::NotFound(_))
    ));
    assert_eq!(state(&db, "c"), model);
    assert!(!dir.path().join("recovery").read_dir().unwrap().any(|_| true), "staging left behind");

    // The collection still takes writes, and the intact file (checksum in upper case) still recovers.
    write_random(&db, "c", &mut model, &mut rng, 20, 400);
    assert_eq!(state(&db, "c"), model);
    db.recover_collection_snapshot("c", &path, Some(&sha256_hex(&path).to_uppercase())).unwrap();
    assert_ne!(state(&db, "c"), model);
}

#[test]
fn snapshots_recover_into_another_database() {
    let src_dir = tempfile::tempdir().unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(11);
    let (model, copy) = {
        let db = Database::open(src_dir.path()).unwrap();
        let model = populated(&db, "source", 3, &mut rng);
        let snap = db.create_collection_snapshot("source").unwrap();
        let copy = dst_dir.path().join("incoming.snapshot");
        std::fs::copy(db.collection_snapshot_path("source", &snap.name).unwrap(), &copy).unwrap();
        (model, copy)
    };
    let outside = tempfile::tempdir().unwrap();
    let db = Database::open(outside.path()).unwrap();
    db.recover_collection_snapshot("copy", &copy, None).unwrap();
    assert_eq!(db.list_collections().unwrap(), vec!["copy".to_string()]);
    assert_eq!(state(&db, "copy"), model);
    assert_eq!(db.collection("copy").unwrap().config().params.shard_number, 3);
    // Names that cannot be collections are refused.
    assert!(matches!(db.recover_collection_snapshot("a/b", &copy, None), Err(Error::BadInput(_))));
    db.close().unwrap();
    drop(db);
    let db = Database::open(outside.path()).unwrap();
    assert_eq!(state(&db, "copy"), model);
}

#[test]
fn full_snapshot_holds_every_collection_and_the_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut rng = SmallRng::seed_from_u64(5);
    let a = populated(&db, "a", 1, &mut rng);
    let b = populated(&db, "b", 2, &mut rng);
    db.update_aliases(&[AliasOperation::CreateAlias {
        collection_name: "b".into(),
        alias_name: "bee".into(),
    }])
    .unwrap();
    let full = db.create_full_snapshot().unwrap();
    assert!(full.name.starts_with("full-") && full.name.ends_with(".snapshot"), "{}", full.name);
    assert_eq!(db.list_full_snapshots().unwrap(), vec![full.clone()]);
    let path = db.full_snapshot_path(&full.name).unwrap();
    assert_eq!(full.checksum.as_deref(), Some(sha256_hex(&path).as_str()));
    // Collection snapshots made for the full snapshot are not left in the collections' listings.
    assert!(db.list_collection_snapshots("a").unwrap().is_empty());

    // Unpack: full.json names each collection snapshot with its checksum; each recovers elsewhere.
    let out = tempfile::tempdir().unwrap();
    let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
    let mut header = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if name == "full.json" {
            let mut s = String::new();
            entry.read_to_string(&mut s).unwrap();
            header = Some(serde_json::from_str::<Value>(&s).unwrap());
        } else {
            entry.unpack_in(out.path()).unwrap();
        }
    }
    let header = header.expect("full.json");
    assert_eq!(header["format"], json!(1));
    assert_eq!(header["aliases"], json!({"bee": "b"}));
    let restored = Database::open(out.path().join("db")).unwrap();
    for (name, model) in [("a", &a), ("b", &b)] {
        let entry = &header["collections"][name];
        let file = out.path().join(entry["file"].as_str().unwrap());
        assert_eq!(entry["checksum"].as_str().unwrap(), sha256_hex(&file));
        restored.recover_collection_snapshot(name, &file, entry["checksum"].as_str()).unwrap();
        assert_eq!(&state(&restored, name), model);
    }

    db.delete_full_snapshot(&full.name).unwrap();
    assert!(db.list_full_snapshots().unwrap().is_empty());
    assert!(matches!(db.delete_full_snapshot(&full.name), Err(Error::NotFound(_))));
    assert!(matches!(db.full_snapshot_path("nope.snapshot"), Err(Error::NotFound(_))));
}

#[test]
fn leftovers_of_interrupted_snapshots_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let snap_dir = dir.path().join("snapshots");
    {
        let db = Database::open(dir.path()).unwrap();
        db.create_collection("c", request(1)).unwrap();
        db.create_collection_snapshot("c").unwrap();
        db.close().unwrap();
    }
    std::fs::write(snap_dir.join("c").join("c-2020-01-01-00-00-00.snapshot.tmp"), b"partial").unwrap();
    std::fs::write(snap_dir.join("full-2020-01-01-00-00-00.snapshot.checksum"), b"orphan").unwrap();
    std::fs::write(snap_dir.join("upload-1-1.tmp"), b"spooled").unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut left: Vec<String> = std::fs::read_dir(snap_dir.join("c"))
        .unwrap()
        .chain(std::fs::read_dir(&snap_dir).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let snap = &db.list_collection_snapshots("c").unwrap()[0].name;
    assert_eq!(left, vec!["c".to_string(), snap.clone(), format!("{snap}.checksum")]);
    let mut rng = SmallRng::seed_from_u64(0);
    let mut model = Model::new();
    write_random(&db, "c", &mut model, &mut rng, 5, 10);
    assert_eq!(state(&db, "c"), model);
}
