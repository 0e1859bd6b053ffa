//! Quantization through the whole stack: each method's recall with re-scoring against brute force (HNSW
//! on quantized scores and exact scans of the codes), reopening a database with quantized segments,
//! changing the quantization while a reader searches, memory accounting, and bad input.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use grape::{
    Collection, CreateCollection, Database, DatabaseConfig, Distance, Error, HnswConfigDiff,
    OptimizersConfigDiff, PointStruct, QuantizationConfig, QuantizationSearchParams, SearchParams,
    SearchRequest, UpdateCollection, VectorParams, VectorsConfig,
};
use rand::{Rng, SeedableRng};

const DIM: usize = 64;
const K: usize = 10;

/// Points around many centres (as embeddings are), unit length; the last `queries` are held out.
fn dataset(n: usize, queries: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> =
        (0..300).map(|_| (0..DIM).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect();
    let mut all: Vec<Vec<f32>> = (0..n + queries)
        .map(|i| {
            let mut v: Vec<f32> = centres[i % 300].iter().map(|c| c + rng.gen_range(-0.5..0.5)).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect();
    let queries = all.split_off(n);
    (all, queries)
}

fn truth(data: &[Vec<f32>], q: &[f32]) -> Vec<u64> {
    let mut scored: Vec<(f32, u64)> =
        data.iter().enumerate().map(|(i, v)| (v.iter().zip(q).map(|(a, b)| a * b).sum(), i as u64)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(K).map(|s| s.1).collect()
}

fn config(json: &str) -> QuantizationConfig {
    serde_json::from_str(json).unwrap()
}

fn open(dir: &std::path::Path, background: bool) -> Database {
    let mut config = DatabaseConfig::new(dir);
    config.background = background;
    Database::open_with(config).unwrap()
}

/// A cosine collection whose segments are indexed (and quantized) by the optimizer.
fn create(
    db: &Database,
    name: &str,
    quantization: Option<QuantizationConfig>,
    on_disk: bool,
) -> Arc<Collection> {
    create_planned(db, name, quantization, on_disk, 1)
}

/// [`create`] with a `full_scan_threshold` (KB): segments with less vector data are scanned exactly
/// (on their codes when quantized) instead of traversing the graph.
fn create_planned(
    db: &Database,
    name: &str,
    quantization: Option<QuantizationConfig>,
    on_disk: bool,
    full_scan_threshold: usize,
) -> Arc<Collection> {
    let mut params = VectorParams::new(DIM, Distance::Cosine);
    params.on_disk = Some(on_disk);
    let mut create = CreateCollection::new(VectorsConfig::Single(params));
    create.hnsw_config =
        Some(HnswConfigDiff { full_scan_threshold: Some(full_scan_threshold), ..Default::default() });
    create.optimizers_config =
        Some(OptimizersConfigDiff { indexing_threshold: Some(10), ..Default::default() });
    create.quantization_config = quantization;
    db.create_collection(name, create).unwrap();
    db.collection(name).unwrap()
}

fn load(c: &Collection, data: &[Vec<f32>]) {
    for (i, rows) in data.chunks(1000).enumerate() {
        c.upsert(
            rows.iter()
                .enumerate()
                .map(|(j, v)| PointStruct::new((i * 1000 + j) as u64, v.clone()))
                .collect(),
        )
        .unwrap();
    }
    c.optimize_now().unwrap();
}

fn search(
    c: &Collection,
    q: &[f32],
    exact: bool,
    quantization: Option<QuantizationSearchParams>,
) -> Vec<(u64, f32)> {
    let mut req = SearchRequest::new(q.to_vec(), K);
    req.params = SearchParams { hnsw_ef: Some(64), exact, quantization };
    c.search(&req)
        .unwrap()
        .into_iter()
        .map(|p| match p.id {
            grape::PointId::Num(n) => (n, p.score),
            other => panic!("unexpected id {other:?}"),
        })
        .collect()
}

fn recall(
    c: &Collection,
    data: &[Vec<f32>],
    queries: &[Vec<f32>],
    exact: bool,
    q: QuantizationSearchParams,
) -> f64 {
    let hits: usize = queries
        .iter()
        .map(|query| {
            let want = truth(data, query);
            search(c, query, exact, Some(q)).iter().filter(|(id, _)| want.contains(id)).count()
        })
        .sum();
    hits as f64 / (K * queries.len()) as f64
}

fn rescored(oversampling: f64) -> QuantizationSearchParams {
    QuantizationSearchParams { ignore: false, rescore: Some(true), oversampling: Some(oversampling) }
}

#[test]
fn recall_per_method_with_rescoring() {
    let (data, queries) = dataset(3000, 40, 1);
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), false);
    let f32_bytes = data.len() * DIM * 4;
    // (config, oversampling, minimum recall, code bytes per point)
    for (i, (json, oversampling, min_recall, code_len)) in [
        (r#"{"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}}"#, 2.0, 0.95, 4 + DIM),
        (r#"{"binary": {"always_ram": true}}"#, 8.0, 0.9, DIM / 8),
        (r#"{"binary": {"encoding": "one_and_half_bits", "query_encoding": "scalar8bits"}}"#, 4.0, 0.9, 16),
        (r#"{"binary": {"encoding": "two_bits", "query_encoding": "scalar4bits"}}"#, 4.0, 0.9, 2 * DIM / 8),
        (r#"{"product": {"compression": "x16", "always_ram": true}}"#, 4.0, 0.9, DIM / 4),
    ]
    .into_iter()
    .enumerate()
    {
        let c = create(&db, &format!("c{i}"), Some(config(json)), false);
        load(&c, &data);
        let memory = c.stats().memory;
        let codes = memory.quantized_ram_bytes + memory.quantized_disk_bytes;
        // Codes are the stated bytes per point, plus the trained parameters (a few KB at most).
        assert!(
            codes >= data.len() * code_len && codes <= data.len() * code_len + 300 * 1024,
            "{json}: {memory:?}"
        );
        assert_eq!(memory.quantized_ram_bytes > 0, json.contains("always_ram"), "{json}: {memory:?}");
        assert_eq!(memory.vectors_ram_bytes, f32_bytes, "{json}: {memory:?}");
        let graph = recall(&c, &data, &queries, false, rescored(oversampling));
        // The same codes scanned exactly (the planner scans segments under full_scan_threshold).
        let scanned = create_planned(&db, &format!("s{i}"), Some(config(json)), false, 1 << 30);
        load(&scanned, &data);
        let scan = recall(&scanned, &data, &queries, false, rescored(oversampling));
        assert!(graph >= min_recall, "{json}: HNSW on codes + rescoring: recall {graph} < {min_recall}");
        assert!(scan >= min_recall, "{json}: exact scan of codes + rescoring: recall {scan} < {min_recall}");
        // Re-scored results carry the exact scores; `ignore` searches the originals only.
        for query in queries.iter().take(5) {
            for (id, score) in search(&c, query, false, Some(rescored(oversampling))) {
                let exact: f32 = data[id as usize].iter().zip(query).map(|(a, b)| a * b).sum();
                assert!((score - exact).abs() < 1e-4, "{json}: rescored score {score} vs {exact}");
            }
            // Without re-scoring the scores are the codes' approximations, so the codes were searched.
            let raw = QuantizationSearchParams { rescore: Some(false), ..Default::default() };
            let approximate = search(&c, query, false, Some(raw)).iter().any(|&(id, score)| {
                (score - data[id as usize].iter().zip(query).map(|(a, b)| a * b).sum::<f32>()).abs() > 1e-4
            });
            assert!(approximate, "{json}: scores without rescoring equal the exact ones");
            let scanned_raw = search(&scanned, query, false, Some(raw));
            assert!(scanned_raw.iter().any(|&(id, score)| {
                (score - data[id as usize].iter().zip(query).map(|(a, b)| a * b).sum::<f32>()).abs() > 1e-4
            }));
            // `exact` searches the originals, as in Qdrant, whatever the quantization parameters.
            for (id, score) in search(&c, query, true, Some(raw)) {
                let exact: f32 = data[id as usize].iter().zip(query).map(|(a, b)| a * b).sum();
                assert!((score - exact).abs() < 1e-4, "{json}: exact search score {score} vs {exact}");
            }
            let ignored = QuantizationSearchParams { ignore: true, ..Default::default() };
            let exact = search(&c, query, true, Some(ignored));
            assert_eq!(exact.iter().map(|h| h.0).collect::<Vec<_>>(), truth(&data, query), "{json}: ignore");
        }
    }
}

#[test]
fn reopen_gives_identical_results() {
    let (data, queries) = dataset(2000, 10, 2);
    let dir = tempfile::tempdir().unwrap();
    let searches = |c: &Collection| -> Vec<Vec<(u64, f32)>> {
        queries
            .iter()
            .flat_map(|q| {
                [
                    search(c, q, false, None),
                    search(c, q, false, Some(rescored(3.0))),
                    search(
                        c,
                        q,
                        true,
                        Some(QuantizationSearchParams { rescore: Some(false), ..Default::default() }),
                    ),
                ]
            })
            .collect()
    };
    let before = {
        let db = open(dir.path(), false);
        let binary = create(&db, "b", Some(config(r#"{"binary": {"encoding": "two_bits"}}"#)), true);
        let scalar =
            create(&db, "s", Some(config(r#"{"scalar": {"type": "int8", "always_ram": true}}"#)), false);
        load(&binary, &data);
        load(&scalar, &data);
        let memory = binary.stats().memory;
        assert!(memory.quantized_disk_bytes > 0 && memory.vectors_disk_bytes > 0, "{memory:?}");
        let out = (searches(&binary), searches(&scalar));
        db.close().unwrap();
        out
    };
    let db = open(dir.path(), false);
    let (binary, scalar) = (db.collection("b").unwrap(), db.collection("s").unwrap());
    let memory = scalar.stats().memory;
    assert!(memory.quantized_ram_bytes > 0 && memory.quantized_disk_bytes == 0, "{memory:?}");
    assert_eq!(before, (searches(&binary), searches(&scalar)));
    assert!(matches!(binary.info().unwrap().config.quantization_config, Some(QuantizationConfig::Binary(_))));

    // A snapshot carries the codes: the recovered collection answers the same without re-quantizing.
    let snap = db.create_collection_snapshot("b").unwrap();
    let path = db.collection_snapshot_path("b", &snap.name).unwrap();
    db.recover_collection_snapshot("b2", &path, snap.checksum.as_deref()).unwrap();
    let recovered = db.collection("b2").unwrap();
    let (got, want) = (recovered.stats().memory, binary.stats().memory);
    assert_eq!(
        (got.quantized_disk_bytes, got.vectors_disk_bytes),
        (want.quantized_disk_bytes, want.vectors_disk_bytes)
    );
    assert_eq!(searches(&recovered), before.0);
}

#[test]
fn update_none_binary_scalar_while_searching() {
    let (data, queries) = dataset(3000, 20, 3);
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    let c = create(&db, "u", None, false);
    load(&c, &data);
    assert_eq!(c.stats().memory.quantized_ram_bytes + c.stats().memory.quantized_disk_bytes, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (c, data, queries, stop) = (Arc::clone(&c), data.clone(), queries.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut rounds = 0;
            while !stop.load(Ordering::Acquire) || rounds == 0 {
                let r = recall(&c, &data, &queries, false, rescored(8.0));
                assert!(r >= 0.85, "recall {r} during a quantization change");
                rounds += 1;
            }
            rounds
        })
    };
    let wait_for = |kind: &str| {
        for _ in 0..600 {
            let stats = c.stats();
            let quantized = stats.memory.quantized_ram_bytes + stats.memory.quantized_disk_bytes;
            let expected = match kind {
                "binary" => data.len() * DIM / 8,
                _ => data.len() * (4 + DIM),
            };
            if !stats.optimizing && quantized >= expected && quantized < expected + 64 * 1024 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("segments were not re-quantized to {kind}: {:?}", c.stats());
    };
    let update = |json: &str| {
        let update: UpdateCollection = serde_json::from_str(json).unwrap();
        db.update_collection("u", &update).unwrap();
    };
    update(r#"{"quantization_config": {"binary": {"always_ram": true}}}"#);
    wait_for("binary");
    update(r#"{"quantization_config": {"scalar": {"type": "int8"}}}"#);
    wait_for("scalar");
    stop.store(true, Ordering::Release);
    assert!(reader.join().unwrap() > 0);
    assert!(matches!(c.info().unwrap().config.quantization_config, Some(QuantizationConfig::Scalar(_))));
    update(r#"{"quantization_config": "Disabled"}"#);
    for _ in 0..600 {
        let m = c.stats().memory;
        if m.quantized_ram_bytes + m.quantized_disk_bytes == 0 && !c.stats().optimizing {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(c.stats().memory.quantized_ram_bytes + c.stats().memory.quantized_disk_bytes, 0);
    assert_eq!(c.info().unwrap().config.quantization_config, None);
}

#[test]
fn bad_input_is_refused_and_old_config_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), false);
    let bad = |q: &str| {
        let mut create = CreateCollection::new(VectorsConfig::Single(VectorParams::new(6, Distance::Dot)));
        create.quantization_config = Some(config(q));
        db.create_collection("bad", create)
    };
    let err = bad(r#"{"product": {"compression": "x16"}}"#).unwrap_err();
    assert!(matches!(err, Error::BadInput(_)) && err.to_string().contains("dimension 6"), "{err}");
    let err = bad(r#"{"scalar": {"type": "int8", "quantile": 0.2}}"#).unwrap_err();
    assert!(matches!(err, Error::BadInput(_)) && err.to_string().contains("quantile"), "{err}");
    assert!(!db.collection_exists("bad").unwrap());
    let parse = serde_json::from_str::<QuantizationConfig>(r#"{"binary": {"encoding": "three_bits"}}"#);
    assert!(parse.unwrap_err().to_string().contains("unknown variant `three_bits`"));

    let (data, queries) = dataset(500, 5, 4);
    let c = create(&db, "ok", Some(config(r#"{"scalar": {"type": "int8"}}"#)), false);
    load(&c, &data);
    let before = c.info().unwrap().config;
    let update: UpdateCollection =
        serde_json::from_str(r#"{"quantization_config": {"scalar": {"type": "int8", "quantile": 1.5}}}"#)
            .unwrap();
    let err = db.update_collection("ok", &update).unwrap_err();
    assert!(matches!(err, Error::BadInput(_)), "{err}");
    assert_eq!(c.info().unwrap().config, before);
    let mut six = CreateCollection::new(VectorsConfig::Single(VectorParams::new(6, Distance::Dot)));
    six.quantization_config = Some(config(r#"{"binary": {}}"#));
    db.create_collection("six", six).unwrap();
    let update: UpdateCollection = serde_json::from_str(
        r#"{"vectors": {"": {"quantization_config": {"product": {"compression": "x16"}}}}}"#,
    )
    .unwrap();
    let err = db.update_collection("six", &update).unwrap_err();
    assert!(matches!(err, Error::BadInput(_)) && err.to_string().contains("dimension 6"), "{err}");
    assert!(matches!(
        db.collection_info("six").unwrap().config.quantization_for(""),
        Some(QuantizationConfig::Binary(_))
    ));
    assert_eq!(db.collection_info("ok").unwrap().config, before);
    let mut req = SearchRequest::new(queries[0].clone(), K);
    req.params.quantization =
        Some(QuantizationSearchParams { oversampling: Some(0.5), ..Default::default() });
    let err = c.search(&req).unwrap_err();
    assert!(matches!(err, Error::BadInput(_)) && err.to_string().contains("oversampling"), "{err}");
    // The old quantization still serves searches.
    assert_eq!(search(&c, &queries[0], false, Some(rescored(2.0))).len(), K);
}
