//! `grape-bench load`: a load generator against a running server (Grape or Qdrant), over REST or (with
//! `--grpc`, in [`super::load_grpc`]) over gRPC. Uploads a dataset (points/s), waits for indexing, then
//! runs `concurrency` closed-loop clients sending `POST /points/query` (gRPC `Query`) for `duration` and
//! reports QPS, latency percentiles and recall@k.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use reqwest::blocking::Client;
use serde::Serialize;
use serde_json::{json, Value};

use crate::ann::percentile;
use crate::dataset::Dataset;

#[derive(Args)]
pub struct LoadArgs {
    /// Server REST address.
    #[arg(long, default_value = "http://127.0.0.1:6333")]
    pub(crate) url: String,
    /// Dataset directory (manifest.json, base.fvecs, query.fvecs, gt.ivecs).
    #[arg(long)]
    pub(crate) dataset: PathBuf,
    #[arg(long, default_value = "bench")]
    pub(crate) collection: String,
    /// Closed-loop clients sending one request at a time.
    #[arg(long, default_value_t = 32)]
    pub(crate) concurrency: usize,
    /// Length of the search phase, e.g. 30s or 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    #[arg(long, default_value_t = 64)]
    pub(crate) ef: usize,
    #[arg(long, default_value_t = 10)]
    pub(crate) k: usize,
    /// Points per upsert request.
    #[arg(long, default_value_t = 256)]
    pub(crate) batch: usize,
    /// Parallel upload requests.
    #[arg(long, default_value_t = 4)]
    pub(crate) upload_parallel: usize,
    /// Use the existing collection as it is (no delete, no upload).
    #[arg(long)]
    pub(crate) reuse: bool,
    /// Use gRPC (the official Rust client) instead of REST.
    #[arg(long)]
    pub(crate) grpc: bool,
    /// Server gRPC address (with --grpc).
    #[arg(long, default_value = "http://127.0.0.1:6334")]
    pub(crate) grpc_url: String,
    #[arg(long)]
    pub(crate) api_key: Option<String>,
    /// `replication_factor` of the collection the run creates (cluster mode: every batch is
    /// acknowledged by a quorum of that many replicas).
    #[arg(long, default_value_t = 1)]
    pub(crate) replication_factor: u32,
    /// Write results as JSON here.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s or m)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Serialize)]
pub(crate) struct Report {
    pub url: String,
    /// `rest` or `grpc`.
    pub protocol: &'static str,
    pub dataset: String,
    pub points: usize,
    pub dim: usize,
    pub concurrency: usize,
    pub duration_s: f64,
    pub ef: usize,
    pub k: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upsert_points_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_wait_s: Option<f64>,
    pub requests: usize,
    pub errors: usize,
    pub qps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub recall: f64,
}

struct Api {
    client: Client,
    base: String,
    key: Option<String>,
}

impl Api {
    fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value> {
        self.send_raw(method, path, body.map(serde_json::to_vec).transpose()?)
    }

    fn send_raw(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> Result<Value> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(k) = &self.key {
            req = req.header("api-key", k);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send()?;
        let status = resp.status();
        let v: Value = resp.json().unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: HTTP {status}: {v}");
        }
        Ok(v)
    }
}

pub fn run(args: &LoadArgs) -> Result<()> {
    if args.grpc {
        return crate::load_grpc::run(args);
    }
    let data = Dataset::load(&args.dataset)?;
    let api = Api {
        client: Client::builder().pool_max_idle_per_host(args.concurrency * 2).build()?,
        base: args.url.trim_end_matches('/').to_string(),
        key: args.api_key.clone(),
    };
    let coll = format!("/collections/{}", args.collection);
    let mut upsert_rate = None;
    let mut index_wait = None;
    if !args.reuse {
        let _ = api.send(reqwest::Method::DELETE, &coll, None);
        let distance = format!("{:?}", data.distance);
        // One segment for the whole dataset, as `grape-bench ann` builds it, so the two compare.
        let total_kb = data.base.len() * data.dim * 4 / 1024 + 1;
        let create = json!({
            "vectors": {"size": data.dim, "distance": distance},
            "optimizers_config": {"max_segment_size": total_kb},
            "replication_factor": args.replication_factor,
        });
        api.send(reqwest::Method::PUT, &coll, Some(&create))?;
        let started = Instant::now();
        let next = AtomicUsize::new(0);
        let batches: Vec<_> = (0..data.base.len()).step_by(args.batch).collect();
        std::thread::scope(|s| -> Result<()> {
            let workers: Vec<_> = (0..args.upload_parallel)
                .map(|_| {
                    s.spawn(|| -> Result<()> {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&start) = batches.get(i) else { return Ok(()) };
                            let end = (start + args.batch).min(data.base.len());
                            let ids: Vec<usize> = (start..end).collect();
                            let body = json!({"batch": {"ids": ids, "vectors": &data.base[start..end]}});
                            api.send(reqwest::Method::PUT, &format!("{coll}/points?wait=true"), Some(&body))?;
                        }
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| w.join().expect("upload thread panicked"))
        })?;
        let secs = started.elapsed().as_secs_f64();
        upsert_rate = Some(data.base.len() as f64 / secs);
        eprintln!(
            "uploaded {} points in {secs:.1} s ({:.0} points/s)",
            data.base.len(),
            data.base.len() as f64 / secs
        );
        // Indexed when the collection reports green three polls in a row (a last small segment below the
        // indexing threshold stays unindexed, as in Qdrant).
        let started = Instant::now();
        let mut green = 0;
        loop {
            let info = api.send(reqwest::Method::GET, &coll, None)?;
            let r = &info["result"];
            green = if r["status"] == "green" { green + 1 } else { 0 };
            if green >= 3 {
                eprintln!("indexed vectors: {} of {}", r["indexed_vectors_count"], r["points_count"]);
                break;
            }
            if started.elapsed() > Duration::from_secs(1800) {
                bail!("collection not indexed after 30 minutes: {r}");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        index_wait = Some(started.elapsed().as_secs_f64());
        eprintln!("indexed after {:.1} s more", started.elapsed().as_secs_f64());
    }

    let measured_search = search_phase(args, &data, &api, &format!("{coll}/points/query"))?;
    let measured = Measured { upsert_points_per_s: upsert_rate, index_wait_s: index_wait, ..measured_search };
    Report::new(args, &args.url, "rest", &data, measured).print_and_save(args)
}

/// The ids of a query answer (the rest of the body is skipped, not decoded).
#[derive(serde::Deserialize)]
struct QueryAnswer {
    result: QueryResult,
}

#[derive(serde::Deserialize)]
struct QueryResult {
    points: Vec<AnswerPoint>,
}

#[derive(serde::Deserialize)]
struct AnswerPoint {
    id: Value,
}

/// `concurrency` closed-loop clients sending `POST {path}` for `duration`. The clients are tasks of one
/// asynchronous client with one worker thread per core (as the gRPC mode's official client runs), so the
/// load generator spends little of the machine it shares with the server.
fn search_phase(args: &LoadArgs, data: &Dataset, api: &Api, path: &str) -> Result<Measured> {
    // Request bodies are encoded once, so the client spends its CPU on HTTP, not on JSON.
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        data.queries
            .iter()
            .map(|q| {
                serde_json::to_vec(&json!({"query": q, "limit": args.k, "params": {"hnsw_ef": args.ef}}))
            })
            .collect::<Result<_, _>>()?,
    );
    let truth: Arc<Vec<Vec<u32>>> =
        Arc::new(data.truth.iter().map(|t| t[..args.k.min(t.len())].to_vec()).collect());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).build()?;
    let url: Arc<str> = format!("{}{path}", api.base).into();
    let key = api.key.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let next_query = Arc::new(AtomicUsize::new(0));
    let hits = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let latencies = runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency {
            let (client, url, key, bodies, truth) =
                (client.clone(), url.clone(), key.clone(), bodies.clone(), truth.clone());
            let (stop, next_query, hits, errors) =
                (stop.clone(), next_query.clone(), hits.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let qi = next_query.fetch_add(1, Ordering::Relaxed) % bodies.len();
                    let t = Instant::now();
                    match query(&client, &url, key.as_deref(), bodies[qi].clone()).await {
                        Ok(answer) => {
                            mine.push(t.elapsed());
                            let found = answer
                                .result
                                .points
                                .iter()
                                .filter_map(|p| p.id.as_u64())
                                .filter(|id| truth[qi].contains(&(*id as u32)))
                                .count();
                            hits.fetch_add(found, Ordering::Relaxed);
                        }
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("first error: {e}");
                            }
                        }
                    }
                }
                mine
            }));
        }
        tokio::time::sleep(args.duration).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.context("query task")?);
        }
        anyhow::Ok(all)
    })?;
    Ok(Measured {
        upsert_points_per_s: None,
        index_wait_s: None,
        elapsed_s: started.elapsed().as_secs_f64(),
        latencies,
        errors: errors.load(Ordering::Relaxed),
        hits: hits.load(Ordering::Relaxed),
    })
}

/// One `POST url` with a JSON body; the answer's point ids.
async fn query(client: &reqwest::Client, url: &str, key: Option<&str>, body: Vec<u8>) -> Result<QueryAnswer> {
    let mut req = client.post(url).header("content-type", "application/json").body(body);
    if let Some(k) = key {
        req = req.header("api-key", k);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(serde_json::from_slice(&body)?)
}

/// What one load run measured, before it becomes a [`Report`].
pub(crate) struct Measured {
    pub upsert_points_per_s: Option<f64>,
    pub index_wait_s: Option<f64>,
    pub elapsed_s: f64,
    /// Latencies of the successful requests, in any order.
    pub latencies: Vec<Duration>,
    pub errors: usize,
    /// True neighbours found among all answers.
    pub hits: usize,
}

impl Report {
    pub(crate) fn new(
        args: &LoadArgs,
        url: &str,
        protocol: &'static str,
        data: &Dataset,
        m: Measured,
    ) -> Report {
        let mut lat = m.latencies;
        lat.sort();
        let requests = lat.len();
        Report {
            url: url.to_string(),
            protocol,
            dataset: data.name.clone(),
            points: data.base.len(),
            dim: data.dim,
            concurrency: args.concurrency,
            duration_s: m.elapsed_s,
            ef: args.ef,
            k: args.k,
            upsert_points_per_s: m.upsert_points_per_s,
            index_wait_s: m.index_wait_s,
            requests,
            errors: m.errors,
            qps: requests as f64 / m.elapsed_s,
            p50_ms: percentile(&lat, 0.5),
            p99_ms: percentile(&lat, 0.99),
            p999_ms: percentile(&lat, 0.999),
            recall: m.hits as f64 / (requests.max(1) * args.k) as f64,
        }
    }

    pub(crate) fn print_and_save(&self, args: &LoadArgs) -> Result<()> {
        println!(
            "{} {} c={} ef={}: {:.0} QPS, p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, recall@{} {:.4}, errors {}",
            self.dataset,
            self.protocol,
            self.concurrency,
            self.ef,
            self.qps,
            self.p50_ms,
            self.p99_ms,
            self.p999_ms,
            self.k,
            self.recall,
            self.errors
        );
        if let Some(rate) = self.upsert_points_per_s {
            println!(
                "upsert: {rate:.0} points/s (batches of {}, {} in parallel, wait=true)",
                args.batch, args.upload_parallel
            );
        }
        if let Some(path) = &args.json {
            std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        }
        Ok(())
    }
}
