//! Facet counts through the embedded API (`Database::facet`) against a model: random payloads with
//! keyword, integer, bool and array values (a point counts once per distinct value), with and without a
//! filter, before and after deletes, the order Qdrant uses (count descending, then value), and the
//! requests that are refused.

use std::collections::BTreeMap;

use grape::query::facet::{FacetHit, FacetQuery, FacetValue};
use grape::{
    CreateCollection, Database, Distance, Filter, PointId, PointStruct, VectorParams, VectorStruct,
    VectorsConfig,
};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn model_counts(points: &BTreeMap<u64, Value>, key: &str, keep: impl Fn(&Value) -> bool) -> Vec<FacetHit> {
    let mut counts: BTreeMap<FacetValue, usize> = BTreeMap::new();
    for payload in points.values().filter(|p| keep(p)) {
        let values: Vec<Value> = match &payload[key] {
            Value::Array(a) => a.clone(),
            Value::Null => Vec::new(),
            v => vec![v.clone()],
        };
        let mut distinct: Vec<FacetValue> = values
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(FacetValue::Keyword(s.clone())),
                Value::Number(n) => n.as_i64().map(FacetValue::Int),
                Value::Bool(b) => Some(FacetValue::Bool(*b)),
                _ => None,
            })
            .collect();
        distinct.sort();
        distinct.dedup();
        for v in distinct {
            *counts.entry(v).or_default() += 1;
        }
    }
    let mut hits: Vec<FacetHit> =
        counts.into_iter().map(|(value, count)| FacetHit { value, count }).collect();
    hits.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    hits
}

fn query(key: &str, filter: Option<Filter>, limit: usize) -> FacetQuery {
    FacetQuery { key: key.to_string(), filter, limit, shard_key: None }
}

#[test]
fn facet_counts_match_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut create = CreateCollection::new(VectorsConfig::Single(VectorParams::new(2, Distance::Dot)));
    create.shard_number = Some(2);
    db.create_collection("f", create).unwrap();
    let c = db.collection("f").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let colors = ["red", "green", "blue", "cyan"];
    let mut model: BTreeMap<u64, Value> = BTreeMap::new();
    let mut points = Vec::new();
    for id in 0..400u64 {
        let tags: Vec<Value> = (0..rng.gen_range(0..4)).map(|_| json!(rng.gen_range(0..5))).collect();
        let payload = json!({
            "color": colors[rng.gen_range(0..colors.len())],
            "tags": tags,
            "flag": rng.gen_bool(0.3),
            "size": rng.gen_range(0..10),
        });
        points.push(PointStruct {
            id: PointId::Num(id),
            vectors: VectorStruct::Single(vec![1.0, id as f32]),
            payload: payload.as_object().cloned(),
        });
        model.insert(id, payload);
    }
    c.upsert(points).unwrap();
    let deleted: Vec<PointId> = (0..400).step_by(7).map(PointId::Num).collect();
    c.delete(deleted).unwrap();
    model.retain(|id, _| id % 7 != 0);

    let big: Filter =
        serde_json::from_value(json!({"must": [{"key": "size", "range": {"gte": 5}}]})).unwrap();
    for key in ["color", "tags", "flag"] {
        let all = db.facet("f", &query(key, None, 100)).unwrap();
        assert_eq!(all, model_counts(&model, key, |_| true), "{key}");
        let filtered = db.facet("f", &query(key, Some(big.clone()), 100)).unwrap();
        assert_eq!(
            filtered,
            model_counts(&model, key, |p| p["size"].as_i64().unwrap() >= 5),
            "{key} filtered"
        );
        let top2 = db.facet("f", &query(key, None, 2)).unwrap();
        assert_eq!(top2, all.into_iter().take(2).collect::<Vec<_>>(), "{key} limit");
    }
    assert!(db.facet("f", &query("color", None, 0)).is_err());
    assert!(db.facet("missing", &query("color", None, 10)).is_err());
    assert_eq!(db.facet("f", &query("nothing_here", None, 10)).unwrap(), Vec::new());
}
