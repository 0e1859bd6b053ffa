//! Writers, searchers and the background optimizer at once: readers see whole batches, searches stay
//! well-formed, and the final state equals what was written.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use grape::{
    CreateCollection, Database, Distance, OptimizersConfigDiff, PointId, PointStruct, ScrollRequest,
    SearchParams, SearchRequest, VectorParams, VectorsConfig, WithPayload,
};

/// A point of writer 2: spread over 8 dimensions, a function of the id.
fn spread(id: u64) -> Vec<f32> {
    (0..8u64).map(|d| ((id * (2 * d + 3) * 2_654_435_761) % 1000) as f32).collect()
}

#[test]
fn writers_searchers_and_optimizer() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut create = CreateCollection::new(VectorsConfig::Single(VectorParams::new(8, Distance::Euclid)));
    create.optimizers_config = Some(OptimizersConfigDiff {
        indexing_threshold: Some(4),
        max_segment_size: Some(64),
        flush_interval_sec: Some(0),
        default_segment_number: Some(2),
        ..Default::default()
    });
    create.hnsw_config = Some(grape::HnswConfigDiff { full_scan_threshold: Some(1), ..Default::default() });
    db.create_collection("c", create).unwrap();
    let c = db.collection("c").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    const BATCH: u64 = 50;
    const ROUNDS: u64 = 120;

    std::thread::scope(|s| {
        // Writer 1 rewrites ids 0..50 as one batch per generation.
        let c1 = Arc::clone(&c);
        s.spawn(move || {
            for gen in 0..ROUNDS {
                let batch = (0..BATCH)
                    .map(|id| {
                        PointStruct::new(id, vec![gen as f32; 8])
                            .with_payload(serde_json::json!({"gen": gen}))
                            .unwrap()
                    })
                    .collect();
                c1.upsert(batch).unwrap();
            }
        });
        // Writer 2 appends new ids and deletes some.
        let c2 = Arc::clone(&c);
        s.spawn(move || {
            for round in 0..ROUNDS {
                let base = 1000 + round * 20;
                c2.upsert((base..base + 20).map(|id| PointStruct::new(id, spread(id))).collect()).unwrap();
                if round % 3 == 0 {
                    c2.delete((base..base + 5).map(PointId::Num).collect()).unwrap();
                }
            }
        });
        // Readers: batches are atomic, results well-formed.
        for r in 0..2 {
            let c = Arc::clone(&c);
            let stop = Arc::clone(&stop);
            s.spawn(move || {
                let mut checks = 0;
                while !stop.load(Ordering::Relaxed) || checks < 20 {
                    let page = c
                        .scroll(&ScrollRequest {
                            offset: None,
                            limit: BATCH as usize,
                            with_payload: WithPayload::Enable(true),
                            ..Default::default()
                        })
                        .unwrap();
                    let gens: Vec<u64> = page
                        .points
                        .iter()
                        .filter(|p| matches!(p.id, PointId::Num(n) if n < BATCH))
                        .map(|p| p.payload.as_ref().unwrap()["gen"].as_u64().unwrap())
                        .collect();
                    assert!(
                        gens.windows(2).all(|w| w[0] == w[1]),
                        "reader {r} saw a partial batch: {gens:?}"
                    );
                    let mut req = SearchRequest::new(vec![500.0; 8], 10);
                    req.params =
                        SearchParams { exact: checks % 2 == 0, hnsw_ef: Some(32), quantization: None };
                    let hits = c.search(&req).unwrap();
                    assert!(hits.windows(2).all(|w| w[0].score <= w[1].score), "unsorted: {hits:?}");
                    let mut ids: Vec<_> = hits.iter().map(|h| h.id).collect();
                    ids.sort();
                    ids.dedup();
                    assert_eq!(ids.len(), hits.len(), "duplicate ids in {hits:?}");
                    checks += 1;
                }
            });
        }
        s.spawn(|| {
            // Let the writers finish, then stop the readers.
            while c.count(&Default::default()).unwrap()
                < (BATCH + ROUNDS * 20 - ROUNDS.div_ceil(3) * 5) as usize
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            stop.store(true, Ordering::Relaxed);
        });
    });

    let expected = BATCH + ROUNDS * 20 - ROUNDS.div_ceil(3) * 5;
    assert_eq!(c.count(&Default::default()).unwrap(), expected as usize);
    c.optimize_now().unwrap();
    let info = c.info().unwrap();
    assert_eq!(info.points_count, expected as usize);
    // The last generation is what every point of writer 1 holds.
    let all = c.scroll(&ScrollRequest { limit: BATCH as usize, ..Default::default() }).unwrap();
    assert!(all.points.iter().all(|p| p.payload.as_ref().unwrap()["gen"] == ROUNDS - 1));
    // HNSW and exact search agree after optimization (on spread-out points: HNSW is approximate, and
    // points on a line with exact ties are its worst case).
    let mut exact = SearchRequest::new(spread(1500), 5);
    exact.params.exact = true;
    let approx = SearchRequest::new(spread(1500), 5);
    let exact: Vec<PointId> = c.search(&exact).unwrap().iter().map(|h| h.id).collect();
    let approx: Vec<PointId> = c.search(&approx).unwrap().iter().map(|h| h.id).collect();
    assert_eq!(exact[0], PointId::Num(1500));
    assert!(exact.iter().filter(|id| approx.contains(id)).count() >= 4, "exact {exact:?}, graph {approx:?}");
}
