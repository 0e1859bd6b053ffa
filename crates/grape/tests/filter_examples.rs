//! The filter examples of Qdrant's filtering documentation, each with the ids the documentation says
//! match, checked through scroll and count: in the appendable segment, after indexing, and with payload
//! indexes declared on the keys the filters read (geo and text indexes included).

use grape::{
    CountRequest, CreateCollection, Database, Distance, Filter, OptimizersConfigDiff, PointId, PointStruct,
    ScrollRequest, VectorParams, VectorsConfig,
};
use serde_json::{json, Value};

/// Points of the documentation's clause examples.
fn cities() -> Vec<Value> {
    vec![
        json!({"id": 1, "city": "London", "color": "green"}),
        json!({"id": 2, "city": "London", "color": "red"}),
        json!({"id": 3, "city": "London", "color": "blue"}),
        json!({"id": 4, "city": "Berlin", "color": "red"}),
        json!({"id": 5, "city": "Moscow", "color": "green"}),
        json!({"id": 6, "city": "Moscow", "color": "blue"}),
    ]
}

/// Points of the nested-object examples.
fn dinosaurs() -> Vec<Value> {
    vec![
        json!({"id": 1, "dinosaur": "t-rex", "diet": [
            {"food": "leaves", "likes": false}, {"food": "meat", "likes": true}]}),
        json!({"id": 2, "dinosaur": "diplodocus", "diet": [
            {"food": "leaves", "likes": true}, {"food": "meat", "likes": false}]}),
    ]
}

/// Points of the nested-key examples.
fn countries() -> Vec<Value> {
    vec![
        json!({"id": 1, "country": {"name": "Germany", "cities": [
            {"name": "Berlin", "population": 3.7, "sightseeing": ["Brandenburg Gate", "Reichstag"]}]}}),
        json!({"id": 2, "country": {"name": "Japan", "cities": [
            {"name": "Tokyo", "population": 9.3, "sightseeing": ["Tokyo Tower", "Tokyo Skytree"]},
            {"name": "Osaka", "population": 2.7, "sightseeing": ["Osaka Castle", "Universal Studios Japan"]}]}}),
        json!({"id": 3, "country": {"name": "Brazil", "cities": [
            {"name": "Brasilia", "population": 4.7, "sightseeing": ["The Cathedral of Brasilia"]}]}}),
    ]
}

/// Points for values_count, is_empty, is_null, ranges and geo.
fn misc() -> Vec<Value> {
    vec![
        json!({"id": 1, "comments": ["Very good!", "Excellent"], "reports": [], "price": 11.5,
               "location": {"lon": 13.41, "lat": 52.51}, "date": "2023-02-08T10:49:00Z"}),
        json!({"id": 2, "comments": ["meh", "expected more", "ok"], "reports": null, "price": 99.0,
               "location": {"lon": 2.35, "lat": 48.85}, "date": "2023-03-01T00:00:00+01:00"}),
        json!({"id": 3, "reports": ["late"], "price": 100, "location": {"lon": 13.44, "lat": 52.50}}),
        json!({"id": 4, "comments": [], "reports": [null], "date": "2022-12-31"}),
    ]
}

/// Points for full-text matching (text: all tokens, text_any: one token, phrase: adjacent in order;
/// tokens are lowercased words, so `Goodness` is not `good`).
fn texts() -> Vec<Value> {
    vec![
        json!({"id": 1, "description": "Good and cheap hardware"}),
        json!({"id": 2, "description": "cheap hardware, good software"}),
        json!({"id": 3, "description": "Goodness is cheap"}),
        json!({"id": 4, "description": ["expensive", "good stuff"]}),
        json!({"id": 5, "description": "A quick brown fox jumps"}),
        json!({"id": 6, "description": "the brown quick fox"}),
    ]
}

/// A dataset of the documentation: its points as JSON objects with an `id`.
type Dataset = fn() -> Vec<Value>;

/// A dataset, a filter and the ids the documentation says pass it.
type Example = (Dataset, Value, Vec<u64>);

fn examples() -> Vec<Example> {
    vec![
        // Clauses.
        (
            cities,
            json!({"must": [{"key": "city", "match": {"value": "London"}},
                                 {"key": "color", "match": {"value": "red"}}]}),
            vec![2],
        ),
        (
            cities,
            json!({"should": [{"key": "city", "match": {"value": "London"}},
                                   {"key": "color", "match": {"value": "red"}}]}),
            vec![1, 2, 3, 4],
        ),
        (
            cities,
            json!({"must_not": [{"key": "city", "match": {"value": "London"}},
                                     {"key": "color", "match": {"value": "red"}}]}),
            vec![5, 6],
        ),
        (
            cities,
            json!({"must": [{"key": "city", "match": {"value": "London"}}],
                        "must_not": [{"key": "color", "match": {"value": "red"}}]}),
            vec![1, 3],
        ),
        (
            cities,
            json!({"must_not": [{"must": [{"key": "city", "match": {"value": "London"}},
                                               {"key": "color", "match": {"value": "red"}}]}]}),
            vec![1, 3, 4, 5, 6],
        ),
        (
            cities,
            json!({"min_should": {"conditions": [
            {"key": "city", "match": {"value": "London"}},
            {"key": "color", "match": {"value": "red"}},
            {"key": "color", "match": {"value": "green"}}], "min_count": 2}}),
            vec![1, 2],
        ),
        // Match any / except.
        (
            cities,
            json!({"must": [{"key": "color", "match": {"any": ["black", "yellow", "blue"]}}]}),
            vec![3, 6],
        ),
        (cities, json!({"must": [{"key": "city", "match": {"except": ["London", "Moscow"]}}]}), vec![4]),
        // has_id.
        (cities, json!({"must": [{"has_id": [1, 3, 5, 7, 9, 11]}]}), vec![1, 3, 5]),
        // Arrays of objects: conditions hold for any element, independently.
        (
            dinosaurs,
            json!({"must": [{"key": "diet[].food", "match": {"value": "meat"}},
                                    {"key": "diet[].likes", "match": {"value": true}}]}),
            vec![1, 2],
        ),
        // Nested: both conditions on the same element.
        (
            dinosaurs,
            json!({"must": [{"nested": {"key": "diet", "filter": {"must": [
            {"key": "food", "match": {"value": "meat"}}, {"key": "likes", "match": {"value": true}}]}}}]}),
            vec![1],
        ),
        // Nested keys.
        (countries, json!({"should": [{"key": "country.name", "match": {"value": "Germany"}}]}), vec![1]),
        (
            countries,
            json!({"should": [{"key": "country.cities[].population", "range": {"gte": 9.0}}]}),
            vec![2],
        ),
        (
            countries,
            json!({"should": [{"key": "country.cities[].sightseeing",
                                       "match": {"value": "Osaka Castle"}}]}),
            vec![2],
        ),
        // values_count, is_empty, is_null.
        (misc, json!({"must": [{"key": "comments", "values_count": {"gt": 2}}]}), vec![2]),
        (misc, json!({"must": [{"is_empty": {"key": "reports"}}]}), vec![1, 2]),
        (misc, json!({"must": [{"is_null": {"key": "reports"}}]}), vec![2]),
        (misc, json!({"must_not": [{"is_empty": {"key": "comments"}}]}), vec![1, 2]),
        // Ranges: numbers and date-times with offsets.
        (misc, json!({"must": [{"key": "price", "range": {"gt": 11.5, "lte": 100}}]}), vec![2, 3]),
        (misc, json!({"must": [{"key": "date", "range": {"gte": "2023-02-08T08:49:00-02:00"}}]}), vec![1, 2]),
        (misc, json!({"must": [{"key": "date", "range": {"lt": "2023-01-01T00:00:00Z"}}]}), vec![4]),
        // Geo: a Berlin box, a radius around Paris, a polygon around Berlin with a hole at point 3.
        (
            misc,
            json!({"must": [{"key": "location", "geo_bounding_box": {
            "top_left": {"lon": 13.403683, "lat": 52.520711},
            "bottom_right": {"lon": 13.455868, "lat": 52.495862}}}]}),
            vec![1, 3],
        ),
        (
            misc,
            json!({"must": [{"key": "location", "geo_radius": {
            "center": {"lon": 2.3522, "lat": 48.8566}, "radius": 1000.0}}]}),
            vec![2],
        ),
        (
            misc,
            json!({"must": [{"key": "location", "geo_polygon": {
            "exterior": {"points": [{"lon": 13.3, "lat": 52.4}, {"lon": 13.5, "lat": 52.4},
                                    {"lon": 13.5, "lat": 52.6}, {"lon": 13.3, "lat": 52.6},
                                    {"lon": 13.3, "lat": 52.4}]},
            "interiors": [{"points": [{"lon": 13.43, "lat": 52.49}, {"lon": 13.45, "lat": 52.49},
                                      {"lon": 13.45, "lat": 52.505}, {"lon": 13.43, "lat": 52.505},
                                      {"lon": 13.43, "lat": 52.49}]}]}}]}),
            vec![1],
        ),
        // Full text.
        (texts, json!({"must": [{"key": "description", "match": {"text": "good cheap"}}]}), vec![1, 2]),
        (texts, json!({"must": [{"key": "description", "match": {"text": "GOOD"}}]}), vec![1, 2, 4]),
        (
            texts,
            json!({"must": [{"key": "description", "match": {"text_any": "good cheap"}}]}),
            vec![1, 2, 3, 4],
        ),
        (texts, json!({"must": [{"key": "description", "match": {"text": "expensive stuff"}}]}), vec![]),
        (texts, json!({"must": [{"key": "description", "match": {"phrase": "brown fox"}}]}), vec![5]),
        (texts, json!({"must": [{"key": "description", "match": {"phrase": "quick fox"}}]}), vec![6]),
        (texts, json!({"must": [{"key": "description", "match": {"text": "fox quick"}}]}), vec![5, 6]),
        (
            texts,
            json!({"must_not": [{"key": "description", "match": {"text": "hardware"}}]}),
            vec![3, 4, 5, 6],
        ),
    ]
}

fn ids_of(db: &Database, name: &str, filter: &Filter) -> (Vec<u64>, usize) {
    let c = db.collection(name).unwrap();
    let page =
        c.scroll(&ScrollRequest { limit: 100, filter: Some(filter.clone()), ..Default::default() }).unwrap();
    let ids = page
        .points
        .iter()
        .map(|p| match p.id {
            PointId::Num(n) => n,
            PointId::Uuid(_) => u64::MAX,
        })
        .collect();
    let count = c.count(&CountRequest { exact: true, filter: Some(filter.clone()) }).unwrap();
    (ids, count)
}

#[test]
fn documented_examples_match_the_documented_points() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let datasets: [(&str, Dataset); 5] = [
        ("cities", cities),
        ("dinosaurs", dinosaurs),
        ("countries", countries),
        ("misc", misc),
        ("texts", texts),
    ];
    for (name, data) in datasets {
        let mut create = CreateCollection::new(VectorsConfig::Single(VectorParams::new(2, Distance::Dot)));
        create.optimizers_config =
            Some(OptimizersConfigDiff { indexing_threshold: Some(1), ..Default::default() });
        db.create_collection(name, create).unwrap();
        let points = data()
            .into_iter()
            .map(|p| {
                let id = p["id"].as_u64().unwrap();
                let mut payload = p.as_object().unwrap().clone();
                payload.remove("id");
                PointStruct::new(id, vec![1.0, id as f32]).with_payload(Value::Object(payload)).unwrap()
            })
            .collect();
        db.collection(name).unwrap().upsert(points).unwrap();
    }
    let name_of = |data: Dataset| {
        datasets.iter().find(|(_, d)| std::ptr::fn_addr_eq(*d, data)).map(|(n, _)| *n).unwrap()
    };
    for stage in ["appendable", "sealed", "payload indexes"] {
        match stage {
            "sealed" => datasets.iter().for_each(|(n, _)| db.collection(n).unwrap().optimize_now().unwrap()),
            "payload indexes" => {
                for (coll, key, kind) in [
                    ("cities", "city", json!("keyword")),
                    ("cities", "color", json!("keyword")),
                    ("dinosaurs", "diet[].food", json!("keyword")),
                    ("countries", "country.name", json!("keyword")),
                    ("countries", "country.cities[].population", json!("float")),
                    ("misc", "price", json!("float")),
                    ("misc", "date", json!("datetime")),
                    ("misc", "location", json!("geo")),
                    ("texts", "description", json!({"type": "text", "phrase_matching": true})),
                ] {
                    db.create_payload_index(coll, key, serde_json::from_value(kind).unwrap()).unwrap();
                }
            }
            _ => {}
        }
        for (data, filter, expected) in examples() {
            let filter: Filter = serde_json::from_value(filter.clone()).unwrap();
            let (ids, count) = ids_of(&db, name_of(data), &filter);
            assert_eq!(ids, expected, "{stage}: {}", serde_json::to_string(&filter).unwrap());
            assert_eq!(
                count,
                expected.len(),
                "{stage}: count of {}",
                serde_json::to_string(&filter).unwrap()
            );
        }
    }
}
