//! `grape-bench cluster`: figures of cluster mode on in-process clusters (grape-testkit: every node in
//! this process, on loopback ports, with Raft logs fsynced as in production):
//! quorum upsert throughput of a 3-replica shard vs a single node, replication lag, leader election
//! time after killing a shard leader, creating a 1000-shard collection, and idle CPU.

use std::time::{Duration, Instant};

use anyhow::Context;
use grape::{CreateCollection, Database, Distance, PointStruct, VectorParams, VectorsConfig};
use grape_testkit::TestCluster;

use crate::ann::percentile;
use rand::{Rng, SeedableRng};

#[derive(clap::Args)]
pub struct ClusterArgs {
    /// Points upserted in the throughput runs.
    #[arg(long, default_value_t = 20_000)]
    points: usize,
    #[arg(long, default_value_t = 128)]
    dim: usize,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Concurrent writers in the throughput runs (the same number against the single node and the
    /// cluster); each sends one batch at a time.
    #[arg(long, default_value_t = 1)]
    writers: usize,
    /// Single-point writes whose replication lag is measured.
    #[arg(long, default_value_t = 300)]
    lag_samples: usize,
    /// Leader kills (each followed by a restart of the killed node).
    #[arg(long, default_value_t = 5)]
    elections: usize,
    /// Shards of the many-shard collection.
    #[arg(long, default_value_t = 1000)]
    many_shards: u32,
    /// Replication factor of the many-shard collection.
    #[arg(long, default_value_t = 1)]
    many_rf: u32,
    /// Seconds of idle CPU measurement.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// `indexing_threshold` (KB) of the throughput runs' collections; 0 measures writes before indexing
    /// (the three in-process replicas would otherwise build three HNSW graphs on the same cores while
    /// the single node builds one). Default: the collection default.
    #[arg(long)]
    indexing_threshold_kb: Option<usize>,
    /// Raft heartbeat period of the nodes (ms); elections time out after 4 to 8 periods, as `grape
    /// serve` derives them from `cluster.consensus.tick_period_ms` (default 100). 0: the fast timing
    /// of the test suite (50 ms, elections after 250-500 ms).
    #[arg(long, default_value_t = 100)]
    heartbeat_ms: u64,
    /// Write the figures as JSON here.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

fn points(n: usize, dim: usize, seed: u64) -> Vec<PointStruct> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n as u64)
        .map(|i| PointStruct::new(i, (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect::<Vec<f32>>()))
        .collect()
}

fn request(dim: usize, shards: u32, rf: u32) -> CreateCollection {
    let mut r = CreateCollection::new(VectorsConfig::Single(VectorParams::new(dim, Distance::Cosine)));
    r.shard_number = Some(shards);
    r.replication_factor = Some(rf);
    r
}

/// The collection of a throughput run.
fn throughput_request(args: &ClusterArgs, rf: u32) -> CreateCollection {
    let mut r = request(args.dim, 1, rf);
    if let Some(kb) = args.indexing_threshold_kb {
        r.optimizers_config =
            Some(grape::OptimizersConfigDiff { indexing_threshold: Some(kb), ..Default::default() });
    }
    r
}

/// Upserts `data` in batches from `writers` threads (each takes the next batch when its last one is
/// acknowledged); returns points per second.
fn upsert_all(db: &Database, data: &[PointStruct], batch: usize, writers: usize) -> anyhow::Result<f64> {
    let c = db.collection("bench")?;
    let chunks: Vec<&[PointStruct]> = data.chunks(batch).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..writers.max(1))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    while let Some(chunk) =
                        chunks.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        c.upsert(chunk.to_vec())?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("writer panicked"))?)
    })?;
    Ok(data.len() as f64 / started.elapsed().as_secs_f64())
}

/// CPU seconds (user + system) this process used so far, from /proc/self/stat.
fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).context("malformed /proc/self/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the command name.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// CPU seconds used so far by each live thread of this process: (name, seconds) by thread id. From
/// `schedstat` (nanoseconds): a thread's `stat` counts whole clock ticks, and a thousand threads that
/// each run a few milliseconds per second would all round to zero.
fn thread_cpu() -> anyhow::Result<std::collections::HashMap<String, (String, f64)>> {
    let mut out = std::collections::HashMap::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?;
        // A thread may end between the listing and the reads.
        let (Ok(name), Ok(sched)) = (
            std::fs::read_to_string(task.path().join("comm")),
            std::fs::read_to_string(task.path().join("schedstat")),
        ) else {
            continue;
        };
        let Some(Ok(ns)) = sched.split_whitespace().next().map(str::parse::<f64>) else { continue };
        out.insert(task.file_name().to_string_lossy().into_owned(), (name.trim().to_string(), ns / 1e9));
    }
    Ok(out)
}

/// CPU seconds used between two [`thread_cpu`] readings by the async runtime's threads (Raft groups,
/// transport, blocking pool: names starting with "tokio") and by the other threads (shard background
/// workers, Raft log writers), counting threads alive at both readings.
fn cpu_split(
    before: &std::collections::HashMap<String, (String, f64)>,
    after: &std::collections::HashMap<String, (String, f64)>,
) -> (f64, f64) {
    let (mut runtime, mut other) = (0.0, 0.0);
    for (tid, (name, cpu)) in after {
        let Some((_, was)) = before.get(tid) else { continue };
        if name.starts_with("tokio") {
            runtime += cpu - was;
        } else {
            other += cpu - was;
        }
    }
    (runtime, other)
}

/// The leader of shard 0 of `bench`, once one is elected (a fresh group elects within a few election
/// timeouts).
async fn shard_leader(cluster: &TestCluster, within: Duration) -> anyhow::Result<u64> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(l) = cluster.nodes[0].handle().shard_leader("bench", 0).await {
            return Ok(l);
        }
        anyhow::ensure!(Instant::now() < deadline, "no leader of shard 0 after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

async fn start_cluster(args: &ClusterArgs, n: usize) -> TestCluster {
    match args.heartbeat_ms {
        0 => TestCluster::start(n).await,
        ms => TestCluster::start_with_heartbeat(n, ms).await,
    }
}

pub fn run(args: &ClusterArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &ClusterArgs) -> anyhow::Result<()> {
    let data = points(args.points, args.dim, 7);

    // 1. Single node: the embedded database with its WAL fsynced per write.
    let dir = tempfile::tempdir()?;
    let (single, d) = (Database::open(dir.path())?, data.clone());
    single.create_collection("bench", throughput_request(args, 1))?;
    let (batch, writers, s2) = (args.batch, args.writers, single.clone());
    let single_pps = blocking(move || upsert_all(&s2, &d, batch, writers)).await?;
    single.close()?;
    eprintln!("single node: {single_pps:.0} points/s");

    // 2. Three nodes, one shard with three replicas, writes acknowledged by a quorum.
    let mut cluster = start_cluster(args, 3).await;
    let db0 = cluster.nodes[0].db();
    let create = throughput_request(args, 3);
    blocking(move || db0.create_collection("bench", create)).await?;
    cluster.wait_until("attached", |c| c.running().all(|n| n.db().collection("bench").is_ok())).await;
    // Write through the shard leader's node (others forward: one more hop).
    let leader = shard_leader(&cluster, Duration::from_secs(10)).await?;
    let li = cluster.nodes.iter().position(|n| n.handle().id() == leader).context("leader not found")?;
    let (dbl, d) = (cluster.nodes[li].db(), data.clone());
    let log_commits =
        |c: &TestCluster| c.running().map(|n| n.handle().raft_log_commits()).collect::<Vec<u64>>();
    let commits_before = log_commits(&cluster);
    let cluster_pps = blocking(move || upsert_all(&dbl, &d, batch, writers)).await?;
    eprintln!("3 replicas, quorum: {cluster_pps:.0} points/s ({:.2} of single)", cluster_pps / single_pps);
    // Durable Raft log transactions (fsyncs) per node per client batch: below 1 when group commit
    // shares them between writes.
    let batches = data.len().div_ceil(batch) as f64;
    let commits_per_batch: Vec<f64> = log_commits(&cluster)
        .iter()
        .zip(&commits_before)
        .map(|(after, before)| (after - before) as f64 / batches)
        .collect();
    eprintln!("Raft log fsyncs per node per batch: {commits_per_batch:.2?}");

    // 3. Replication lag: from a write's acknowledgement to its application on every follower.
    let collection = cluster.nodes[li].db().collection("bench")?;
    let followers: Vec<_> =
        cluster.nodes.iter().enumerate().filter(|(i, _)| *i != li).map(|(_, n)| n.handle()).collect();
    let mut lags = Vec::with_capacity(args.lag_samples);
    for i in 0..args.lag_samples {
        let c = std::sync::Arc::clone(&collection);
        let p = points(1, args.dim, 1000 + i as u64).remove(0);
        let result = blocking(move || c.upsert(vec![p])).await?;
        let index = result.operation_id.context("no op id")?;
        let acked = Instant::now();
        loop {
            if followers.iter().all(|f| f.shard_applied("bench", 0).is_some_and(|a| a >= index)) {
                break;
            }
            tokio::time::sleep(Duration::from_micros(50)).await;
        }
        lags.push(acked.elapsed());
    }
    drop(followers); // handles keep a node's state alive; the killed node must let go of its files
    lags.sort();
    let (lag_p50, lag_p99) = (percentile(&lags, 0.5), percentile(&lags, 0.99));
    eprintln!("replication lag after ack: p50 {lag_p50:.2} ms, p99 {lag_p99:.2} ms");

    // 4. Idle CPU of the three nodes (one process), one replicated shard.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (c0, t0) = (cpu_seconds()?, Instant::now());
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let idle_small = (cpu_seconds()? - c0) / t0.elapsed().as_secs_f64() * 100.0;
    eprintln!("idle CPU, 3 nodes, 1 shard x 3 replicas: {idle_small:.1}% of one core");

    // 5. Leader election after killing the shard leader.
    let mut elections = Vec::new();
    for _ in 0..args.elections {
        let probe = cluster.running().next().context("no node")?.handle();
        let old = probe.shard_leader("bench", 0).await.context("no leader")?;
        drop(probe);
        let victim = cluster
            .nodes
            .iter()
            .position(|n| n.node.is_some() && n.handle().id() == old)
            .context("leader")?;
        let killed = Instant::now();
        cluster.kill(victim).await;
        let survivors: Vec<_> = cluster.running().map(|n| n.handle()).collect();
        let elected = loop {
            let mut found = None;
            for s in &survivors {
                if let Some(l) = s.shard_leader("bench", 0).await.filter(|&l| l != old) {
                    found = Some(l);
                }
            }
            if found.is_some() || killed.elapsed() > Duration::from_secs(30) {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        drop(survivors);
        anyhow::ensure!(elected.is_some(), "no new leader within 30 s");
        elections.push(killed.elapsed().as_secs_f64() * 1e3);
        cluster.restart(victim).await;
        cluster
            .wait_until("restarted node attached", |c| c.nodes[victim].db().collection("bench").is_ok())
            .await;
        cluster.wait_replicated("bench").await;
    }
    elections.sort_by(f64::total_cmp);
    eprintln!("leader election after a kill (ms, sorted): {elections:.0?}");
    drop(collection);

    // 6. A collection of many shards, then idle CPU.
    let db0 = cluster.nodes[0].db();
    let (many, many_rf) = (args.many_shards, args.many_rf);
    let started = Instant::now();
    blocking(move || db0.create_collection("many", request(16, many, many_rf))).await?;
    cluster
        .wait_until("attached everywhere", |c| c.running().all(|n| n.db().collection("many").is_ok()))
        .await;
    let mut led = 0;
    while led < many && started.elapsed() < Duration::from_secs(60) {
        led = 0;
        for s in 0..many {
            for n in cluster.running() {
                if n.handle().shard_leader("many", s).await.is_some() {
                    led += 1;
                    break;
                }
            }
        }
    }
    let create_s = started.elapsed().as_secs_f64();
    eprintln!("{many} shards x {many_rf} replicas on 3 nodes: every shard led after {create_s:.2} s");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (c0, threads0, t0) = (cpu_seconds()?, thread_cpu()?, Instant::now());
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let (c1, threads1, secs) = (cpu_seconds()?, thread_cpu()?, t0.elapsed().as_secs_f64());
    let idle_many = (c1 - c0) / secs * 100.0;
    let (runtime, other) = cpu_split(&threads0, &threads1);
    let (idle_runtime, idle_other) = (runtime / secs * 100.0, other / secs * 100.0);
    eprintln!(
        "idle CPU, 3 nodes with {many} x {many_rf} + 1 x 3 replicas: {idle_many:.1}% of one core \
         (async runtime threads {idle_runtime:.1}%, other threads {idle_other:.1}%)"
    );

    let figures = serde_json::json!({
        "points": args.points, "dim": args.dim, "batch": args.batch, "writers": args.writers,
        "heartbeat_ms": args.heartbeat_ms,
        "indexing_threshold_kb": args.indexing_threshold_kb,
        "single_node_points_per_s": single_pps,
        "rf3_quorum_points_per_s": cluster_pps,
        "rf3_over_single": cluster_pps / single_pps,
        "raft_log_fsyncs_per_node_per_batch": commits_per_batch,
        "replication_lag_ms": { "p50": lag_p50, "p99": lag_p99, "samples": lags.len() },
        "leader_election_ms": elections,
        "many_shards": many, "many_shards_replication_factor": many_rf, "many_shards_created_and_led_s": create_s,
        "idle_cpu_percent_one_core": {
            "one_replicated_shard": idle_small, "many_shards": idle_many,
            "many_shards_async_runtime_threads": idle_runtime, "many_shards_other_threads": idle_other,
        },
    });
    println!("{}", serde_json::to_string_pretty(&figures)?);
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&figures)?)?;
    }
    for n in 0..cluster.nodes.len() {
        cluster.kill(n).await;
    }
    Ok(())
}
