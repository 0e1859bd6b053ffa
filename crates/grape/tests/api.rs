//! Collection lifecycle, points API, aliases and bad input through the embedded API.

use grape::{
    AliasOperation, CreateCollection, Database, Distance, Error, PointId, PointStruct, ScrollRequest,
    SearchRequest, UpdateCollection, VectorParams, VectorsConfig, WithPayload, WithVector,
};
use serde_json::json;

fn single(dim: usize, distance: Distance) -> CreateCollection {
    CreateCollection::new(VectorsConfig::Single(VectorParams::new(dim, distance)))
}

fn point(id: u64, v: Vec<f32>, payload: serde_json::Value) -> PointStruct {
    PointStruct::new(id, v).with_payload(payload).unwrap()
}

#[test]
fn lifecycle_and_crud() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_collection("c", single(2, Distance::Dot)).unwrap();
    assert!(matches!(db.create_collection("c", single(2, Distance::Dot)), Err(Error::AlreadyExists(_))));
    assert_eq!(db.list_collections().unwrap(), vec!["c".to_string()]);
    let c = db.collection("c").unwrap();
    c.upsert(vec![
        point(1, vec![1.0, 0.0], json!({"city": "Paris", "n": 1})),
        point(2, vec![0.0, 1.0], json!({"city": "Rome"})),
    ])
    .unwrap();
    let uuid: PointId = "550e8400-e29b-41d4-a716-446655440000".parse().unwrap();
    c.upsert(vec![PointStruct { id: uuid, vectors: vec![0.5, 0.5].into(), payload: None }]).unwrap();
    assert_eq!(c.count(&Default::default()).unwrap(), 3);

    let got = c
        .retrieve(
            &[PointId::Num(2), uuid, PointId::Num(99)],
            &WithPayload::Enable(true),
            &WithVector::Enable(true),
        )
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, PointId::Num(2));
    assert_eq!(got[0].payload.as_ref().unwrap()["city"], json!("Rome"));
    assert_eq!(got[1].id, uuid);

    c.set_payload(vec![PointId::Num(1)], json!({"n": 2, "x": true}).as_object().unwrap().clone(), None)
        .unwrap();
    c.delete_payload(vec![PointId::Num(1)], vec!["city".into()]).unwrap();
    let p1 =
        &c.retrieve(&[PointId::Num(1)], &WithPayload::Enable(true), &WithVector::Enable(false)).unwrap()[0];
    assert_eq!(serde_json::Value::Object(p1.payload.clone().unwrap()), json!({"n": 2, "x": true}));
    c.overwrite_payload(vec![PointId::Num(1)], json!({"only": 1}).as_object().unwrap().clone()).unwrap();
    c.clear_payload(vec![PointId::Num(2)]).unwrap();
    let page = c.scroll(&ScrollRequest::default()).unwrap();
    assert_eq!(page.points.len(), 3);
    assert_eq!(serde_json::Value::Object(page.points[0].payload.clone().unwrap()), json!({"only": 1}));
    assert_eq!(page.points[1].payload.clone().unwrap().len(), 0);
    assert_eq!(page.next_page_offset, None);

    let hits = c.search(&SearchRequest::new(vec![1.0, 0.2], 2)).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![PointId::Num(1), uuid]);
    assert!((hits[0].score - 1.0).abs() < 1e-6);

    c.delete(vec![PointId::Num(1)]).unwrap();
    assert_eq!(c.count(&Default::default()).unwrap(), 2);
    assert!(db.delete_collection("c").unwrap());
    assert!(!db.delete_collection("c").unwrap());
    assert!(matches!(db.collection("c"), Err(Error::NotFound(_))));
    db.close().unwrap();
    assert!(matches!(db.list_collections(), Err(Error::Closed)));
}

#[test]
fn scroll_pages_cover_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_collection("c", single(1, Distance::Euclid)).unwrap();
    let c = db.collection("c").unwrap();
    c.upsert((0..25).map(|i| PointStruct::new(i * 3, vec![i as f32])).collect()).unwrap();
    c.flush().unwrap();
    c.upsert((0..10).map(|i| PointStruct::new(i * 7 + 1, vec![i as f32])).collect()).unwrap();
    let mut seen = Vec::new();
    let mut offset = None;
    loop {
        let page = c.scroll(&ScrollRequest { offset, limit: 4, ..Default::default() }).unwrap();
        seen.extend(page.points.iter().map(|p| p.id));
        match page.next_page_offset {
            Some(next) => offset = Some(next),
            None => break,
        }
    }
    let mut expected: Vec<PointId> =
        (0..25).map(|i| PointId::Num(i * 3)).chain((0..10).map(|i| PointId::Num(i * 7 + 1))).collect();
    expected.sort();
    expected.dedup();
    assert_eq!(seen, expected);
}

#[test]
fn metric_conventions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    for (name, d) in [
        ("cos", Distance::Cosine),
        ("dot", Distance::Dot),
        ("l2", Distance::Euclid),
        ("l1", Distance::Manhattan),
    ] {
        db.create_collection(name, single(2, d)).unwrap();
        let c = db.collection(name).unwrap();
        c.upsert(vec![PointStruct::new(1, vec![3.0, 4.0]), PointStruct::new(2, vec![-1.0, 0.0])]).unwrap();
        let hits = c.search(&SearchRequest::new(vec![0.0, 1.0], 2)).unwrap();
        // Similarities rank (3,4) first; distances rank (-1,0) first (it is nearer to (0,1)).
        let (best, expected) = match d {
            Distance::Cosine => (1, 0.8),
            Distance::Dot => (1, 4.0),
            Distance::Euclid => (2, 2.0f32.sqrt()),
            Distance::Manhattan => (2, 2.0),
        };
        assert_eq!(hits[0].id, PointId::Num(best), "{name}");
        let s = hits[0].score;
        assert!((s - expected).abs() < 1e-5, "{name}: {s} vs {expected}");
        // Cosine vectors are stored normalised.
        if d == Distance::Cosine {
            let r = c
                .retrieve(&[PointId::Num(1)], &WithPayload::Enable(false), &WithVector::Enable(true))
                .unwrap();
            assert_eq!(r[0].vector, Some(grape::VectorOutput::Single(vec![0.6, 0.8])));
        }
        // Threshold: distances keep points at or below it, similarities at or above.
        let mut req = SearchRequest::new(vec![0.0, 1.0], 2);
        req.score_threshold = Some(expected);
        let kept = c.search(&req).unwrap();
        assert_eq!(kept.len(), 1, "{name}");
    }
}

#[test]
fn bad_input_is_rejected_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_collection("c", single(3, Distance::Cosine)).unwrap();
    let c = db.collection("c").unwrap();
    c.upsert(vec![PointStruct::new(1, vec![1.0, 2.0, 3.0])]).unwrap();
    let err = c
        .upsert(vec![PointStruct::new(2, vec![1.0, 2.0, 3.0]), PointStruct::new(3, vec![1.0, 2.0])])
        .unwrap_err();
    assert!(matches!(err, Error::DimensionMismatch { expected: 3, got: 2 }), "{err}");
    assert!(err.to_string().contains("expected dim: 3, got 2"));
    let err = c.upsert(vec![PointStruct::new(4, vec![1.0, f32::NAN, 3.0])]).unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");
    assert!(c.upsert(vec![]).unwrap_err().to_string().contains("empty batch"));
    let named = PointStruct {
        id: PointId::Num(5),
        vectors: grape::VectorStruct::Named(
            [("img".to_string(), grape::Vector::Dense(vec![1.0, 2.0, 3.0]))].into(),
        ),
        payload: None,
    };
    assert!(c.upsert(vec![named]).unwrap_err().to_string().contains("Not existing vector name"));
    assert_eq!(c.count(&Default::default()).unwrap(), 1);
    assert!(matches!(c.search(&SearchRequest::new(vec![1.0], 1)), Err(Error::DimensionMismatch { .. })));
    assert!(c.search(&SearchRequest::new(vec![1.0, 1.0, 1.0], 0)).is_err());
    assert!(PointStruct::new(1, vec![1.0]).with_payload(json!([1, 2])).is_err());
    assert!(db.create_collection("bad/name", single(3, Distance::Dot)).is_err());
    assert!(db.create_collection("z", single(0, Distance::Dot)).is_err());
    assert!(matches!(db.collection("missing"), Err(Error::NotFound(_))));
    assert!("not-an-id".parse::<PointId>().is_err());
}

#[test]
fn aliases_are_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_collection("v1", single(1, Distance::Dot)).unwrap();
    db.create_collection("v2", single(1, Distance::Dot)).unwrap();
    db.update_aliases(&[AliasOperation::CreateAlias {
        collection_name: "v1".into(),
        alias_name: "live".into(),
    }])
    .unwrap();
    assert_eq!(db.collection("live").unwrap().name(), "v1");
    // Blue/green switch in one call.
    db.update_aliases(&[
        AliasOperation::DeleteAlias { alias_name: "live".into() },
        AliasOperation::CreateAlias { collection_name: "v2".into(), alias_name: "live".into() },
    ])
    .unwrap();
    assert_eq!(db.collection("live").unwrap().name(), "v2");
    // A failing action leaves everything as it was.
    let err = db.update_aliases(&[
        AliasOperation::RenameAlias { old_alias_name: "live".into(), new_alias_name: "prod".into() },
        AliasOperation::DeleteAlias { alias_name: "nope".into() },
    ]);
    assert!(matches!(err, Err(Error::NotFound(_))));
    assert_eq!(db.list_aliases().unwrap().len(), 1);
    assert_eq!(db.collection_aliases("v2").unwrap()[0].alias_name, "live");
    db.update_aliases(&[AliasOperation::RenameAlias {
        old_alias_name: "live".into(),
        new_alias_name: "prod".into(),
    }])
    .unwrap();
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.collection("prod").unwrap().name(), "v2");
    db.delete_collection("v2").unwrap();
    assert!(db.list_aliases().unwrap().is_empty());
}

#[test]
fn second_open_is_locked_and_reopen_keeps_config() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_collection("c", single(4, Distance::Manhattan)).unwrap();
    let err = Database::open(dir.path()).err().unwrap();
    assert!(matches!(err, Error::Locked(_)), "{err}");
    assert!(err.to_string().contains("locked"));
    db.update_collection(
        "c",
        &UpdateCollection {
            hnsw_config: Some(grape::HnswConfigDiff { m: Some(32), ..Default::default() }),
            ..Default::default()
        },
    )
    .unwrap();
    db.close().unwrap();
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    let info = db.collection_info("c").unwrap();
    assert_eq!(info.config.hnsw_config.m, 32);
    assert_eq!(info.config.params.vectors.get("").unwrap().distance, Distance::Manhattan);
    let health = db.health();
    assert_eq!(health.state, grape::HealthState::Ok);
    assert_eq!(health.collections.len(), 1);
}

#[test]
fn named_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let cfg: CreateCollection = serde_json::from_value(json!({"vectors": {
        "text": {"size": 2, "distance": "Cosine"},
        "image": {"size": 3, "distance": "Euclid", "on_disk": true}
    }}))
    .unwrap();
    db.create_collection("n", cfg).unwrap();
    let c = db.collection("n").unwrap();
    let p: PointStruct =
        serde_json::from_value(json!({"id": 7, "vector": {"text": [1.0, 0.0], "image": [1.0, 2.0, 3.0]}}))
            .unwrap();
    c.upsert(vec![p]).unwrap();
    c.optimize_now().unwrap();
    let mut req = SearchRequest::new(vec![1.0, 2.0, 2.0], 1);
    req.using = "image".into();
    req.with_vector = WithVector::Include(vec!["image".into()]);
    let hit = &c.search(&req).unwrap()[0];
    assert_eq!(hit.id, PointId::Num(7));
    assert!((hit.score - 1.0).abs() < 1e-6);
    assert_eq!(
        hit.vector,
        Some(grape::VectorOutput::Named(
            [("image".to_string(), grape::Vector::Dense(vec![1.0, 2.0, 3.0]))].into()
        ))
    );
    let mut bad = SearchRequest::new(vec![1.0, 2.0], 1);
    bad.using = "nope".into();
    assert!(c.search(&bad).unwrap_err().to_string().contains("Not existing vector name"));

    // Optional vectors: a point may leave out a configured vector; it is then never found through it.
    let only_image: PointStruct =
        serde_json::from_value(json!({"id": 8, "vector": {"image": [1.0, 2.0, 2.5]}})).unwrap();
    let only_text: PointStruct =
        serde_json::from_value(json!({"id": 9, "vector": {"text": [0.0, 1.0]}})).unwrap();
    c.upsert(vec![only_image, only_text]).unwrap();
    let ids = |c: &grape::Collection, using: &str, q: Vec<f32>| -> Vec<PointId> {
        let mut req = SearchRequest::new(q, 10);
        req.using = using.into();
        let mut found: Vec<PointId> = c.search(&req).unwrap().into_iter().map(|h| h.id).collect();
        found.sort();
        found
    };
    let all_vectors = WithVector::Enable(true);
    for stage in ["appendable", "optimized", "reopened"] {
        let c = if stage == "reopened" {
            db.close().unwrap();
            Database::open(dir.path()).unwrap().collection("n").unwrap()
        } else {
            if stage == "optimized" {
                c.optimize_now().unwrap();
            }
            c.clone()
        };
        assert_eq!(ids(&c, "image", vec![1.0, 2.0, 2.0]), vec![PointId::Num(7), PointId::Num(8)], "{stage}");
        assert_eq!(ids(&c, "text", vec![1.0, 1.0]), vec![PointId::Num(7), PointId::Num(9)], "{stage}");
        let r = c.retrieve(&[PointId::Num(8)], &WithPayload::Enable(false), &all_vectors).unwrap();
        assert_eq!(
            r[0].vector,
            Some(grape::VectorOutput::Named(
                [("image".to_string(), grape::Vector::Dense(vec![1.0, 2.0, 2.5]))].into()
            )),
            "{stage}"
        );
        assert_eq!(c.count(&Default::default()).unwrap(), 3);
    }
}

/// Exact scores of float16 and uint8 storages match a float64 oracle on values each type holds exactly,
/// through the appendable segment, an indexed segment, and a reopen (in RAM and memory-mapped).
#[test]
fn float16_and_uint8_datatypes() {
    use grape::{Datatype, HnswConfigDiff, OptimizersConfigDiff, SearchParams};
    use rand::{Rng, SeedableRng};

    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let dim = 8;
    let rows: Vec<Vec<f32>> =
        (0..400).map(|_| (0..dim).map(|_| f32::from(rng.gen_range(0u8..=20))).collect()).collect();
    let queries: Vec<Vec<f32>> =
        (0..10).map(|_| (0..dim).map(|_| f32::from(rng.gen_range(0u8..=20))).collect()).collect();
    let oracle = |d: Distance, q: &[f32], v: &[f32]| -> f64 {
        let (q, v): (Vec<f64>, Vec<f64>) =
            (q.iter().map(|&x| x.into()).collect(), v.iter().map(|&x| x.into()).collect());
        let dot: f64 = q.iter().zip(&v).map(|(a, b)| a * b).sum();
        let norm = |x: &[f64]| x.iter().map(|a| a * a).sum::<f64>().sqrt();
        match d {
            Distance::Cosine => dot / (norm(&q) * norm(&v)).max(f64::MIN_POSITIVE),
            Distance::Dot => dot,
            Distance::Euclid => q.iter().zip(&v).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt(),
            Distance::Manhattan => q.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum(),
        }
    };
    for datatype in [Datatype::Float16, Datatype::Uint8] {
        for on_disk in [false, true] {
            for d in [Distance::Cosine, Distance::Dot, Distance::Euclid, Distance::Manhattan] {
                let dir = tempfile::tempdir().unwrap();
                let db = Database::open(dir.path()).unwrap();
                let mut params = VectorParams::new(dim, d);
                params.datatype = Some(datatype);
                params.on_disk = Some(on_disk);
                let mut create = CreateCollection::new(VectorsConfig::Single(params));
                create.hnsw_config =
                    Some(HnswConfigDiff { full_scan_threshold: Some(1), ..Default::default() });
                create.optimizers_config =
                    Some(OptimizersConfigDiff { indexing_threshold: Some(1), ..Default::default() });
                db.create_collection("t", create).unwrap();
                let c = db.collection("t").unwrap();
                c.upsert(
                    rows.iter().enumerate().map(|(i, v)| PointStruct::new(i as u64, v.clone())).collect(),
                )
                .unwrap();
                let check = |c: &grape::Collection, stage: &str| {
                    // Exact search is checked strictly against the oracle; the graph (once built) must
                    // agree with it on the best score for at least 9 of the 10 queries (HNSW is approximate,
                    // and these integer vectors have many ties).
                    let mut graph_agrees = 0;
                    for q in &queries {
                        let mut req = SearchRequest::new(q.clone(), 5);
                        req.params = SearchParams { hnsw_ef: Some(400), exact: false, quantization: None };
                        let approx = c.search(&req).unwrap();
                        req.params.exact = true;
                        let hits = c.search(&req).unwrap();
                        graph_agrees += usize::from(
                            (approx[0].score - hits[0].score).abs() <= 1e-4 * hits[0].score.abs().max(1.0),
                        );
                        let PointId::Num(best) = hits[0].id else { panic!() };
                        let expected = oracle(d, q, &rows[best as usize]);
                        let tag = format!("{datatype:?} {d:?} on_disk={on_disk} {stage}");
                        assert!(
                            (f64::from(hits[0].score) - expected).abs() < 1e-2 * expected.abs().max(1.0),
                            "{tag}"
                        );
                        // Nothing scores better than the returned best.
                        let better = rows.iter().filter(|v| {
                            let s = oracle(d, q, v);
                            match d {
                                Distance::Cosine | Distance::Dot => s > expected + 1e-6,
                                _ => s < expected - 1e-6,
                            }
                        });
                        assert_eq!(better.count(), 0, "{tag}");
                    }
                    assert!(
                        graph_agrees >= 9,
                        "{datatype:?} {d:?} on_disk={on_disk} {stage}: graph agreed {graph_agrees}/10"
                    );
                    let r = c
                        .retrieve(&[PointId::Num(7)], &WithPayload::Enable(false), &WithVector::Enable(true))
                        .unwrap();
                    let Some(grape::VectorOutput::Single(v)) = &r[0].vector else { panic!() };
                    if d != Distance::Cosine || datatype == Datatype::Uint8 {
                        assert_eq!(v, &rows[7], "stored values are returned as they were given");
                    }
                };
                check(&c, "exact");
                c.optimize_now().unwrap();
                assert_eq!(c.info().unwrap().indexed_vectors_count, rows.len());
                check(&c, "hnsw");
                drop(c);
                db.close().unwrap();
                let db = Database::open(dir.path()).unwrap();
                check(&db.collection("t").unwrap(), "reopened");
            }
        }
        // uint8 refuses what it cannot store; float16 takes any finite value.
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        let mut params = VectorParams::new(2, Distance::Dot);
        params.datatype = Some(datatype);
        db.create_collection("b", CreateCollection::new(VectorsConfig::Single(params))).unwrap();
        let c = db.collection("b").unwrap();
        let res = c.upsert(vec![PointStruct::new(1, vec![300.0, 1.0])]);
        match datatype {
            Datatype::Uint8 => assert!(res.unwrap_err().to_string().contains("0..=255")),
            _ => assert!(res.is_ok()),
        }
    }
}

/// Filtered count, scroll and search agree with a brute-force oracle over the same filter, in the
/// appendable segment and after indexing.
#[test]
fn filters_match_brute_force() {
    use grape::{Filter, HnswConfigDiff, OptimizersConfigDiff, SearchParams};
    use rand::{Rng, SeedableRng};

    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let dim = 8;
    let n = 3000u64;
    let rows: Vec<Vec<f32>> = (0..n).map(|_| (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect();
    let payload = |i: u64| {
        let color = ["red", "green", "blue"][(i % 3) as usize];
        json!({"n": i % 10, "color": color, "flag": i.is_multiple_of(5), "score": (i % 100) as f64 / 7.0,
               "when": format!("2024-01-{:02}T{:02}:00:00Z", 1 + i % 28, i % 24),
               "tags": if i.is_multiple_of(4) { json!(["x", "y"]) } else { json!(["y"]) },
               "loc": {"lon": (i % 360) as f64 - 180.0, "lat": ((i * 7) % 180) as f64 - 90.0}})
    };
    let dir = tempfile::tempdir().unwrap();
    let mut db = Database::open(dir.path()).unwrap();
    let mut create = single(dim, Distance::Euclid);
    create.hnsw_config = Some(HnswConfigDiff { full_scan_threshold: Some(1), ..Default::default() });
    create.optimizers_config =
        Some(OptimizersConfigDiff { indexing_threshold: Some(1), ..Default::default() });
    db.create_collection("f", create).unwrap();
    let mut c = db.collection("f").unwrap();
    c.upsert((0..n).map(|i| point(i, rows[i as usize].clone(), payload(i))).collect()).unwrap();

    let filters: Vec<Filter> = [
        // Answered by payload indexes once declared (and one that an index of another type cannot answer).
        json!({"must": [{"key": "score", "range": {"gt": 3.0, "lte": 5.5}}]}),
        json!({"must": [{"key": "when", "range": {"gte": "2024-01-03T00:00:00Z", "lt": "2024-01-05T12:00:00+02:00"}}]}),
        json!({"must": [{"key": "flag", "match": {"value": true}}, {"key": "n", "range": {"lt": 3}}]}),
        json!({"must": [{"key": "color", "match": {"any": ["blue", "green"]}}, {"has_id": [3, 4, 5, 6, 7, 8]}]}),
        json!({"should": [{"key": "when", "match": {"value": 3}}, {"key": "n", "match": {"value": 4}}]}),
        json!({"must": [{"key": "tags", "match": {"value": "x"}}]}),
        json!({"must": [{"key": "color", "match": {"value": "green"}}, {"key": "flag", "match": {"value": false}}]}),
        json!({"should": [{"key": "color", "match": {"value": "red"}}, {"key": "tags", "match": {"value": "x"}}],
               "must_not": [{"key": "n", "match": {"value": 0}}]}),
        json!({"must": [{"key": "n", "match": {"any": [1, 2, 3]}}]}),
        json!({"must_not": [{"key": "color", "match": {"value": "red"}}], "must": [{"key": "n", "range": {"gte": 5}}]}),
        json!({"should": [{"key": "tags", "match": {"value": "x"}}, {"has_id": [1, 2, 3]}]}),
        json!({"must": [{"key": "loc", "geo_bounding_box": {"top_left": {"lon": -90.0, "lat": 45.0},
                "bottom_right": {"lon": 90.0, "lat": -45.0}}}]}),
        json!({"must": [{"key": "n", "match": {"value": 7}}, {"key": "color", "match": {"value": "blue"}}]}),
    ]
    .into_iter()
    .map(|f| serde_json::from_value(f).unwrap())
    .collect();
    let query: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let indexes = [
        ("n", "integer"),
        ("color", "keyword"),
        ("tags", "keyword"),
        ("flag", "bool"),
        ("score", "float"),
        ("when", "datetime"),
    ];
    for stage in ["appendable", "indexed", "payload-indexed", "reopened"] {
        match stage {
            "indexed" => {
                c.optimize_now().unwrap();
                assert_eq!(c.info().unwrap().indexed_vectors_count, n as usize);
            }
            "payload-indexed" => {
                for (field, kind) in indexes {
                    db.create_payload_index("f", field, serde_json::from_value(json!(kind)).unwrap())
                        .unwrap();
                }
                let info = c.info().unwrap();
                assert_eq!(info.payload_schema["color"], json!({"data_type": "keyword", "points": n}));
                assert_eq!(info.payload_schema["when"]["points"], json!(n));
            }
            "reopened" => {
                drop(c);
                db.close().unwrap();
                db = Database::open(dir.path()).unwrap();
                c = db.collection("f").unwrap();
                assert_eq!(c.info().unwrap().payload_schema.len(), indexes.len(), "declarations persist");
            }
            _ => {}
        }
        for filter in &filters {
            let passing: Vec<u64> = (0..n)
                .filter(|&i| {
                    struct V(u64, serde_json::Value);
                    impl grape::PointView for V {
                        fn id(&self) -> PointId {
                            PointId::Num(self.0)
                        }
                        fn payload(&self) -> Option<&grape::Payload> {
                            self.1.as_object()
                        }
                        fn has_vector(&self, _: &str) -> bool {
                            true
                        }
                    }
                    filter.check(&V(i, payload(i)))
                })
                .collect();
            assert!(!passing.is_empty() && passing.len() < n as usize, "{filter:?}");
            let count = grape::CountRequest { exact: true, filter: Some(filter.clone()) };
            assert_eq!(c.count(&count).unwrap(), passing.len(), "{stage} {filter:?}");
            // Scroll pages cover exactly the passing ids.
            let (mut seen, mut offset) = (Vec::new(), None);
            loop {
                let req =
                    ScrollRequest { offset, limit: 97, filter: Some(filter.clone()), ..Default::default() };
                let page = c.scroll(&req).unwrap();
                seen.extend(page.points.iter().map(|p| match p.id {
                    PointId::Num(x) => x,
                    PointId::Uuid(_) => u64::MAX,
                }));
                match page.next_page_offset {
                    Some(next) => offset = Some(next),
                    None => break,
                }
            }
            assert_eq!(seen, passing, "{stage} {filter:?}");
            // Search: exact equals brute force over the passing points; HNSW returns only passing points
            // and finds most of the true top 10.
            let dist =
                |i: u64| rows[i as usize].iter().zip(&query).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
            let mut truth = passing.clone();
            truth.sort_by(|&a, &b| dist(a).total_cmp(&dist(b)).then(a.cmp(&b)));
            truth.truncate(10);
            for exact in [true, false] {
                let mut req = SearchRequest::new(query.clone(), 10);
                req.filter = Some(filter.clone());
                req.params = SearchParams { exact, hnsw_ef: Some(128), quantization: None };
                let hits: Vec<u64> = c
                    .search(&req)
                    .unwrap()
                    .iter()
                    .map(|h| match h.id {
                        PointId::Num(x) => x,
                        PointId::Uuid(_) => u64::MAX,
                    })
                    .collect();
                assert!(hits.iter().all(|h| passing.contains(h)), "{stage} exact={exact} {filter:?}");
                if exact || stage == "appendable" {
                    assert_eq!(hits, truth, "{stage} exact={exact} {filter:?}");
                } else {
                    let found = truth.iter().filter(|t| hits.contains(t)).count();
                    assert!(found >= truth.len().min(8), "{stage}: HNSW found {found}/10 under {filter:?}");
                }
            }
        }
    }
    // A filter that parses but says nothing usable is refused with the key named.
    let bad: Filter = serde_json::from_value(json!({"must": [{"key": "n", "range": {}}]})).unwrap();
    let mut req = SearchRequest::new(query, 10);
    req.filter = Some(bad.clone());
    let err = c.search(&req).unwrap_err();
    assert!(matches!(err, Error::BadInput(_)) && err.to_string().contains("n: range"), "{err}");
    assert!(c.count(&grape::CountRequest { exact: true, filter: Some(bad) }).is_err());

    // Set payload and delete by filter.
    let count = |f: &Filter| c.count(&grape::CountRequest { exact: true, filter: Some(f.clone()) }).unwrap();
    let sevens: Filter =
        serde_json::from_value(json!({"must": [{"key": "n", "match": {"value": 7}}]})).unwrap();
    let marked: Filter =
        serde_json::from_value(json!({"must": [{"key": "marked", "match": {"value": true}}]})).unwrap();
    let before = count(&sevens);
    c.set_payload_by_filter(sevens.clone(), json!({"marked": true}).as_object().cloned().unwrap(), None)
        .unwrap();
    assert_eq!(count(&marked), before);
    c.delete_by_filter(marked.clone()).unwrap();
    assert_eq!(count(&sevens), 0);
    assert_eq!(c.count(&Default::default()).unwrap(), n as usize - before);
}

/// A collection is green only once its due optimizations ran: right after an upload that crosses the
/// indexing threshold it is yellow (the index build waits for writes to settle, then runs), and when it
/// turns green every vector is indexed, as clients that wait for green expect.
#[test]
fn green_only_when_due_optimizations_ran() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut request = single(8, Distance::Cosine);
    request.optimizers_config =
        Some(grape::OptimizersConfigDiff { indexing_threshold: Some(10), ..Default::default() });
    db.create_collection("t", request).unwrap();
    let c = db.collection("t").unwrap();
    let n = 3_000;
    let points =
        (0..n).map(|i| point(i, (0..8).map(|d| ((i * 7 + d) % 13) as f32 + 1.0).collect(), json!({})));
    c.upsert(points.collect()).unwrap();
    let info = c.info().unwrap();
    assert_eq!(info.status, grape::CollectionStatus::Yellow, "index build due, {info:?}");
    let started = std::time::Instant::now();
    loop {
        let info = c.info().unwrap();
        if info.status == grape::CollectionStatus::Green {
            assert_eq!(info.indexed_vectors_count, n as usize, "green means indexed");
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "not green after 60 s: {info:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
