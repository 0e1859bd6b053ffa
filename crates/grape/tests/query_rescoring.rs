//! The Query API's `order_by`, `formula` and `nearest` with `mmr` through the embedded API, checked
//! against straightforward computations over the inserted points.

use std::collections::HashMap;

use grape::query::formula::Formula;
use grape::query::{Mmr, OrderedScroll, PointsQuery, Prefetch, QueryInput, VectorInput};
use grape::{
    CreateCollection, Database, Direction, Distance, OrderBy, OrderValue, PayloadFieldSchema,
    PayloadSchemaType, PointId, PointStruct, SearchParams, Vector, VectorParams, VectorStruct, VectorsConfig,
    WithPayload, WithVector,
};
use rand::{Rng, SeedableRng};
use serde_json::json;

const DIM: usize = 4;
const N: u64 = 200;

struct Data {
    vectors: HashMap<u64, Vec<f32>>,
    rating: HashMap<u64, f64>,
}

fn setup(db: &Database) -> Data {
    let create = CreateCollection::new(VectorsConfig::Multi(
        [("d".to_string(), VectorParams::new(DIM, Distance::Euclid))].into(),
    ));
    db.create_collection("q", create).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut data = Data { vectors: HashMap::new(), rating: HashMap::new() };
    let mut points = Vec::new();
    for id in 0..N {
        let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        data.vectors.insert(id, v.clone());
        // Unique ratings (a permutation), missing on every fifth point.
        let rating = ((id * 37) % N) as f64 / 4.0;
        let mut payload = json!({"group": id % 3, "when": format!("2025-01-{:02}T00:00:00Z", 1 + id % 28)});
        if id % 5 != 0 {
            payload["rating"] = json!(rating);
            data.rating.insert(id, rating);
        }
        points.push(PointStruct {
            id: PointId::Num(id),
            vectors: VectorStruct::Named([("d".to_string(), Vector::Dense(v))].into_iter().collect()),
            payload: payload.as_object().cloned(),
        });
    }
    let c = db.collection("q").unwrap();
    c.upsert(points[..120].to_vec()).unwrap();
    c.optimize_now().unwrap();
    c.upsert(points[120..].to_vec()).unwrap();
    data
}

fn query(q: QueryInput, prefetch: Vec<Prefetch>, limit: usize) -> PointsQuery {
    PointsQuery {
        prefetch,
        using: "d".into(),
        query: Some(q),
        filter: None,
        params: SearchParams { hnsw_ef: None, exact: true, ..Default::default() },
        limit,
        offset: 0,
        score_threshold: None,
        with_payload: WithPayload::Enable(false),
        with_vector: WithVector::Enable(false),
        lookup_from: None,
        shard_key: None,
    }
}

fn nearest_prefetch(v: Vec<f32>, limit: usize) -> Prefetch {
    Prefetch {
        prefetch: Vec::new(),
        query: Some(QueryInput::Nearest(VectorInput::Dense(v))),
        using: "d".into(),
        filter: None,
        params: SearchParams { hnsw_ef: None, exact: true, ..Default::default() },
        score_threshold: None,
        limit,
        lookup_from: None,
    }
}

fn num(id: PointId) -> u64 {
    match id {
        PointId::Num(n) => n,
        PointId::Uuid(_) => panic!("uuid"),
    }
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>()
}

#[test]
fn order_by_needs_a_range_index_then_orders() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let data = setup(&db);
    let by_rating =
        |direction, start_from| QueryInput::OrderBy(OrderBy { key: "rating".into(), direction, start_from });
    let e = db.query("q", query(by_rating(Direction::Asc, None), vec![], 5)).unwrap_err();
    assert!(e.to_string().contains("No range index for `order_by` key: `rating`"), "{e}");
    db.create_payload_index("q", "rating", PayloadFieldSchema::Type(PayloadSchemaType::Float)).unwrap();

    let mut truth: Vec<(f64, u64)> = data.rating.iter().map(|(&id, &r)| (r, id)).collect();
    truth.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut q = query(by_rating(Direction::Asc, None), vec![], 7);
    q.offset = 3;
    let got = db.query("q", q).unwrap();
    let want: Vec<u64> = truth.iter().skip(3).take(7).map(|e| e.1).collect();
    assert_eq!(got.iter().map(|p| num(p.id)).collect::<Vec<_>>(), want);
    assert!(got.iter().all(|p| p.score == 1.0));
    assert_eq!(got[0].order_value, Some(OrderValue::Float(truth[3].0)));

    // Descending from 20.0, among the points of a prefetch.
    let target = data.vectors[&7].clone();
    let mut near: Vec<(f32, u64)> = data.vectors.iter().map(|(&id, v)| (l2(v, &target), id)).collect();
    near.sort_by(|a, b| a.0.total_cmp(&b.0));
    let near: Vec<u64> = near.iter().take(40).map(|e| e.1).collect();
    let got = db
        .query(
            "q",
            query(
                by_rating(Direction::Desc, Some(OrderValue::Int(20))),
                vec![nearest_prefetch(target, 40)],
                100,
            ),
        )
        .unwrap();
    let mut want: Vec<(f64, u64)> =
        truth.iter().copied().filter(|(r, id)| *r <= 20.0 && near.contains(id)).collect();
    want.reverse();
    assert_eq!(
        got.iter().map(|p| num(p.id)).collect::<Vec<_>>(),
        want.iter().map(|e| e.1).collect::<Vec<_>>()
    );

    // Scroll with order_by, date-times as microseconds.
    db.create_payload_index("q", "when", PayloadFieldSchema::Type(PayloadSchemaType::Datetime)).unwrap();
    let scroll = OrderedScroll {
        order_by: OrderBy::key("when"),
        limit: 3,
        filter: None,
        with_payload: WithPayload::Enable(true),
        with_vector: WithVector::Enable(false),
    };
    let page = db.scroll_ordered("q", &scroll).unwrap();
    assert_eq!(page.iter().map(|(r, _)| num(r.id)).collect::<Vec<_>>(), vec![0, 28, 56]);
    assert_eq!(page[0].1, OrderValue::Int(1_735_689_600_000_000));
}

#[test]
fn formula_rescores_the_prefetched_points() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let data = setup(&db);
    let target = data.vectors[&11].clone();
    let formula: Formula = serde_json::from_value(json!({
        "formula": {"sum": [
            "$score",
            {"mult": [0.1, "rating"]},
            {"mult": [5, {"key": "group", "match": {"value": 1}}]},
            {"gauss_decay": {"x": "rating", "target": 10, "scale": 5}},
        ]},
        "defaults": {"rating": -3},
    }))
    .unwrap();
    let mut q = query(QueryInput::Formula(formula), vec![nearest_prefetch(target.clone(), 30)], 10);
    q.offset = 2;
    let got = db.query("q", q).unwrap();

    let mut near: Vec<(f32, u64)> = data.vectors.iter().map(|(&id, v)| (l2(v, &target).sqrt(), id)).collect();
    near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut want: Vec<(f32, u64)> = near
        .iter()
        .take(30)
        .map(|&(score, id)| {
            let rating = data.rating.get(&id).copied().unwrap_or(-3.0);
            let group = if id % 3 == 1 { 5.0 } else { 0.0 };
            let decay = (0.5f64.ln() / 25.0 * (rating - 10.0) * (rating - 10.0)).exp();
            ((score as f64 + 0.1 * rating + group + decay) as f32, id)
        })
        .collect();
    want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(got.len(), 10);
    for (g, w) in got.iter().zip(want.iter().skip(2)) {
        assert_eq!(num(g.id), w.1, "{got:?} vs {want:?}");
        assert!((g.score - w.0).abs() < 1e-4);
    }

    // A payload variable that is not a number, and a formula without prefetches, are refused.
    let bad: Formula = serde_json::from_value(json!({"formula": "when"})).unwrap();
    let e = db.query("q", query(QueryInput::Formula(bad.clone()), vec![nearest_prefetch(target, 5)], 5));
    assert!(e.unwrap_err().to_string().contains("Expected number value for when"));
    assert!(db.query("q", query(QueryInput::Formula(bad), vec![], 5)).is_err());
}

#[test]
fn mmr_trades_relevance_for_diversity() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let data = setup(&db);
    let target: Vec<f32> = vec![0.3, -0.2, 0.1, 0.5];
    let run = |diversity: f32, limit: usize| {
        let mmr = Mmr { diversity: Some(diversity), candidates_limit: Some(25) };
        let q = QueryInput::NearestMmr { nearest: VectorInput::Dense(target.clone()), mmr };
        db.query("q", query(q, vec![], limit)).unwrap()
    };
    // The same selection computed here: greedy on λ·(-|q - c|²) - (1 - λ)·max(-|c - p|²).
    let mut near: Vec<(f32, u64)> = data.vectors.iter().map(|(&id, v)| (l2(v, &target), id)).collect();
    near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let candidates: Vec<u64> = near.iter().take(25).map(|e| e.1).collect();
    for diversity in [0.0f32, 0.5, 0.9] {
        let lambda = 1.0 - diversity as f64;
        let mut pending = candidates.clone();
        let mut picked = vec![pending.remove(0)];
        while picked.len() < 6 {
            let score = |c: u64| {
                let relevance = -(l2(&data.vectors[&c], &target) as f64);
                let closest = picked
                    .iter()
                    .map(|&p| -(l2(&data.vectors[&c], &data.vectors[&p]) as f64))
                    .fold(f64::NEG_INFINITY, f64::max);
                lambda * relevance - (1.0 - lambda) * closest
            };
            let best =
                (0..pending.len()).max_by(|&a, &b| score(pending[a]).total_cmp(&score(pending[b]))).unwrap();
            picked.push(pending.remove(best));
        }
        let got = run(diversity, 6);
        assert_eq!(got.iter().map(|p| num(p.id)).collect::<Vec<_>>(), picked, "diversity {diversity}");
        // Scores stay the nearest search's (Euclid: the distance).
        for p in &got {
            assert!((p.score - l2(&data.vectors[&num(p.id)], &target).sqrt()).abs() < 1e-5);
        }
    }
    let e = db.query(
        "q",
        query(
            QueryInput::NearestMmr {
                nearest: VectorInput::Dense(target.clone()),
                mmr: Mmr { diversity: Some(1.5), candidates_limit: None },
            },
            vec![],
            3,
        ),
    );
    assert!(e.is_err());
}
