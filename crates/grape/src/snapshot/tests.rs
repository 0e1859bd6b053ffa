//! Crash behaviour of recovery: the on-disk states a crash can leave, and what the next open makes of them.

use grape_types::{
    CreateCollection, Distance, PointId, PointStruct, ScrollRequest, VectorParams, VectorsConfig,
    WithPayload, WithVector,
};

use super::Recovery;
use crate::Database;

fn ids(db: &Database, name: &str) -> Vec<PointId> {
    let req = ScrollRequest {
        limit: 1000,
        with_payload: WithPayload::Enable(false),
        with_vector: WithVector::Enable(false),
        ..ScrollRequest::default()
    };
    db.collection(name).unwrap().scroll(&req).unwrap().points.into_iter().map(|r| r.id).collect()
}

/// A database with collection `c` holding points 1..=3 and a snapshot of it; then point 4 is added.
fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut request = CreateCollection::new(VectorsConfig::Single(VectorParams::new(2, Distance::Dot)));
    request.shard_number = Some(2);
    db.create_collection("c", request).unwrap();
    let c = db.collection("c").unwrap();
    c.upsert((1..=3).map(|i| PointStruct::new(i, vec![i as f32, 1.0])).collect()).unwrap();
    let snap = db.create_collection_snapshot("c").unwrap();
    c.upsert(vec![PointStruct::new(4, vec![4.0, 1.0])]).unwrap();
    let path = db.collection_snapshot_path("c", &snap.name).unwrap();
    db.close().unwrap();
    (dir, path)
}

const AT_SNAPSHOT: [PointId; 3] = [PointId::Num(1), PointId::Num(2), PointId::Num(3)];

#[test]
fn crash_before_the_commit_point_keeps_the_old_collection() {
    let (dir, snapshot) = setup();
    {
        let db = Database::open(dir.path()).unwrap();
        let staged = Recovery::stage(dir.path(), "c", &snapshot).unwrap();
        std::mem::forget(staged); // the process dies here: its staging directory stays behind
        db.close().unwrap();
    }
    assert_eq!(std::fs::read_dir(dir.path().join("recovery")).unwrap().count(), 1);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(ids(&db, "c").len(), 4);
    assert_eq!(std::fs::read_dir(dir.path().join("recovery")).unwrap().count(), 0);
}

#[test]
fn crash_after_the_commit_point_is_rolled_forward() {
    // Crashes after the commit marker, after the directory swap, and for a collection that did not exist.
    for (target, swapped) in [("c", false), ("c", true), ("new", false), ("new", true)] {
        let (dir, snapshot) = setup();
        {
            let db = Database::open(dir.path()).unwrap();
            db.collection("c").unwrap().close().unwrap();
            let mut staged = Recovery::stage(dir.path(), target, &snapshot).unwrap();
            staged.commit().unwrap();
            if swapped {
                staged.move_into_place(&dir.path().join("collections").join(target)).unwrap();
            }
            drop(staged); // the process dies here; the committed directory must survive the drop
            drop(db);
        }
        let db = Database::open(dir.path()).unwrap();
        assert_eq!(ids(&db, target), AT_SNAPSHOT, "{target} swapped={swapped}");
        if target == "new" {
            assert_eq!(ids(&db, "c").len(), 4, "the source collection is untouched");
        }
        assert_eq!(std::fs::read_dir(dir.path().join("recovery")).unwrap().count(), 0);
        db.collection(target).unwrap().upsert(vec![PointStruct::new(9, vec![0.0, 1.0])]).unwrap();
        db.close().unwrap();
        drop(db);
        let db = Database::open(dir.path()).unwrap();
        assert_eq!(ids(&db, target).len(), 4, "{target} swapped={swapped}: writes after recovery persist");
    }
}
