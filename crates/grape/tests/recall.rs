//! HNSW recall through the whole stack (upsert, seal, optimizer build, search) against brute force.

use grape::{
    CreateCollection, Database, DatabaseConfig, Distance, HnswConfigDiff, OptimizersConfigDiff, PointId,
    PointStruct, SearchParams, SearchRequest, VectorParams, VectorsConfig,
};
use rand::{Rng, SeedableRng};
use rand_distr_free::gaussian;

mod rand_distr_free {
    use rand::Rng;
    /// Standard normal sample (Box-Muller), to avoid another dependency.
    pub fn gaussian(rng: &mut impl Rng) -> f32 {
        let u1: f32 = rng.gen_range(f32::EPSILON..1.0);
        let u2: f32 = rng.gen();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
    }
}

fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let centers: Vec<Vec<f32>> =
        (0..clusters).map(|_| (0..dim).map(|_| gaussian(&mut rng) * 4.0).collect()).collect();
    (0..n)
        .map(|_| {
            let c = &centers[rng.gen_range(0..clusters)];
            c.iter().map(|x| x + gaussian(&mut rng)).collect()
        })
        .collect()
}

fn score(d: Distance, a: &[f32], b: &[f32]) -> f32 {
    match d {
        Distance::Dot => a.iter().zip(b).map(|(x, y)| x * y).sum(),
        Distance::Cosine => {
            let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (n(a) * n(b))
        }
        Distance::Euclid => -a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>(),
        Distance::Manhattan => -a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>(),
    }
}

fn recall_for(distance: Distance) -> f64 {
    let (n, dim, k) = (6_000, 32, 10);
    // Queries come from the same clusters as the data (held out), as in real workloads.
    let mut data = clustered(n + 100, dim, 40, 1);
    let queries = data.split_off(n);
    let dir = tempfile::tempdir().unwrap();
    let mut config = DatabaseConfig::new(dir.path());
    config.background = false;
    let db = Database::open_with(config).unwrap();
    let mut create = CreateCollection::new(VectorsConfig::Single(VectorParams::new(dim, distance)));
    create.hnsw_config = Some(HnswConfigDiff {
        m: Some(16),
        ef_construct: Some(100),
        full_scan_threshold: Some(1),
        ..Default::default()
    });
    create.optimizers_config =
        Some(OptimizersConfigDiff { indexing_threshold: Some(100), ..Default::default() });
    db.create_collection("r", create).unwrap();
    let c = db.collection("r").unwrap();
    for chunk in data.chunks(500).enumerate() {
        let (i, rows) = chunk;
        c.upsert(
            rows.iter().enumerate().map(|(j, v)| PointStruct::new((i * 500 + j) as u64, v.clone())).collect(),
        )
        .unwrap();
    }
    c.optimize_now().unwrap();
    let info = c.info().unwrap();
    assert_eq!(info.points_count, n);
    assert_eq!(info.indexed_vectors_count, n, "every vector must be in an HNSW graph: {info:?}");
    let mut found = 0usize;
    for q in &queries {
        let mut req = SearchRequest::new(q.clone(), k);
        req.params = SearchParams { hnsw_ef: Some(64), exact: false, quantization: None };
        let hits: Vec<u64> = c
            .search(&req)
            .unwrap()
            .iter()
            .map(|h| match h.id {
                PointId::Num(x) => x,
                PointId::Uuid(_) => u64::MAX,
            })
            .collect();
        let mut truth: Vec<(usize, f32)> =
            data.iter().enumerate().map(|(i, v)| (i, score(distance, q, v))).collect();
        truth.sort_by(|a, b| b.1.total_cmp(&a.1));
        found += truth[..k].iter().filter(|(i, _)| hits.contains(&(*i as u64))).count();
    }
    found as f64 / (queries.len() * k) as f64
}

#[test]
fn hnsw_recall_at_10_is_at_least_095() {
    for d in [Distance::Cosine, Distance::Dot, Distance::Euclid, Distance::Manhattan] {
        let r = recall_for(d);
        println!("{d:?}: recall@10 = {r:.4}");
        assert!(r >= 0.95, "{d:?}: recall@10 = {r}");
    }
}

/// Filtered HNSW search keeps recall@10 >= 0.95 against the exact filtered result at every selectivity:
/// selective filters are planned as exact scans, the others are checked inside the graph traversal.
#[test]
fn filtered_recall_at_every_selectivity() {
    use grape::Filter;
    let (n, dim, k) = (10_000usize, 16, 10);
    let mut data = clustered(n + 50, dim, 40, 3);
    let queries = data.split_off(n);
    let dir = tempfile::tempdir().unwrap();
    let mut config = DatabaseConfig::new(dir.path());
    config.background = false;
    let db = Database::open_with(config).unwrap();
    let mut create = CreateCollection::new(VectorsConfig::Single(VectorParams::new(dim, Distance::Euclid)));
    create.hnsw_config = Some(HnswConfigDiff { full_scan_threshold: Some(100), ..Default::default() });
    create.optimizers_config =
        Some(OptimizersConfigDiff { indexing_threshold: Some(100), ..Default::default() });
    db.create_collection("f", create).unwrap();
    let c = db.collection("f").unwrap();
    c.upsert(
        data.iter()
            .enumerate()
            .map(|(i, v)| {
                PointStruct::new(i as u64, v.clone())
                    .with_payload(serde_json::json!({"b": i % 1000}))
                    .unwrap()
            })
            .collect(),
    )
    .unwrap();
    c.optimize_now().unwrap();
    assert_eq!(c.info().unwrap().indexed_vectors_count, n);
    for below in [1, 10, 100, 500, 900] {
        let filter: Filter =
            serde_json::from_value(serde_json::json!({"must": [{"key": "b", "range": {"lt": below}}]}))
                .unwrap();
        let mut found = 0;
        for q in &queries {
            let ids = |exact: bool| -> Vec<PointId> {
                let mut req = SearchRequest::new(q.clone(), k);
                req.filter = Some(filter.clone());
                req.params = SearchParams { hnsw_ef: Some(128), exact, quantization: None };
                c.search(&req).unwrap().into_iter().map(|h| h.id).collect()
            };
            let (truth, hits) = (ids(true), ids(false));
            assert_eq!(truth.len(), k);
            found += truth.iter().filter(|t| hits.contains(t)).count();
        }
        let recall = found as f64 / (queries.len() * k) as f64;
        println!("selectivity {:.1}%: recall@10 = {recall:.4}", below as f64 / 10.0);
        assert!(recall >= 0.95, "selectivity {}%: recall@10 = {recall}", below as f64 / 10.0);
    }
}

/// Sizes of the values of the integer field `g` in [`filtered_recall_with_payload_links`]: unions of
/// the first values give the selectivities 0.1%, 1%, 10%, 50% and 90% of 10,000 points.
const G_SIZES: [usize; 6] = [10, 90, 900, 4000, 4000, 1000];

/// `g` of each of `n` points: values spread by a fixed permutation, independent of the vectors.
fn g_values(n: usize) -> Vec<usize> {
    let mut g = vec![0; n];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (i * 7919) % n);
    let mut at = 0;
    for (value, &size) in G_SIZES.iter().enumerate() {
        for &i in &order[at..at + size] {
            g[i] = value;
        }
        at += size;
    }
    g
}

/// Mean recall@10 of HNSW filtered search (ef 64) against the exact filtered search, per filter.
fn filtered_recalls(
    c: &grape::Collection,
    queries: &[Vec<f32>],
    filters: &[(f64, grape::Filter)],
) -> Vec<(f64, f64, Vec<Vec<PointId>>)> {
    let k = 10;
    filters
        .iter()
        .map(|(selectivity, filter)| {
            let mut found = 0;
            let mut all_hits = Vec::new();
            for q in queries {
                let ids = |exact: bool| -> Vec<PointId> {
                    let mut req = SearchRequest::new(q.clone(), k);
                    req.filter = Some(filter.clone());
                    req.params = SearchParams { hnsw_ef: Some(64), exact, quantization: None };
                    c.search(&req).unwrap().into_iter().map(|h| h.id).collect()
                };
                let (truth, hits) = (ids(true), ids(false));
                assert_eq!(truth.len(), k);
                found += truth.iter().filter(|t| hits.contains(t)).count();
                all_hits.push(hits);
            }
            (*selectivity, found as f64 / (queries.len() * k) as f64, all_hits)
        })
        .collect()
}

/// Filterable HNSW through the whole stack: with an integer payload index declared before the build,
/// the optimizer builds payload links for every value with at least `full_scan_threshold` points (here
/// 1 KB of 32-d vectors = 8 points, so even the 0.1% value takes the graph plan), and HNSW search
/// restricted to the passing points keeps recall@10 >= 0.95 at 0.1%, 1%, 10% and 50% (90% is more than
/// half the segment: the traverse-everything plan, also >= 0.95). The links
/// survive a reopen (same results). A collection without links (`payload_m: 0`, or an index declared
/// after the build) is searched by the traverse-everything plan, still at recall >= 0.95; the late
/// index gets its links at the next optimization (the "links" plan), again at recall >= 0.95.
#[test]
fn filtered_recall_with_payload_links() {
    use grape::{Filter, PayloadFieldSchema, PayloadSchemaType};
    let (n, dim) = (10_000usize, 32);
    let mut data = clustered(n + 40, dim, 40, 5);
    let queries = data.split_off(n);
    let g = g_values(n);
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let mut config = DatabaseConfig::new(dir.path());
        config.background = false;
        Database::open_with(config).unwrap()
    };
    let db = open();
    let integer = PayloadFieldSchema::Type(PayloadSchemaType::Integer);
    let make = |name: &str, payload_m: Option<usize>, index_first: bool| {
        let mut create =
            CreateCollection::new(VectorsConfig::Single(VectorParams::new(dim, Distance::Euclid)));
        create.hnsw_config =
            Some(HnswConfigDiff { full_scan_threshold: Some(1), payload_m, ..Default::default() });
        create.optimizers_config =
            Some(OptimizersConfigDiff { indexing_threshold: Some(100), ..Default::default() });
        db.create_collection(name, create).unwrap();
        if index_first {
            db.create_payload_index(name, "g", integer.clone()).unwrap();
        }
        let c = db.collection(name).unwrap();
        c.upsert(
            data.iter()
                .enumerate()
                .map(|(i, v)| {
                    PointStruct::new(i as u64, v.clone())
                        .with_payload(serde_json::json!({"g": g[i]}))
                        .unwrap()
                })
                .collect(),
        )
        .unwrap();
        c.optimize_now().unwrap();
        assert_eq!(c.info().unwrap().indexed_vectors_count, n);
        if !index_first {
            db.create_payload_index(name, "g", integer.clone()).unwrap();
        }
        c
    };
    // 0.1%: g = 0; then g in [0, 1], [0, 1, 2], ... (1%, 10%, 50%, 90%).
    let filters: Vec<(f64, Filter)> = [1usize, 2, 3, 4, 5]
        .iter()
        .map(|&values| {
            let any: Vec<usize> = (0..values).collect();
            let selectivity = G_SIZES[..values].iter().sum::<usize>() as f64 / n as f64;
            let m =
                if values == 1 { serde_json::json!({"value": 0}) } else { serde_json::json!({"any": any}) };
            (
                selectivity,
                serde_json::from_value(serde_json::json!({"must": [{"key": "g", "match": m}]})).unwrap(),
            )
        })
        .collect();
    let linked = make("linked", None, true);
    let before = filtered_recalls(&linked, &queries, &filters);
    for (selectivity, recall, _) in &before {
        println!("payload links, selectivity {:.1}%: recall@10 = {recall:.4}", selectivity * 100.0);
    }
    for (selectivity, recall, _) in &before {
        assert!(*recall >= 0.95, "selectivity {:.1}%: recall@10 = {recall}", selectivity * 100.0);
    }
    for (name, payload_m, index_first) in [("unlinked", Some(0), true), ("late_index", None, false)] {
        let c = make(name, payload_m, index_first);
        for (selectivity, recall, _) in filtered_recalls(&c, &queries, &filters) {
            println!("{name}, selectivity {:.1}%: recall@10 = {recall:.4}", selectivity * 100.0);
            assert!(recall >= 0.95, "{name}, selectivity {:.1}%: recall@10 = {recall}", selectivity * 100.0);
        }
        if !index_first {
            let graphs = c.stats().memory.graphs_ram_bytes;
            c.optimize_now().unwrap();
            assert!(c.stats().memory.graphs_ram_bytes > graphs, "{name}: no payload links were added");
            for (selectivity, recall, _) in filtered_recalls(&c, &queries, &filters) {
                println!("{name} relinked, selectivity {:.1}%: recall@10 = {recall:.4}", selectivity * 100.0);
                assert!(recall >= 0.95, "{name} relinked, {:.1}%: recall@10 = {recall}", selectivity * 100.0);
            }
        }
    }
    drop(linked);
    db.close().unwrap();
    drop(db);
    let db = open();
    let reopened = filtered_recalls(&db.collection("linked").unwrap(), &queries, &filters);
    for ((s, r, hits), (_, r2, hits2)) in before.iter().zip(&reopened) {
        assert_eq!(hits, hits2, "selectivity {s}: results changed after reopen");
        assert_eq!(r, r2);
    }
}
