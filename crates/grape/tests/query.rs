//! The Query API through the embedded API (`Database::query`): sparse search, prefetches and fusion,
//! checked against brute force over the inserted points.

use std::collections::HashMap;

use grape::query::{Fusion, PointsQuery, Prefetch, QueryInput, VectorInput};
use grape::{
    CreateCollection, Database, Distance, Modifier, PointId, PointStruct, SearchParams, SparseVector,
    SparseVectorParams, Vector, VectorParams, VectorStruct, VectorsConfig, WithPayload, WithVector,
};
use rand::{Rng, SeedableRng};

const DIM: usize = 6;
const N: u64 = 300;

struct Data {
    dense: HashMap<u64, Vec<f32>>,
    sparse: HashMap<u64, SparseVector>,
}

fn random_sparse(rng: &mut impl Rng) -> SparseVector {
    let mut idx: Vec<u32> = (0..rng.gen_range(1..6)).map(|_| rng.gen_range(0..30)).collect();
    idx.sort_unstable();
    idx.dedup();
    let values = idx.iter().map(|_| rng.gen_range(0.1f32..2.0)).collect();
    SparseVector::new(idx, values)
}

fn setup(db: &Database, modifier: Modifier) -> Data {
    let mut create = CreateCollection::new(VectorsConfig::Multi(
        [("d".to_string(), VectorParams::new(DIM, Distance::Dot))].into(),
    ));
    create.sparse_vectors =
        Some([("s".to_string(), SparseVectorParams { index: None, modifier: Some(modifier) })].into());
    db.create_collection("q", create).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut data = Data { dense: HashMap::new(), sparse: HashMap::new() };
    let mut points = Vec::new();
    for id in 0..N {
        let d: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let mut vectors = vec![("d".to_string(), Vector::Dense(d.clone()))];
        data.dense.insert(id, d);
        if id % 4 != 0 {
            let s = random_sparse(&mut rng);
            vectors.push(("s".to_string(), Vector::Sparse(s.clone())));
            data.sparse.insert(id, s);
        }
        points.push(PointStruct {
            id: PointId::Num(id),
            vectors: VectorStruct::Named(vectors.into_iter().collect()),
            payload: None,
        });
    }
    let c = db.collection("q").unwrap();
    c.upsert(points[..150].to_vec()).unwrap();
    // Half of the points in a sealed, indexed segment, half in the appendable one.
    c.optimize_now().unwrap();
    c.upsert(points[150..].to_vec()).unwrap();
    data
}

fn query(q: QueryInput, using: &str, prefetch: Vec<Prefetch>, limit: usize) -> PointsQuery {
    PointsQuery {
        prefetch,
        using: using.into(),
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

fn prefetch(q: QueryInput, using: &str, limit: usize) -> Prefetch {
    Prefetch {
        prefetch: Vec::new(),
        query: Some(q),
        using: using.into(),
        filter: None,
        params: SearchParams { hnsw_ef: None, exact: true, ..Default::default() },
        score_threshold: None,
        limit,
        lookup_from: None,
    }
}

/// Ids best first by score (ties by smaller id).
fn ranked(scores: impl IntoIterator<Item = (u64, f32)>) -> Vec<(u64, f32)> {
    let mut v: Vec<(u64, f32)> = scores.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

fn num(id: PointId) -> u64 {
    match id {
        PointId::Num(n) => n,
        PointId::Uuid(_) => panic!("uuid"),
    }
}

#[test]
fn sparse_search_and_rrf_equal_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let data = setup(&db, Modifier::None);
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    for _ in 0..20 {
        let qs = random_sparse(&mut rng);
        let qd: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let sparse_truth = ranked(data.sparse.iter().filter_map(|(&id, s)| Some((id, qs.dot(s)?))));
        let dense_truth =
            ranked(data.dense.iter().map(|(&id, d)| (id, d.iter().zip(&qd).map(|(a, b)| a * b).sum())));

        let got = db
            .query("q", query(QueryInput::Nearest(VectorInput::Sparse(qs.clone())), "s", vec![], 10))
            .unwrap();
        assert_eq!(got.len(), sparse_truth.len().min(10));
        for (g, t) in got.iter().zip(&sparse_truth) {
            assert!((g.score - t.1).abs() < 1e-4, "{got:?} vs {sparse_truth:?}");
        }

        // RRF (k = 2) of the top 20 of each, by hand.
        let mut fused: HashMap<u64, f64> = HashMap::new();
        for list in [&dense_truth, &sparse_truth] {
            for (pos, (id, _)) in list.iter().take(20).enumerate() {
                *fused.entry(*id).or_default() += 1.0 / (pos as f64 + 2.0);
            }
        }
        let expected = ranked(fused.into_iter().map(|(id, s)| (id, s as f32)));
        let got = db
            .query(
                "q",
                query(
                    QueryInput::Fusion(Fusion::Rrf { k: None, weights: None }),
                    "",
                    vec![
                        prefetch(QueryInput::Nearest(VectorInput::Dense(qd.clone())), "d", 20),
                        prefetch(QueryInput::Nearest(VectorInput::Sparse(qs.clone())), "s", 20),
                    ],
                    5,
                ),
            )
            .unwrap();
        assert_eq!(got.len(), 5);
        for (g, e) in got.iter().zip(&expected) {
            assert!((g.score - e.1).abs() < 1e-5, "{got:?} vs {expected:?}");
            if (g.score - e.1).abs() < 1e-7
                && expected.iter().filter(|x| (x.1 - e.1).abs() < 1e-7).count() == 1
            {
                assert_eq!(num(g.id), e.0);
            }
        }
    }
}

#[test]
fn idf_weights_queries_by_live_document_frequency() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut data = setup(&db, Modifier::Idf);
    let c = db.collection("q").unwrap();
    let doomed: Vec<u64> = (0..N).filter(|i| i % 5 == 1).collect();
    c.delete(doomed.iter().map(|&i| PointId::Num(i)).collect()).unwrap();
    doomed.iter().for_each(|i| {
        data.sparse.remove(i);
    });
    let n = data.sparse.len() as u64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for _ in 0..10 {
        let qs = random_sparse(&mut rng);
        let weighted = SparseVector::new(
            qs.indices.clone(),
            qs.indices
                .iter()
                .zip(&qs.values)
                .map(|(i, v)| {
                    let df = data.sparse.values().filter(|s| s.indices.contains(i)).count() as u64;
                    v * grape::sparse::idf(df, n)
                })
                .collect(),
        );
        let truth = ranked(data.sparse.iter().filter_map(|(&id, s)| Some((id, weighted.dot(s)?))));
        let got = db.query("q", query(QueryInput::Nearest(VectorInput::Sparse(qs)), "s", vec![], 8)).unwrap();
        assert_eq!(got.len(), truth.len().min(8));
        for (g, t) in got.iter().zip(&truth) {
            assert!((g.score - t.1).abs() < 1e-4, "{got:?} vs {truth:?}");
        }
    }
}
