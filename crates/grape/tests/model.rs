//! Model test: random sequences of writes, flushes, optimizations and reopens applied to Grape and to a
//! `BTreeMap` reference, compared after every step (proptest, seeded by proptest's own config).

use std::collections::BTreeMap;

use grape::{
    CreateCollection, Database, DatabaseConfig, Distance, NamedVectors, OptimizersConfigDiff, Payload,
    PointId, PointStruct, ScrollRequest, SearchParams, SearchRequest, SparseSearchRequest, SparseVector,
    SyncPolicy, Vector, VectorParams, VectorStruct, VectorsConfig, WithPayload, WithVector,
};
use proptest::prelude::*;
use serde_json::{json, Value};

const DIM: usize = 3;

/// id, vector "a", optional vector "b", payload tag.
type UpsertPoint = (u64, [i8; DIM], Option<[i8; 2]>, u8);

#[derive(Debug, Clone)]
enum Step {
    Upsert(Vec<UpsertPoint>),
    Delete(Vec<u64>),
    SetPayload(Vec<u64>, u8, Option<&'static str>),
    Overwrite(Vec<u64>, u8),
    DeleteKey(Vec<u64>),
    Clear(Vec<u64>),
    /// Set vector "b" of existing points.
    UpdateB(Vec<u64>, [i8; 2]),
    /// Remove vector "b" from existing points.
    DropB(Vec<u64>),
    Flush,
    Optimize,
    Reopen,
}

fn ids() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(0u64..40, 1..6)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => prop::collection::vec(
            (0u64..40, prop::array::uniform3(any::<i8>()), prop::option::of(prop::array::uniform2(any::<i8>())), any::<u8>()),
            1..12,
        )
        .prop_map(Step::Upsert),
        2 => ids().prop_map(Step::Delete),
        2 => (ids(), any::<u8>(), prop_oneof![Just(None), Just(Some("nested"))]).prop_map(|(i, v, k)| Step::SetPayload(i, v, k)),
        1 => (ids(), any::<u8>()).prop_map(|(i, v)| Step::Overwrite(i, v)),
        1 => ids().prop_map(Step::DeleteKey),
        1 => ids().prop_map(Step::Clear),
        1 => (ids(), prop::array::uniform2(any::<i8>())).prop_map(|(i, v)| Step::UpdateB(i, v)),
        1 => ids().prop_map(Step::DropB),
        1 => Just(Step::Flush),
        1 => Just(Step::Optimize),
        1 => Just(Step::Reopen),
    ]
}

fn obj(v: Value) -> Payload {
    v.as_object().cloned().unwrap_or_default()
}

struct Harness {
    dir: tempfile::TempDir,
    db: Option<Database>,
    model: BTreeMap<u64, (NamedVectors, Payload)>,
}

impl Harness {
    fn open(dir: &std::path::Path) -> Database {
        let mut config = DatabaseConfig::new(dir);
        config.background = false;
        config.wal_sync = SyncPolicy::Never;
        Database::open_with(config).unwrap()
    }

    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let db = Self::open(dir.path());
        // Two named vectors; "b" is optional per point.
        let mut create = CreateCollection::new(VectorsConfig::Multi(
            [
                ("a".to_string(), VectorParams::new(DIM, Distance::Dot)),
                ("b".to_string(), VectorParams::new(2, Distance::Euclid)),
            ]
            .into(),
        ));
        // Tiny thresholds so that a few points already make sealed, indexed and merged segments.
        create.optimizers_config = Some(OptimizersConfigDiff {
            indexing_threshold: Some(1),
            max_segment_size: Some(1),
            default_segment_number: Some(2),
            deleted_threshold: Some(0.1),
            vacuum_min_vector_number: Some(2),
            ..Default::default()
        });
        create.hnsw_config =
            Some(grape::HnswConfigDiff { full_scan_threshold: Some(1), ..Default::default() });
        create.sparse_vectors = Some([("s".to_string(), grape::SparseVectorParams::default())].into());
        db.create_collection("m", create).unwrap();
        Harness { dir, db: Some(db), model: BTreeMap::new() }
    }

    fn db(&self) -> &Database {
        self.db.as_ref().unwrap()
    }

    /// A payload edit by ids succeeds only when every id is stored; otherwise it is NotFound and
    /// changes nothing. Returns whether the model should apply the edit.
    fn payload_edit_allowed(&self, ids: &[u64], result: grape::Result<grape::UpdateResult>) -> bool {
        let all_stored = ids.iter().all(|i| self.model.contains_key(i));
        match result {
            Ok(_) => assert!(all_stored, "edit of a missing point {ids:?} succeeded"),
            Err(grape::Error::NotFound(_)) => assert!(!all_stored, "edit of stored points {ids:?} failed"),
            Err(e) => panic!("payload edit failed: {e}"),
        }
        all_stored
    }

    fn apply(&mut self, step: &Step) {
        let c = self.db().collection("m").unwrap();
        let pid = |ids: &[u64]| ids.iter().map(|&i| PointId::Num(i)).collect::<Vec<_>>();
        match step {
            Step::Upsert(points) => {
                let named = |v: &[i8; DIM], b: &Option<[i8; 2]>, tag: u8| -> NamedVectors {
                    let mut m: NamedVectors =
                        [("a".to_string(), Vector::Dense(v.iter().map(|&x| f32::from(x)).collect()))].into();
                    if let Some(b) = b {
                        m.insert("b".to_string(), Vector::Dense(b.iter().map(|&x| f32::from(x)).collect()));
                    }
                    if let Some(s) = sparse_of(tag) {
                        m.insert("s".to_string(), Vector::Sparse(s));
                    }
                    m
                };
                let batch = points
                    .iter()
                    .map(|(id, v, b, tag)| {
                        PointStruct {
                            id: PointId::Num(*id),
                            vectors: VectorStruct::Named(named(v, b, *tag)),
                            payload: None,
                        }
                        .with_payload(json!({"tag": tag}))
                        .unwrap()
                    })
                    .collect();
                c.upsert(batch).unwrap();
                for (id, v, b, tag) in points {
                    self.model.insert(*id, (named(v, b, *tag), obj(json!({"tag": tag}))));
                }
            }
            Step::Delete(ids) => {
                c.delete(pid(ids)).unwrap();
                ids.iter().for_each(|i| {
                    self.model.remove(i);
                });
            }
            Step::SetPayload(ids, v, key) => {
                if !self.payload_edit_allowed(
                    ids,
                    c.set_payload(pid(ids), obj(json!({"v": v})), key.map(String::from)),
                ) {
                    return;
                }
                for i in ids {
                    if let Some((_, p)) = self.model.get_mut(i) {
                        match key {
                            None => {
                                p.insert("v".into(), json!(v));
                            }
                            Some(k) => {
                                let slot = p.entry(k.to_string()).or_insert_with(|| json!({}));
                                if !slot.is_object() {
                                    *slot = json!({});
                                }
                                slot.as_object_mut().unwrap().insert("v".into(), json!(v));
                            }
                        }
                    }
                }
            }
            Step::Overwrite(ids, v) => {
                if !self.payload_edit_allowed(ids, c.overwrite_payload(pid(ids), obj(json!({"o": v})))) {
                    return;
                }
                for i in ids {
                    if let Some((_, p)) = self.model.get_mut(i) {
                        *p = obj(json!({"o": v}));
                    }
                }
            }
            Step::DeleteKey(ids) => {
                if !self.payload_edit_allowed(ids, c.delete_payload(pid(ids), vec!["tag".into()])) {
                    return;
                }
                for i in ids {
                    if let Some((_, p)) = self.model.get_mut(i) {
                        p.remove("tag");
                    }
                }
            }
            Step::Clear(ids) => {
                if !self.payload_edit_allowed(ids, c.clear_payload(pid(ids))) {
                    return;
                }
                for i in ids {
                    if let Some((_, p)) = self.model.get_mut(i) {
                        p.clear();
                    }
                }
            }
            Step::UpdateB(ids, v) => {
                let b: Vec<f32> = v.iter().map(|&x| f32::from(x)).collect();
                let update = pid(ids).into_iter().map(|id| {
                    (id, VectorStruct::Named([("b".to_string(), Vector::Dense(b.clone()))].into()))
                });
                if self.payload_edit_allowed(ids, c.update_vectors(update.collect())) {
                    for i in ids {
                        self.model.get_mut(i).unwrap().0.insert("b".into(), Vector::Dense(b.clone()));
                    }
                }
            }
            Step::DropB(ids) => {
                if self.payload_edit_allowed(ids, c.delete_vectors(pid(ids), vec!["b".into()])) {
                    for i in ids {
                        self.model.get_mut(i).unwrap().0.remove("b");
                    }
                }
            }
            Step::Flush => self.db().flush().unwrap(),
            Step::Optimize => c.optimize_now().unwrap(),
            Step::Reopen => {
                drop(c);
                // Drop without close: recovery must replay the WAL.
                self.db = None;
                self.db = Some(Self::open(self.dir.path()));
            }
        }
    }

    fn check(&self) {
        let c = self.db().collection("m").unwrap();
        let all = c
            .scroll(&ScrollRequest {
                offset: None,
                limit: 1000,
                with_payload: WithPayload::Enable(true),
                with_vector: WithVector::Enable(true),
                filter: None,
            })
            .unwrap();
        let got: BTreeMap<u64, (NamedVectors, Payload)> = all
            .points
            .into_iter()
            .map(|r| {
                let PointId::Num(id) = r.id else { panic!("uuid") };
                let Some(grape::VectorOutput::Named(v)) = r.vector else { panic!("vector") };
                (id, (v, r.payload.unwrap_or_default()))
            })
            .collect();
        assert_eq!(got, self.model);
        assert_eq!(c.count(&Default::default()).unwrap(), self.model.len());
        // Exact search equals brute force over the model (ties broken by smaller id).
        if !self.model.is_empty() {
            let q = vec![0.5f32, -1.0, 0.25];
            let mut req = SearchRequest::new(q.clone(), 5);
            req.using = "a".into();
            req.params = SearchParams { exact: true, hnsw_ef: None, quantization: None };
            let hits: Vec<(u64, f32)> = c
                .search(&req)
                .unwrap()
                .into_iter()
                .map(|h| {
                    (
                        match h.id {
                            PointId::Num(n) => n,
                            PointId::Uuid(_) => u64::MAX,
                        },
                        h.score,
                    )
                })
                .collect();
            let mut expected: Vec<(u64, f32)> = self
                .model
                .iter()
                .map(|(id, (v, _))| (*id, dense(&v["a"]).iter().zip(&q).map(|(a, b)| a * b).sum()))
                .collect();
            expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            expected.truncate(5);
            assert_eq!(hits.len(), expected.len());
            for (h, e) in hits.iter().zip(&expected) {
                assert!((h.1 - e.1).abs() < 1e-3, "{hits:?} vs {expected:?}");
            }
            // Through the optional vector: only points that have it, nearest first.
            let qb = [3.0f32, -7.0];
            let mut req = SearchRequest::new(qb.to_vec(), 40);
            req.using = "b".into();
            req.params = SearchParams { exact: true, hnsw_ef: None, quantization: None };
            let mut got: Vec<(u64, f32)> = c
                .search(&req)
                .unwrap()
                .into_iter()
                .map(|h| (if let PointId::Num(n) = h.id { n } else { u64::MAX }, h.score))
                .collect();
            let mut expected: Vec<(u64, f32)> = self
                .model
                .iter()
                .filter_map(|(id, (v, _))| {
                    v.get("b").map(|b| {
                        (*id, dense(b).iter().zip(&qb).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt())
                    })
                })
                .collect();
            expected.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            got.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            assert_eq!(
                got.iter().map(|g| g.0).collect::<Vec<_>>(),
                expected.iter().map(|e| e.0).collect::<Vec<_>>()
            );
            // Sparse: every point sharing an index with the query, by dot product (ties by id).
            let qs = SparseVector::new(vec![2, 9, 12], vec![1.0, -0.5, 2.0]);
            let got: Vec<(u64, f32)> = c
                .search_sparse(&SparseSearchRequest::new("s", qs.clone(), 40))
                .unwrap()
                .into_iter()
                .map(|h| (if let PointId::Num(n) = h.id { n } else { u64::MAX }, h.score))
                .collect();
            let mut expected: Vec<(u64, f32)> = self
                .model
                .iter()
                .filter_map(|(id, (v, _))| Some((*id, qs.dot(v.get("s")?.as_sparse()?)?)))
                .collect();
            expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            assert_eq!(got.len(), expected.len(), "{got:?} vs {expected:?}");
            for (g, e) in got.iter().zip(&expected) {
                assert!(g.0 == e.0 && (g.1 - e.1).abs() < 1e-4, "{got:?} vs {expected:?}");
            }
        }
    }
}

fn dense(v: &Vector) -> &[f32] {
    v.as_dense().expect("a dense vector")
}

/// The sparse vector "s" of a point, derived from its tag (absent for every third tag): two indices
/// (one below 7, one in 7..18) given in descending order, so the engine has to sort them.
fn sparse_of(tag: u8) -> Option<SparseVector> {
    if tag.is_multiple_of(3) {
        return None;
    }
    let (i, j) = (u32::from(tag % 7), 7 + u32::from(tag / 7 % 11));
    SparseVector::new(vec![j, i], vec![1.0, f32::from(tag) / 10.0]).validated("s").ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn matches_btreemap_model(steps in prop::collection::vec(step(), 1..40)) {
        let mut h = Harness::new();
        for s in &steps {
            h.apply(s);
            h.check();
        }
        h.apply(&Step::Reopen);
        h.check();
    }
}
