//! Geo and text payload indexes against brute force: random points (valid, invalid and repeated
//! locations; texts with case, punctuation, stopwords and several strings per point) and random geo
//! and text filters. Count, scroll and exact search give the ids a brute-force evaluation of the filter
//! gives, in the appendable segment, sealed, with the indexes declared, and after a reopen. The
//! brute force checks each point's payload with the filter, tokenizing text conditions with the
//! declared text index's tokenizer (unindexed: `word`, lowercased), as Qdrant defines them.

use std::sync::Arc;

use grape::{
    CountRequest, CreateCollection, Database, Distance, Filter, HnswConfigDiff, OptimizersConfigDiff,
    PayloadFieldSchema, PointId, PointStruct, ScrollRequest, SearchParams, SearchRequest, VectorParams,
    VectorsConfig,
};
use grape_types::filter::TextRules;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const WORDS: &[&str] = &[
    "Red", "fox", "the", "quick", "brown", "jumps", "over", "lazy", "dog", "and", "cat", "Running", "runs",
    "ação",
];

fn sentence(rng: &mut StdRng) -> String {
    let n = rng.gen_range(0..7);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push_str([" ", ", ", "-", "  "][rng.gen_range(0..4)]);
        }
        s.push_str(WORDS[rng.gen_range(0..WORDS.len())]);
    }
    s
}

fn location(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..12) {
        0 => json!({"lon": 181.0, "lat": 10.0}),
        1 => json!({"lon": "x", "lat": 10.0}),
        2 => json!({"lon": rng.gen_range(178.0..=180.0), "lat": rng.gen_range(-10.0..10.0)}),
        _ => json!({"lon": rng.gen_range(-20.0..20.0), "lat": rng.gen_range(30.0..60.0)}),
    }
}

fn payload(rng: &mut StdRng) -> Value {
    let mut p = serde_json::Map::new();
    match rng.gen_range(0..10) {
        0 => {}
        1 => drop(p.insert("loc".into(), json!([location(rng), location(rng)]))),
        _ => drop(p.insert("loc".into(), location(rng))),
    }
    if rng.gen_bool(0.9) {
        p.insert("title".into(), json!(sentence(rng)));
    }
    let tags: Vec<String> = (0..rng.gen_range(0..3)).map(|_| sentence(rng)).collect();
    p.insert("tags".into(), json!(tags));
    p.insert("n".into(), json!(rng.gen_range(0..5)));
    Value::Object(p)
}

fn geo_condition(rng: &mut StdRng) -> Value {
    let (lon, lat): (f64, f64) = (rng.gen_range(-25.0..25.0), rng.gen_range(25.0..65.0));
    match rng.gen_range(0..4) {
        0 => json!({"key": "loc", "geo_radius": {"center": {"lon": lon, "lat": lat},
                    "radius": rng.gen_range(10_000.0..2_000_000.0)}}),
        1 => {
            json!({"key": "loc", "geo_radius": {"center": {"lon": -179.5, "lat": 0.0}, "radius": 300_000.0}})
        }
        2 => json!({"key": "loc", "geo_bounding_box": {"top_left": {"lon": lon, "lat": lat},
                    "bottom_right": {"lon": lon + rng.gen_range(1.0..15.0), "lat": lat - rng.gen_range(1.0..15.0)}}}),
        _ => {
            let d = rng.gen_range(2.0..15.0);
            let ring = [(lon, lat), (lon + d, lat), (lon + d, lat + d), (lon, lat + d), (lon, lat)];
            let hole = [
                (lon + d / 4.0, lat + d / 4.0),
                (lon + d / 2.0, lat + d / 4.0),
                (lon + d / 2.0, lat + d / 2.0),
                (lon + d / 4.0, lat + d / 4.0),
            ];
            let pts =
                |r: &[(f64, f64)]| r.iter().map(|(x, y)| json!({"lon": x, "lat": y})).collect::<Vec<_>>();
            json!({"key": "loc", "geo_polygon": {"exterior": {"points": pts(&ring)}, "interiors": [{"points": pts(&hole)}]}})
        }
    }
}

fn text_condition(rng: &mut StdRng) -> Value {
    let key = if rng.gen_bool(0.7) { "title" } else { "tags" };
    let mut query = WORDS[rng.gen_range(0..WORDS.len())].to_lowercase();
    if rng.gen_bool(0.6) {
        query = format!("{query} {}", WORDS[rng.gen_range(0..WORDS.len())]);
    }
    let kind = ["text", "text", "text_any", "phrase"][rng.gen_range(0..4)];
    json!({"key": key, "match": {kind: query}})
}

fn random_filter(rng: &mut StdRng) -> Filter {
    let leaf = |rng: &mut StdRng| if rng.gen_bool(0.5) { geo_condition(rng) } else { text_condition(rng) };
    let f = match rng.gen_range(0..5) {
        0 => json!({"must": [leaf(rng)]}),
        1 => json!({"must": [leaf(rng), leaf(rng)]}),
        2 => json!({"should": [leaf(rng), leaf(rng)]}),
        3 => json!({"must": [leaf(rng)], "must_not": [leaf(rng)]}),
        _ => json!({"must": [leaf(rng), {"key": "n", "match": {"any": [1, 2, 3]}}]}),
    };
    serde_json::from_value(f).unwrap()
}

struct View<'a>(u64, &'a Value);

impl grape::PointView for View<'_> {
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

fn num(id: &PointId) -> u64 {
    match id {
        PointId::Num(x) => *x,
        PointId::Uuid(_) => u64::MAX,
    }
}

#[test]
fn geo_and_text_indexes_match_brute_force() {
    let mut rng = StdRng::seed_from_u64(23);
    let (n, dim) = (2500u64, 4);
    let payloads: Vec<Value> = (0..n).map(|_| payload(&mut rng)).collect();
    let rows: Vec<Vec<f32>> = (0..n).map(|_| (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut db = Database::open(dir.path()).unwrap();
    let mut create = CreateCollection::new(VectorsConfig::Single(VectorParams::new(dim, Distance::Euclid)));
    create.hnsw_config = Some(HnswConfigDiff { full_scan_threshold: Some(1), ..Default::default() });
    create.optimizers_config =
        Some(OptimizersConfigDiff { indexing_threshold: Some(1), ..Default::default() });
    db.create_collection("g", create).unwrap();
    let points: Vec<PointStruct> = (0..n)
        .map(|i| {
            PointStruct::new(i, rows[i as usize].clone()).with_payload(payloads[i as usize].clone()).unwrap()
        })
        .collect();
    db.collection("g").unwrap().upsert(points).unwrap();
    let filters: Vec<Filter> = (0..60).map(|_| random_filter(&mut rng)).collect();
    let query: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let declared: Vec<(&str, Value)> = vec![
        ("loc", json!("geo")),
        (
            "title",
            json!({"type": "text", "tokenizer": "word", "phrase_matching": true,
                         "stopwords": "english", "stemmer": {"type": "snowball", "language": "english"},
                         "ascii_folding": true}),
        ),
        ("tags", json!({"type": "text", "tokenizer": "prefix", "min_token_len": 2, "max_token_len": 4})),
    ];
    let mut rules = TextRules::default();
    let mut non_trivial = 0;
    for stage in ["appendable", "sealed", "indexed", "reopened"] {
        match stage {
            "sealed" => db.collection("g").unwrap().optimize_now().unwrap(),
            "indexed" => {
                for (key, schema) in &declared {
                    let schema: PayloadFieldSchema = serde_json::from_value(schema.clone()).unwrap();
                    if schema.data_type() == grape::PayloadSchemaType::Text {
                        rules.insert(key.to_string(), Arc::new(schema.tokenizer().unwrap()));
                    }
                    db.create_payload_index("g", key, schema).unwrap();
                }
                let info = db.collection("g").unwrap().info().unwrap();
                let indexed = |k: &str| info.payload_schema[k]["points"].as_u64().unwrap();
                let with = |f: &dyn Fn(&Value) -> bool| payloads.iter().filter(|p| f(p)).count() as u64;
                assert_eq!(indexed("title"), with(&|p| p.get("title").is_some()));
                assert_eq!(indexed("tags"), with(&|p| p["tags"].as_array().is_some_and(|a| !a.is_empty())));
                let valid = |v: &Value| grape_types::filter::GeoPoint::from_value(v).is_some();
                assert_eq!(
                    indexed("loc"),
                    with(&|p| p
                        .get("loc")
                        .is_some_and(|l| valid(l) || l.as_array().is_some_and(|a| a.iter().any(valid))))
                );
                assert_eq!(info.payload_schema["title"]["params"]["stopwords"], json!("english"));
            }
            "reopened" => {
                db.close().unwrap();
                db = Database::open(dir.path()).unwrap();
            }
            _ => {}
        }
        let c = db.collection("g").unwrap();
        for filter in &filters {
            let passing: Vec<u64> =
                (0..n).filter(|&i| filter.check_in(&View(i, &payloads[i as usize]), &rules)).collect();
            if !passing.is_empty() && passing.len() < n as usize {
                non_trivial += 1;
            }
            let what = format!("{stage}: {}", serde_json::to_string(filter).unwrap());
            let count = c.count(&CountRequest { exact: true, filter: Some(filter.clone()) }).unwrap();
            assert_eq!(count, passing.len(), "count {what}");
            let page = c
                .scroll(&ScrollRequest {
                    limit: n as usize,
                    filter: Some(filter.clone()),
                    ..Default::default()
                })
                .unwrap();
            let seen: Vec<u64> = page.points.iter().map(|p| num(&p.id)).collect();
            assert_eq!(seen, passing, "scroll {what}");
            let dist =
                |i: u64| rows[i as usize].iter().zip(&query).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
            let mut truth = passing.clone();
            truth.sort_by(|&a, &b| dist(a).total_cmp(&dist(b)).then(a.cmp(&b)));
            truth.truncate(10);
            let mut req = SearchRequest::new(query.clone(), 10);
            req.filter = Some(filter.clone());
            req.params = SearchParams { exact: true, hnsw_ef: None, quantization: None };
            let hits: Vec<u64> = c.search(&req).unwrap().iter().map(|h| num(&h.id)).collect();
            assert_eq!(hits, truth, "search {what}");
        }
    }
    assert!(non_trivial > filters.len() * 2, "most filters select some but not all points ({non_trivial})");

    // Set payload and delete by a text filter follow the index's tokenizer too (stemming: "run").
    let c = db.collection("g").unwrap();
    let by_text: Filter =
        serde_json::from_value(json!({"must": [{"key": "title", "match": {"text": "run"}}]})).unwrap();
    let expected = (0..n).filter(|&i| by_text.check_in(&View(i, &payloads[i as usize]), &rules)).count();
    assert!(expected > 0);
    c.set_payload_by_filter(by_text, json!({"marked": true}).as_object().cloned().unwrap(), None).unwrap();
    let marked: Filter =
        serde_json::from_value(json!({"must": [{"key": "marked", "match": {"value": true}}]})).unwrap();
    assert_eq!(c.count(&CountRequest { exact: true, filter: Some(marked) }).unwrap(), expected);
}

#[test]
fn bad_index_declarations_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_collection(
        "b",
        CreateCollection::new(VectorsConfig::Single(VectorParams::new(2, Distance::Dot))),
    )
    .unwrap();
    for (schema, says) in [
        (json!({"type": "text", "tokenizer": "bpe"}), "unknown variant `bpe`"),
        (json!({"type": "text", "stopwords": {"languages": ["english", "klingon"]}}), "klingon"),
        (json!({"type": "text", "min_token_len": 4, "max_token_len": 2}), "min_token_len"),
        (json!({"type": "keyword", "phrase_matching": true}), "option of text indexes"),
        (json!({"type": "geo", "is_tenant": true}), "unknown option `is_tenant`"),
        (json!({"type": "integer", "lookup": false, "range": false}), "lookup"),
    ] {
        let schema: PayloadFieldSchema = serde_json::from_value(schema).unwrap();
        let err = db.create_payload_index("b", "f", schema).unwrap_err();
        assert!(matches!(err, grape::Error::BadInput(_)) && err.to_string().contains(says), "{err}");
    }
    assert!(db.collection("b").unwrap().info().unwrap().payload_schema.is_empty());
}
