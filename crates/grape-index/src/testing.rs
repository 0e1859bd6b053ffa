//! Test support: a plain in-memory float32 vector store implementing the scorer traits, a clustered data
//! generator and exact (brute-force) search, for recall tests here and in the crates above.

use grape_types::Distance;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::distance;
use crate::scorer::{PointScorer, QueryScorer, ScoredOffset};

/// Row-major float32 vectors; rows are normalised on construction for Cosine.
#[derive(Debug, Clone)]
pub struct DenseF32 {
    pub dim: usize,
    pub metric: Distance,
    pub data: Vec<f32>,
}

impl DenseF32 {
    /// A store over `data` (`data.len()` a multiple of `dim`).
    pub fn new(dim: usize, metric: Distance, mut data: Vec<f32>) -> Self {
        assert!(dim > 0 && data.len().is_multiple_of(dim), "data is not a whole number of rows");
        if metric == Distance::Cosine {
            data.chunks_exact_mut(dim).for_each(distance::normalize);
        }
        DenseF32 { dim, metric, data }
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    #[inline]
    pub fn row(&self, offset: u32) -> &[f32] {
        let start = offset as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    /// Appends a row (normalised for Cosine) and returns its offset.
    pub fn push(&mut self, row: &[f32]) -> u32 {
        assert_eq!(row.len(), self.dim);
        let offset = self.len() as u32;
        self.data.extend_from_slice(row);
        if self.metric == Distance::Cosine {
            let start = self.data.len() - self.dim;
            distance::normalize(&mut self.data[start..]);
        }
        offset
    }

    /// A scorer of the stored rows against `query` (normalised here for Cosine).
    pub fn query(&self, query: &[f32]) -> DenseF32Query<'_> {
        let mut query = query.to_vec();
        if self.metric == Distance::Cosine {
            distance::normalize(&mut query);
        }
        DenseF32Query { store: self, query, kernel: distance::MetricKernel::new(self.metric) }
    }

    /// Exact top-`k` of `query` among the accepted rows, best first (ties: smaller offset first).
    pub fn brute_force(&self, query: &[f32], k: usize, accept: &dyn Fn(u32) -> bool) -> Vec<ScoredOffset> {
        let scorer = self.query(query);
        let mut all: Vec<ScoredOffset> = (0..self.len() as u32)
            .filter(|&o| accept(o))
            .map(|offset| ScoredOffset { offset, score: scorer.score(offset) })
            .collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        all.truncate(k);
        all
    }
}

impl PointScorer for DenseF32 {
    fn num_points(&self) -> usize {
        self.len()
    }

    #[inline]
    fn score_pair(&self, a: u32, b: u32) -> f32 {
        distance::score(self.metric, self.row(a), self.row(b))
    }

    fn score_pair_many(&self, a: u32, points: &[u32], out: &mut [f32]) {
        for &p in points {
            distance::prefetch(self.row(p));
        }
        let (kernel, row) = (distance::MetricKernel::new(self.metric), self.row(a));
        for (o, &p) in out.iter_mut().zip(points) {
            *o = kernel.score(row, self.row(p));
        }
    }
}

/// Scores rows of a [`DenseF32`] against one query.
#[derive(Debug)]
pub struct DenseF32Query<'a> {
    store: &'a DenseF32,
    query: Vec<f32>,
    kernel: distance::MetricKernel,
}

impl QueryScorer for DenseF32Query<'_> {
    #[inline]
    fn score(&self, point: u32) -> f32 {
        self.kernel.score(&self.query, self.store.row(point))
    }

    fn score_many(&self, points: &[u32], out: &mut [f32]) {
        // Start every row's load before scoring the first: the graph cannot prefetch vectors itself.
        for &p in points {
            distance::prefetch(self.store.row(p));
        }
        for (o, &p) in out.iter_mut().zip(points) {
            *o = self.score(p);
        }
    }
}

/// `n` points in `dim` dimensions drawn around `clusters` random centres (uniform in [-1, 1]) with
/// per-coordinate gaussian noise of standard deviation `spread`; each point picks its cluster at random.
pub fn clustered(n: usize, dim: usize, clusters: usize, spread: f32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..clusters.max(1) * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let mut data = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.gen_range(0..clusters.max(1));
        for d in 0..dim {
            data.push(centres[c * dim + d] + spread * gaussian(&mut rng));
        }
    }
    data
}

/// Standard normal sample (Box-Muller).
fn gaussian(rng: &mut StdRng) -> f32 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Fraction of `truth`'s offsets present in `found`.
pub fn recall(found: &[ScoredOffset], truth: &[ScoredOffset]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let hits = truth.iter().filter(|t| found.iter().any(|f| f.offset == t.offset)).count();
    hits as f64 / truth.len() as f64
}
