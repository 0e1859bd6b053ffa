//! Builds an HNSW graph over a TEXMEX-layout dataset (`base.fvecs`, `query.fvecs`, `gt.ivecs`; cosine) and
//! prints build time, then recall@10 and single-thread QPS at several `ef`.
//!
//! ```text
//! cargo run -p grape-index --release --example hnsw_minilm -- [DIR] [M] [EF_CONSTRUCT] [THREADS]
//! ```
//! DIR defaults to `../shared/datasets/minilm-384-10k` relative to the workspace root.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use grape_index::hnsw::{HnswGraph, HnswParams};
use grape_index::testing::DenseF32;
use grape_index::QueryScorer;
use grape_types::Distance;

/// Rows of a TEXMEX file: per row a little-endian i32 dimension, then that many 4-byte values.
fn read_rows(path: &Path) -> Result<(usize, Vec<[u8; 4]>)> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let Some(head) = bytes.get(0..4) else { bail!("{} is empty", path.display()) };
    let dim = i32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let row = 4 * (dim + 1);
    if dim == 0 || bytes.len() % row != 0 {
        bail!("{}: not a TEXMEX file of dimension {dim}", path.display());
    }
    let values =
        bytes.chunks_exact(row).flat_map(|r| r[4..].chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]));
    Ok((dim, values.collect()))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let default_dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/minilm-384-10k");
    let dir = args.first().map_or(default_dir, PathBuf::from);
    let num = |i: usize, default: usize| -> Result<usize> {
        args.get(i).map_or(Ok(default), |s| s.parse().with_context(|| format!("argument {s}")))
    };
    let params = HnswParams { m: num(1, 16)?, ef_construct: num(2, 100)?, max_threads: num(3, 1)?, seed: 1 };

    let (dim, base) = read_rows(&dir.join("base.fvecs"))?;
    let (qdim, queries) = read_rows(&dir.join("query.fvecs"))?;
    let (gt_k, gt) = read_rows(&dir.join("gt.ivecs"))?;
    if qdim != dim || gt_k < 10 {
        bail!("query dimension {qdim} or ground-truth width {gt_k} does not fit base dimension {dim}");
    }
    let store = DenseF32::new(dim, Distance::Cosine, base.into_iter().map(f32::from_le_bytes).collect());
    let queries: Vec<f32> = queries.into_iter().map(f32::from_le_bytes).collect();
    let gt: Vec<i32> = gt.into_iter().map(i32::from_le_bytes).collect();
    let n_queries = queries.len() / dim;
    println!(
        "{}: {} points, {n_queries} queries, dim {dim}, simd {}",
        dir.display(),
        store.len(),
        grape_index::distance::simd_level()
    );

    let start = Instant::now();
    let graph = HnswGraph::build(&store, &|_| true, &params);
    println!(
        "build m={} ef_construct={} threads={}: {:.2} s, {:.1} MiB",
        params.m,
        params.ef_construct,
        params.max_threads,
        start.elapsed().as_secs_f64(),
        graph.ram_bytes() as f64 / (1 << 20) as f64
    );

    let scorers: Vec<_> = queries.chunks_exact(dim).map(|q| store.query(q)).collect();
    for ef in [16, 32, 64, 128] {
        let mut best = f64::MAX;
        let mut hits = 0;
        for _ in 0..15 {
            hits = 0;
            let start = Instant::now();
            for (i, scorer) in scorers.iter().enumerate() {
                let found = graph.search(scorer as &dyn QueryScorer, 10, ef, &|_| true);
                let truth = &gt[i * gt_k..i * gt_k + 10];
                hits += found.iter().filter(|f| truth.contains(&(f.offset as i32))).count();
            }
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "ef={ef:<4} recall@10={:.4}  QPS={:.0}",
            hits as f64 / (10 * n_queries) as f64,
            n_queries as f64 / best
        );
    }
    Ok(())
}
