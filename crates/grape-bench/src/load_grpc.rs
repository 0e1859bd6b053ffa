//! `grape-bench load --grpc`: the load generator of [`super::load`] over Qdrant's gRPC API, through the
//! official Rust client (`qdrant-client`). Same phases and report: upload in batches (`wait=true`,
//! points/s), wait for indexing, then `concurrency` closed-loop clients sending `Query` (nearest, `limit`
//! k, `hnsw_ef`) for `duration`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use qdrant_client::qdrant::{
    CollectionStatus, CreateCollectionBuilder, Distance, OptimizersConfigDiffBuilder, PointStruct, Query,
    QueryPoints, SearchParamsBuilder, UpsertPointsBuilder, VectorParamsBuilder,
};
use qdrant_client::Qdrant;

use crate::dataset::Dataset;
use crate::load::{LoadArgs, Measured, Report};

pub fn run(args: &LoadArgs) -> Result<()> {
    let data = Arc::new(Dataset::load(&args.dataset)?);
    // One async worker per core: the client shares the machine with the server, as the REST client does.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(load(args, data))
}

fn distance(d: grape::Distance) -> Distance {
    match d {
        grape::Distance::Cosine => Distance::Cosine,
        grape::Distance::Euclid => Distance::Euclid,
        grape::Distance::Dot => Distance::Dot,
        grape::Distance::Manhattan => Distance::Manhattan,
    }
}

async fn load(args: &LoadArgs, data: Arc<Dataset>) -> Result<()> {
    let mut builder =
        Qdrant::from_url(&args.grpc_url).skip_compatibility_check().timeout(Duration::from_secs(600));
    if let Some(k) = &args.api_key {
        builder = builder.api_key(k.clone());
    }
    let client = Arc::new(builder.build()?);
    let name = args.collection.clone();
    let mut upsert_rate = None;
    let mut index_wait = None;
    if !args.reuse {
        let _ = client.delete_collection(&name).await;
        // One segment for the whole dataset, as the REST mode and `grape-bench ann` build it.
        let total_kb = (data.base.len() * data.dim * 4 / 1024 + 1) as u64;
        client
            .create_collection(
                CreateCollectionBuilder::new(&name)
                    .vectors_config(VectorParamsBuilder::new(data.dim as u64, distance(data.distance)))
                    .replication_factor(args.replication_factor)
                    .optimizers_config(OptimizersConfigDiffBuilder::default().max_segment_size(total_kb)),
            )
            .await?;
        let started = Instant::now();
        let next = Arc::new(AtomicUsize::new(0));
        let batches: Arc<Vec<usize>> = Arc::new((0..data.base.len()).step_by(args.batch).collect());
        let mut workers = Vec::new();
        for _ in 0..args.upload_parallel {
            let (client, data, next, batches, name) =
                (client.clone(), data.clone(), next.clone(), batches.clone(), name.clone());
            let batch = args.batch;
            workers.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&start) = batches.get(i) else { return Ok::<(), anyhow::Error>(()) };
                    let end = (start + batch).min(data.base.len());
                    let points: Vec<PointStruct> = (start..end)
                        .map(|i| {
                            PointStruct::new(i as u64, data.base[i].clone(), qdrant_client::Payload::new())
                        })
                        .collect();
                    client.upsert_points(UpsertPointsBuilder::new(&name, points).wait(true)).await?;
                }
            }));
        }
        for w in workers {
            w.await.context("upload task")??;
        }
        let secs = started.elapsed().as_secs_f64();
        upsert_rate = Some(data.base.len() as f64 / secs);
        eprintln!(
            "uploaded {} points in {secs:.1} s ({:.0} points/s)",
            data.base.len(),
            data.base.len() as f64 / secs
        );
        let started = Instant::now();
        let mut green = 0;
        loop {
            let info = client.collection_info(&name).await?.result.context("collection info")?;
            green = if info.status == CollectionStatus::Green as i32 { green + 1 } else { 0 };
            if green >= 3 {
                eprintln!("indexed vectors: {:?} of {:?}", info.indexed_vectors_count, info.points_count);
                break;
            }
            if started.elapsed() > Duration::from_secs(1800) {
                bail!("collection not indexed after 30 minutes");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        index_wait = Some(started.elapsed().as_secs_f64());
        eprintln!("indexed after {:.1} s more", started.elapsed().as_secs_f64());
    }

    // Requests are built once; each send clones one (a copy of the query's floats).
    let requests: Arc<Vec<QueryPoints>> = Arc::new(
        data.queries
            .iter()
            .map(|q| QueryPoints {
                collection_name: name.clone(),
                query: Some(Query::new_nearest(q.clone())),
                limit: Some(args.k as u64),
                params: Some(SearchParamsBuilder::default().hnsw_ef(args.ef as u64).build()),
                ..Default::default()
            })
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let next_query = Arc::new(AtomicUsize::new(0));
    let hits = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, data, requests, stop, next_query, hits, errors) = (
            client.clone(),
            data.clone(),
            requests.clone(),
            stop.clone(),
            next_query.clone(),
            hits.clone(),
            errors.clone(),
        );
        let k = args.k;
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let qi = next_query.fetch_add(1, Ordering::Relaxed) % requests.len();
                let t = Instant::now();
                match client.query(requests[qi].clone()).await {
                    Ok(r) => {
                        mine.push(t.elapsed());
                        let truth = &data.truth[qi][..k.min(data.truth[qi].len())];
                        let found = r
                            .result
                            .iter()
                            .filter_map(|p| match p.id.as_ref().and_then(|id| id.point_id_options.clone()) {
                                Some(qdrant_client::qdrant::point_id::PointIdOptions::Num(n)) => Some(n),
                                _ => None,
                            })
                            .filter(|id| truth.contains(&(*id as u32)))
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
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.context("query task")?);
    }
    let measured = Measured {
        upsert_points_per_s: upsert_rate,
        index_wait_s: index_wait,
        elapsed_s: started.elapsed().as_secs_f64(),
        latencies: lat,
        errors: errors.load(Ordering::Relaxed),
        hits: hits.load(Ordering::Relaxed),
    };
    Report::new(args, &args.grpc_url, "grpc", &data, measured).print_and_save(args)
}
