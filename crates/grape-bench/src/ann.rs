//! `grape-bench ann`: insert a dataset through the embedded API, wait for indexing, then measure recall@k,
//! QPS and latency per ef, one query at a time on N threads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use grape::{
    CreateCollection, Database, HnswConfigDiff, MemoryStats, OptimizersConfigDiff, PointId, PointStruct,
    QuantizationConfig, QuantizationSearchParams, SearchParams, SearchRequest, VectorParams, VectorsConfig,
};
use serde::Serialize;

use crate::dataset::Dataset;

#[derive(Args)]
pub struct AnnArgs {
    /// Dataset directory (manifest.json, base.fvecs, query.fvecs, gt.ivecs).
    #[arg(long)]
    dataset: PathBuf,
    #[arg(long, default_value_t = 16)]
    m: usize,
    #[arg(long, default_value_t = 100)]
    ef_construct: usize,
    /// Comma-separated ef values to measure.
    #[arg(long, default_value = "16,32,64,128,256", value_delimiter = ',')]
    ef: Vec<usize>,
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Search threads (each runs one query at a time).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Passes over the query set per ef; the fastest pass is reported (its recall is the same).
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// Points per upsert call.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Database directory (default: a fresh temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep vectors memory-mapped instead of in RAM.
    #[arg(long)]
    on_disk: bool,
    /// A Qdrant filter (JSON) applied to every search. Payloads come from the dataset's payload.jsonl;
    /// the exact filtered ground truth is computed here (brute force) and the selectivity reported.
    #[arg(long, conflicts_with = "filter")]
    pub(crate) filter_json: Option<String>,
    /// The same as a Grape filter expression, e.g. `bucket = 3 AND price < 10` (see README.md,
    /// "Filter expressions").
    #[arg(long)]
    pub(crate) filter: Option<String>,
    /// More filters (expressions) measured on the same collection after the first, each against its own
    /// exact filtered ground truth; repeatable. `none` measures unfiltered search (the dataset's ground
    /// truth). Reported under `also`.
    #[arg(long = "also-filter")]
    also_filters: Vec<String>,
    /// Write the ids of the points passing the filter here, one per line (for
    /// `benches/hnswlib_baseline.py --filter-ids`).
    #[arg(long)]
    filter_ids_out: Option<PathBuf>,
    /// Payload indexes to declare before loading, as `key:type` (e.g. `bucket:integer`); repeatable.
    #[arg(long = "index")]
    indexes: Vec<String>,
    /// Quantize the indexed segment: `binary`, `binary-1.5bit`, `binary-2bit`, `scalar` (int8, quantile
    /// 0.99) or `pq-x4` .. `pq-x64`. Codes are kept in RAM (`always_ram`).
    #[arg(long)]
    quantization: Option<String>,
    /// Query encoding for binary quantization: `binary` (default), `scalar4bits` or `scalar8bits`.
    #[arg(long)]
    query_encoding: Option<String>,
    /// Candidates taken from the quantized search per result (Qdrant's `oversampling`).
    #[arg(long)]
    oversampling: Option<f64>,
    /// Re-score quantized candidates with the original vectors (without the flag: the engine's default,
    /// which re-scores binary codes only, as Qdrant does).
    #[arg(long)]
    rescore: bool,
    /// Also measure an exact search (`params.exact`: the original vectors, quantization ignored).
    #[arg(long)]
    exact: bool,
    /// Plan every search as a flat scan (`hnsw_config.full_scan_threshold` above the data size): over
    /// the codes, then re-scored, when quantized. `ef` is then unused.
    #[arg(long)]
    full_scan: bool,
    /// Search the collection an earlier run left in `--data-dir` (same dataset and collection options)
    /// instead of loading and indexing it: this process then holds only what opening and searching the
    /// database needs, so its resident memory is the engine's (see `rss_anon_bytes` / `rss_file_bytes`).
    #[arg(long, requires = "data_dir", conflicts_with_all = ["filter", "filter_json"])]
    reuse: bool,
    /// Write results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The collection's `quantization_config` for a `--quantization` name.
fn quantization_config(name: &str, query_encoding: Option<&str>) -> Result<QuantizationConfig> {
    let mut binary = serde_json::json!({"always_ram": true});
    if let Some(q) = query_encoding {
        binary["query_encoding"] = serde_json::json!(q);
    }
    let json = match name {
        "binary" => serde_json::json!({ "binary": binary }),
        "binary-1.5bit" | "binary-2bit" => {
            binary["encoding"] =
                serde_json::json!(if name == "binary-2bit" { "two_bits" } else { "one_and_half_bits" });
            serde_json::json!({ "binary": binary })
        }
        "scalar" => serde_json::json!({"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}}),
        pq if pq.starts_with("pq-") => {
            serde_json::json!({"product": {"compression": &pq[3..], "always_ram": true}})
        }
        other => anyhow::bail!("--quantization: unknown method {other}"),
    };
    serde_json::from_value(json).with_context(|| format!("--quantization {name}"))
}

/// Bytes of the segment files of the vectors (`vectors-*.bin`) and of their codes (`quant-*.bin`) under
/// `dir`, as stored on disk.
fn vector_file_bytes(dir: &std::path::Path) -> (u64, u64) {
    let mut sizes = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else { return sizes };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let len = e.metadata().map_or(0, |m| m.len());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let (v, q) = vector_file_bytes(&e.path());
            sizes = (sizes.0 + v, sizes.1 + q);
        } else if name.starts_with("vectors-") && name.ends_with(".bin") {
            sizes.0 += len;
        } else if name.starts_with("quant-") && name.ends_with(".bin") {
            sizes.1 += len;
        }
    }
    sizes
}

#[derive(Serialize)]
struct Row {
    ef: usize,
    /// An exact scan (`params.exact`) instead of the graph; `ef` is then unused.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    exact: bool,
    recall: f64,
    qps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Rows of one `--also-filter`.
#[derive(Serialize)]
struct AlsoReport {
    filter: Option<serde_json::Value>,
    selectivity: Option<f64>,
    rows: Vec<Row>,
}

#[derive(Serialize)]
struct Report {
    dataset: String,
    engine: &'static str,
    points: usize,
    dim: usize,
    m: usize,
    ef_construct: usize,
    k: usize,
    threads: usize,
    passes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    selectivity: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quantization: Option<QuantizationConfig>,
    /// Every search planned as a flat scan (`--full-scan`).
    full_scan: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    search_quantization: Option<QuantizationSearchParams>,
    /// Vector bytes by kind and place, as the collection's stats report them.
    memory: MemoryStats,
    /// Sizes of the original vector files and of the code files on disk (headers included).
    vector_file_bytes: u64,
    quantized_file_bytes: u64,
    rows: Vec<Row>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    also: Vec<AlsoReport>,
    build_s: f64,
    upsert_pps: f64,
    rss_bytes: u64,
    /// Resident anonymous memory (heap: graphs, codes in RAM, ids, payloads) after the searches.
    rss_anon_bytes: u64,
    /// Resident pages of mapped files (vector files, codes when not `always_ram`) after the searches.
    rss_file_bytes: u64,
    reopen_s: f64,
}

/// A line `key: N kB` of /proc/self/status, in bytes (0 when unavailable).
fn status_bytes(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(key).is_some_and(|rest| rest.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        })
        .map_or(0, |kb| kb * 1024)
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

pub fn run(args: &AnnArgs) -> Result<()> {
    let mut data = Dataset::load_with(&args.dataset, !args.reuse)?;
    let filter: Option<grape::Filter> = match (&args.filter_json, &args.filter) {
        (Some(text), _) => Some(serde_json::from_str(text).context("--filter-json")?),
        (None, Some(expr)) => Some(grape::Filter::from_expression(expr).context("--filter")?),
        (None, None) => None,
    };
    if let Some(f) = &filter {
        f.validate()?;
    }
    let also: Vec<Option<grape::Filter>> = args
        .also_filters
        .iter()
        .map(|e| match e.as_str() {
            "none" => Ok(None),
            e => grape::Filter::from_expression(e).map(Some).context("--also-filter"),
        })
        .collect::<Result<_>>()?;
    if args.reuse && also.iter().any(Option::is_some) {
        // The filtered ground truth is computed from the base vectors, which --reuse does not load.
        anyhow::bail!("--reuse measures unfiltered search only: an --also-filter needs the base vectors");
    }
    let payloads = match filter.is_some() || also.iter().any(Option::is_some) {
        true => Some(crate::dataset::load_payloads(&args.dataset, data.base.len())?),
        false => None,
    };
    // Ground truth and selectivity of a filter; writes the passing ids to `ids_out`.
    let truth_of = |f: &grape::Filter, ids_out: Option<PathBuf>| -> Result<(Vec<Vec<u32>>, f64)> {
        let p = payloads.as_ref().context("payloads")?;
        let (truth, ids) = crate::dataset::filtered_truth(&data, p, f, args.k);
        if let Some(path) = ids_out {
            let text: String = ids.iter().map(|i| format!("{i}\n")).collect();
            std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        }
        let passing = ids.len();
        eprintln!(
            "filter passes {passing} of {} points ({:.3}%)",
            data.base.len(),
            100.0 * passing as f64 / data.base.len() as f64
        );
        Ok((truth, passing as f64 / data.base.len() as f64))
    };
    let mut also_runs = Vec::new();
    for (i, (f, expr)) in also.into_iter().zip(&args.also_filters).enumerate() {
        let ids_out = args.filter_ids_out.as_ref().map(|p| p.with_extension(format!("also{i}.txt")));
        match &f {
            Some(f) => {
                let (truth, s) = truth_of(f, ids_out)?;
                also_runs.push((expr.clone(), Some(f.clone()), truth, Some(s)));
            }
            None => also_runs.push((expr.clone(), None, data.truth.clone(), None)),
        }
    }
    let mut selectivity = None;
    if let Some(f) = &filter {
        let (truth, s) = truth_of(f, args.filter_ids_out.clone())?;
        selectivity = Some(s);
        data.truth = truth;
    }
    let tmp;
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempdir()?;
            tmp.clone()
        }
    };
    eprintln!(
        "dataset {}: {} points, {} queries, dim {}",
        data.name,
        data.base.len(),
        data.queries.len(),
        data.dim
    );
    let db = Database::open(&dir)?;
    let name = "bench";
    if db.collection_exists(name)? && !args.reuse {
        db.delete_collection(name)?;
    }
    let total_kb = data.base.len() * data.dim * 4 / 1024 + 1;
    let mut params = VectorParams::new(data.dim, data.distance);
    params.on_disk = Some(args.on_disk);
    let mut create = CreateCollection::new(VectorsConfig::Single(params));
    create.hnsw_config = Some(HnswConfigDiff {
        m: Some(args.m),
        ef_construct: Some(args.ef_construct),
        full_scan_threshold: args.full_scan.then_some(total_kb + 1),
        ..Default::default()
    });
    // One segment for the whole dataset, as the peers build one index.
    create.optimizers_config =
        Some(OptimizersConfigDiff { max_segment_size: Some(total_kb), ..Default::default() });
    create.quantization_config = args
        .quantization
        .as_deref()
        .map(|q| quantization_config(q, args.query_encoding.as_deref()))
        .transpose()?;
    let search_quantization = args.quantization.as_ref().map(|_| QuantizationSearchParams {
        ignore: false,
        rescore: args.rescore.then_some(true),
        oversampling: args.oversampling,
    });
    let quantization = create.quantization_config.clone();
    let (c, upsert_pps, build_s) = if args.reuse {
        let c = db.collection(name).context("--reuse: no collection `bench` in --data-dir")?;
        eprintln!("reusing {} points in {}", c.info()?.points_count, dir.display());
        (c, 0.0, 0.0)
    } else {
        load_and_index(args, &db, name, create, &data, payloads.as_deref())?
    };
    let info = c.info()?;
    eprintln!(
        "index build: {build_s:.1} s ({} segments, {} indexed vectors)",
        info.segments_count, info.indexed_vectors_count
    );
    let memory = c.stats().memory;
    let (vector_file_bytes, quantized_file_bytes) = vector_file_bytes(&dir);
    eprintln!(
        "memory: {memory:?}; files: vectors {vector_file_bytes} B, codes {quantized_file_bytes} B ({:.2}% of vectors)",
        100.0 * quantized_file_bytes as f64 / vector_file_bytes.max(1) as f64
    );

    let rows = measure(&c, &data.queries, &data.truth, filter.as_ref(), args, search_quantization)?;
    let mut also = Vec::new();
    for (label, extra, truth, selectivity) in &also_runs {
        println!("-- {label}");
        let rows = measure(&c, &data.queries, truth, extra.as_ref(), args, search_quantization)?;
        let filter = extra.as_ref().map(serde_json::to_value).transpose()?;
        also.push(AlsoReport { filter, selectivity: *selectivity, rows });
    }
    let (rss, rss_anon, rss_file) = (status_bytes("VmRSS"), status_bytes("RssAnon"), status_bytes("RssFile"));
    db.close()?;
    drop(c);
    drop(db);
    let started = Instant::now();
    let db = Database::open(&dir)?;
    let c = db.collection(name)?;
    // Ready to serve = opened and answered a first search.
    let mut probe = SearchRequest::new(data.queries[0].clone(), args.k);
    probe.params.hnsw_ef = Some(64);
    c.search(&probe)?;
    let reopen_s = started.elapsed().as_secs_f64();
    eprintln!(
        "reopen: {reopen_s:.3} s; RSS after search: {} MiB (anonymous {} MiB, mapped files {} MiB)",
        rss >> 20,
        rss_anon >> 20,
        rss_file >> 20
    );
    db.close()?;

    let report = Report {
        dataset: data.name.clone(),
        engine: "grape",
        points: info.points_count,
        dim: data.dim,
        m: args.m,
        ef_construct: args.ef_construct,
        k: args.k,
        threads: args.threads,
        passes: args.passes,
        filter: filter.as_ref().map(serde_json::to_value).transpose()?,
        selectivity,
        quantization,
        full_scan: args.full_scan,
        search_quantization,
        memory,
        vector_file_bytes,
        quantized_file_bytes,
        rows,
        also,
        build_s,
        upsert_pps,
        rss_bytes: rss,
        rss_anon_bytes: rss_anon,
        rss_file_bytes: rss_file,
        reopen_s,
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Creates the collection's payload indexes, loads the dataset (durable upserts of `--batch` points) and
/// builds the index; returns the collection, the upsert rate and the build seconds.
fn load_and_index(
    args: &AnnArgs,
    db: &Database,
    name: &str,
    create: CreateCollection,
    data: &Dataset,
    payloads: Option<&[grape::Payload]>,
) -> Result<(std::sync::Arc<grape::Collection>, f64, f64)> {
    db.create_collection(name, create)?;
    for spec in &args.indexes {
        let (key, kind) = spec.split_once(':').context("--index: expected key:type")?;
        let schema: grape::PayloadFieldSchema = serde_json::from_value(serde_json::json!(kind))
            .with_context(|| format!("--index {spec}: unknown index type {kind}"))?;
        db.create_payload_index(name, key, schema)?;
    }
    let c = db.collection(name)?;

    let started = Instant::now();
    for (chunk_no, chunk) in data.base.chunks(args.batch).enumerate() {
        let points = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let id = chunk_no * args.batch + i;
                let mut p = PointStruct::new(id as u64, v.clone());
                if let Some(payloads) = payloads {
                    p.payload = Some(payloads[id].clone());
                }
                p
            })
            .collect();
        c.upsert(points)?;
    }
    let upsert_s = started.elapsed().as_secs_f64();
    let upsert_pps = data.base.len() as f64 / upsert_s;
    eprintln!(
        "upsert: {:.1} s, {:.0} points/s (durable, fsync per batch of {})",
        upsert_s, upsert_pps, args.batch
    );

    let started = Instant::now();
    c.optimize_now()?;
    let build_s = started.elapsed().as_secs_f64();
    Ok((c, upsert_pps, build_s))
}

pub(crate) fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("grape-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Recall and QPS rows (one per ef, plus exact when asked) of `queries` with `filter`, against `truth`.
fn measure(
    c: &grape::Collection,
    queries: &[Vec<f32>],
    truth: &[Vec<u32>],
    filter: Option<&grape::Filter>,
    args: &AnnArgs,
    search_quantization: Option<QuantizationSearchParams>,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let runs: Vec<(usize, bool)> =
        args.ef.iter().map(|&ef| (ef, false)).chain(args.exact.then_some((0, true))).collect();
    for &(ef, exact) in &runs {
        let mut best: Option<Row> = None;
        for _pass in 0..args.passes.max(1) {
            let latencies = std::sync::Mutex::new(Vec::with_capacity(queries.len()));
            let hits = AtomicUsize::new(0);
            let next = AtomicUsize::new(0);
            let started = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..args.threads.max(1) {
                    s.spawn(|| -> Result<()> {
                        let mut local = Vec::new();
                        loop {
                            let qi = next.fetch_add(1, Ordering::Relaxed);
                            let Some(q) = queries.get(qi) else { break };
                            let mut req = SearchRequest::new(q.clone(), args.k);
                            req.params = SearchParams {
                                hnsw_ef: (!exact).then_some(ef),
                                exact,
                                quantization: search_quantization,
                            };
                            req.filter = filter.cloned();
                            let t = Instant::now();
                            let found = c.search(&req)?;
                            local.push(t.elapsed());
                            let truth = &truth[qi][..args.k.min(truth[qi].len())];
                            let n = found
                                .iter()
                                .filter(|h| matches!(h.id, PointId::Num(id) if truth.contains(&(id as u32))))
                                .count();
                            hits.fetch_add(n, Ordering::Relaxed);
                        }
                        latencies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.extend(local);
                        Ok(())
                    });
                }
            });
            let elapsed = started.elapsed().as_secs_f64();
            let mut lat = latencies.into_inner().map_err(|_| anyhow::anyhow!("poisoned"))?;
            lat.sort();
            let row = Row {
                ef,
                exact,
                recall: hits.load(Ordering::Relaxed) as f64 / (queries.len() * args.k) as f64,
                qps: queries.len() as f64 / elapsed,
                p50_ms: percentile(&lat, 0.5),
                p99_ms: percentile(&lat, 0.99),
            };
            if best.as_ref().is_none_or(|b| row.qps > b.qps) {
                best = Some(row);
            }
        }
        let Some(row) = best else { continue };
        println!(
            "{:<8} recall@{}={:.4} qps={:>8.0} p50={:.3}ms p99={:.3}ms",
            if exact { "exact".to_string() } else { format!("ef={ef}") },
            args.k,
            row.recall,
            row.qps,
            row.p50_ms,
            row.p99_ms
        );
        rows.push(row);
    }
    Ok(rows)
}
