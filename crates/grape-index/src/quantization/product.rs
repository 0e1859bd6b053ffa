//! Product quantization: a vector is cut into sub-vectors of `sub_dim` dimensions, and each sub-vector is
//! replaced by the one-byte index of its nearest centroid among at most 256, learned per subspace by
//! k-means (Lloyd's iterations from centroids picked among the sample). A query builds a lookup table of
//! its partial score against every centroid of every subspace; a point's score is then the sum of one
//! table entry per code byte.

use grape_types::Distance;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;

use super::{sample_rows, CodeRows, VectorRows};
use crate::distance::score as scalar_score;
use crate::error::{IndexError, Result};
use crate::QueryScorer;

/// Training sample size (points) and Lloyd iterations.
const SAMPLE: usize = 8192;
const ITERATIONS: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct ProductParams {
    pub sub_dim: usize,
    /// Centroids per subspace (at most 256).
    pub k: usize,
    /// `[subspace][centroid][sub_dim]`, flattened.
    pub centroids: Vec<f32>,
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

impl ProductParams {
    pub fn train(source: &dyn VectorRows, sub_dim: usize, seed: u64) -> ProductParams {
        let dim = source.dim();
        let mut sample: Vec<f32> = Vec::new();
        let mut rows = 0;
        sample_rows(source, SAMPLE * dim, |row| {
            sample.extend_from_slice(row);
            rows += 1;
        });
        let k = rows.clamp(1, 256);
        let subspaces = dim / sub_dim;
        let per_space: Vec<Vec<f32>> = (0..subspaces)
            .into_par_iter()
            .map(|s| {
                let points: Vec<&[f32]> =
                    (0..rows).map(|r| &sample[r * dim + s * sub_dim..r * dim + (s + 1) * sub_dim]).collect();
                kmeans(&points, sub_dim, k, seed ^ s as u64)
            })
            .collect();
        ProductParams { sub_dim, k, centroids: per_space.concat() }
    }

    pub fn subspaces(&self) -> usize {
        self.centroids.len() / (self.k * self.sub_dim).max(1)
    }

    pub fn code_len(&self) -> usize {
        self.subspaces()
    }

    fn centroid(&self, s: usize, c: usize) -> &[f32] {
        let at = (s * self.k + c) * self.sub_dim;
        &self.centroids[at..at + self.sub_dim]
    }

    /// Encodes `v` into `out` (`code_len()` bytes).
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        for (s, o) in out.iter_mut().enumerate() {
            let sub = &v[s * self.sub_dim..(s + 1) * self.sub_dim];
            *o = nearest(sub, (0..self.k).map(|c| self.centroid(s, c))) as u8;
        }
    }

    /// The vector a code stands for.
    pub fn decode(&self, code: &[u8]) -> Vec<f32> {
        code.iter().enumerate().flat_map(|(s, &c)| self.centroid(s, usize::from(c)).iter().copied()).collect()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 4 * self.centroids.len());
        out.extend((self.sub_dim as u32).to_le_bytes());
        out.extend((self.k as u32).to_le_bytes());
        out.extend(self.centroids.iter().flat_map(|x| x.to_le_bytes()));
        out
    }

    pub fn from_bytes(b: &[u8], dim: usize) -> Result<ProductParams> {
        let bad = || IndexError::QuantizationCorruption("product quantization parameters".into());
        let u = |i: usize| b.get(i..i + 4).and_then(|s| s.try_into().ok()).map(u32::from_le_bytes);
        let (Some(sub_dim), Some(k)) = (u(0), u(4)) else { return Err(bad()) };
        let (sub_dim, k) = (sub_dim as usize, k as usize);
        if sub_dim == 0
            || !dim.is_multiple_of(sub_dim)
            || !(1..=256).contains(&k)
            || b.len() != 8 + 4 * dim * k
        {
            return Err(bad());
        }
        let centroids =
            b[8..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Ok(ProductParams { sub_dim, k, centroids })
    }

    /// Score of two stored codes through their centroids.
    pub fn score_pair(&self, distance: Distance, a: &[u8], b: &[u8]) -> f32 {
        a.iter()
            .zip(b)
            .enumerate()
            .map(|(s, (&x, &y))| {
                scalar_score(distance, self.centroid(s, usize::from(x)), self.centroid(s, usize::from(y)))
            })
            .sum()
    }
}

fn nearest<'a>(v: &[f32], centroids: impl Iterator<Item = &'a [f32]>) -> usize {
    let mut best = (0, f32::INFINITY);
    for (i, c) in centroids.enumerate() {
        let d = l2(v, c);
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// Lloyd's k-means of `points` into `k` centroids (flattened), starting from `k` distinct sample points.
fn kmeans(points: &[&[f32]], dim: usize, k: usize, seed: u64) -> Vec<f32> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.shuffle(&mut rand::rngs::SmallRng::seed_from_u64(seed));
    let mut centroids: Vec<f32> = order.iter().take(k).flat_map(|&i| points[i].iter().copied()).collect();
    centroids.resize(k * dim, 0.0);
    let mut assign = vec![0usize; points.len()];
    for _ in 0..ITERATIONS {
        let mut changed = false;
        for (a, p) in assign.iter_mut().zip(points) {
            let c = nearest(p, centroids.chunks_exact(dim));
            changed |= *a != c;
            *a = c;
        }
        let mut sums = vec![0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (&a, p) in assign.iter().zip(points) {
            counts[a] += 1;
            for (s, &x) in sums[a * dim..(a + 1) * dim].iter_mut().zip(p.iter()) {
                *s += f64::from(x);
            }
        }
        for c in 0..k {
            // An empty cluster keeps its centroid.
            if counts[c] > 0 {
                for d in 0..dim {
                    centroids[c * dim + d] = (sums[c * dim + d] / counts[c] as f64) as f32;
                }
            }
        }
        if !changed {
            break;
        }
    }
    centroids
}

/// A query's lookup table scored against product codes.
pub struct ProductQueryScorer<'a> {
    /// `[subspace][centroid]` partial scores (larger is better).
    table: Vec<f32>,
    k: usize,
    rows: CodeRows<'a>,
}

impl<'a> ProductQueryScorer<'a> {
    pub fn new(params: &ProductParams, distance: Distance, query: &[f32], rows: CodeRows<'a>) -> Self {
        let mut table = Vec::with_capacity(params.subspaces() * params.k);
        for s in 0..params.subspaces() {
            let sub = &query[s * params.sub_dim..(s + 1) * params.sub_dim];
            table.extend((0..params.k).map(|c| scalar_score(distance, sub, params.centroid(s, c))));
        }
        ProductQueryScorer { table, k: params.k, rows }
    }
}

/// Sum of one table entry per code byte (`k` entries per subspace), by this CPU's lookup-table kernel.
#[inline]
pub fn table_score(table: &[f32], k: usize, code: &[u8]) -> f32 {
    super::kernels::kernels().table_score(table, k, code)
}

impl QueryScorer for ProductQueryScorer<'_> {
    #[inline]
    fn score(&self, point: u32) -> f32 {
        table_score(&self.table, self.k, self.rows.row(point))
    }

    fn score_many(&self, points: &[u32], out: &mut [f32]) {
        if !super::consecutive(points) {
            for &p in points {
                crate::distance::prefetch(self.rows.row(p));
            }
        }
        for (o, &p) in out.iter_mut().zip(points) {
            *o = self.score(p);
        }
    }
}
