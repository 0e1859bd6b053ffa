//! Scalar (int8) quantization: every component is mapped linearly onto 0..=255 over a range `[lo, hi]`
//! chosen from the data (the `quantile` of the values, or their whole range). A value `x` is stored as
//! `c = round((x - lo) / step)` and read back as `lo + step * c`.
//!
//! The query is encoded the same way, so scoring is integer arithmetic on bytes (SIMD kernels):
//! - dot: `q.x ~ n lo^2 + lo step (sum c_q + sum c_x) + step^2 (c_q . c_x)`; the part that depends
//!   only on the point, `lo step sum c_x`, is stored with its codes as an f32 before them;
//! - Euclid: `-|q - x|^2 ~ -step^2 |c_q - c_x|^2`; Manhattan: `-step |c_q - c_x|_1`.

use grape_types::Distance;

use super::kernels::{kernels, QuantKernels};
use super::{sample_rows, CodeRows, VectorRows};
use crate::error::{IndexError, Result};
use crate::QueryScorer;

/// Bytes before the codes of a row: the point's f32 term of the dot product.
const TERM: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Int8Params {
    pub lo: f32,
    pub step: f32,
}

impl Int8Params {
    /// The range covering `quantile` of the sampled values (centred), or all of them.
    pub fn train(source: &dyn VectorRows, quantile: Option<f32>) -> Int8Params {
        let mut values: Vec<f32> = Vec::new();
        sample_rows(source, 1 << 20, |row| values.extend_from_slice(row));
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return Int8Params { lo: 0.0, step: 1.0 };
        }
        values.sort_unstable_by(f32::total_cmp);
        let (lo, hi) = match quantile {
            Some(q) if q < 1.0 => {
                let cut = ((1.0 - f64::from(q)) / 2.0 * values.len() as f64) as usize;
                (values[cut], values[values.len() - 1 - cut])
            }
            _ => (values[0], values[values.len() - 1]),
        };
        let step = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
        Int8Params { lo, step }
    }

    pub fn code_len(dim: usize) -> usize {
        TERM + dim
    }

    fn quantize(&self, v: &[f32], out: &mut [u8]) -> u32 {
        let mut sum = 0u32;
        for (o, &x) in out.iter_mut().zip(v) {
            *o = ((x - self.lo) / self.step).round().clamp(0.0, 255.0) as u8;
            sum += u32::from(*o);
        }
        sum
    }

    /// Encodes `v` into `out` (`code_len(v.len())` bytes).
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        let (term, codes) = out.split_at_mut(TERM);
        let sum = self.quantize(v, codes);
        term.copy_from_slice(&(self.lo * self.step * sum as f32).to_le_bytes());
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        [self.lo.to_le_bytes(), self.step.to_le_bytes()].concat()
    }

    pub fn from_bytes(b: &[u8]) -> Result<Int8Params> {
        let f = |i: usize| b.get(i..i + 4).and_then(|s| s.try_into().ok()).map(f32::from_le_bytes);
        match (f(0), f(4), b.len()) {
            (Some(lo), Some(step), 8) if lo.is_finite() && step.is_finite() && step > 0.0 => {
                Ok(Int8Params { lo, step })
            }
            _ => Err(IndexError::QuantizationCorruption("int8 quantization parameters".into())),
        }
    }

    /// Score of two encoded rows (query row first), larger is better.
    #[inline]
    fn score_codes(&self, k: &QuantKernels, distance: Distance, q: &[u8], x: &[u8], q_term: f32) -> f32 {
        let (x_term, xc) = x.split_at(TERM);
        let qc = &q[TERM..];
        let s2 = self.step * self.step;
        match distance {
            Distance::Cosine | Distance::Dot => {
                let x_term = f32::from_le_bytes(x_term.try_into().unwrap_or_default());
                s2 * k.dot_u8(qc, xc) as f32 + x_term + q_term
            }
            Distance::Euclid => -s2 * k.l2_u8(qc, xc) as f32,
            Distance::Manhattan => -self.step * k.l1_u8(qc, xc) as f32,
        }
    }

    /// The query-only part of the dot product for an encoded query row of dimension `dim`.
    fn query_term(&self, q: &[u8], dim: usize) -> f32 {
        let sum: u32 = q[TERM..].iter().map(|&c| u32::from(c)).sum();
        dim as f32 * self.lo * self.lo + self.lo * self.step * sum as f32
    }

    /// Score between two stored rows.
    pub fn score_pair(&self, distance: Distance, dim: usize, a: &[u8], b: &[u8]) -> f32 {
        self.score_codes(kernels(), distance, a, b, self.query_term(a, dim))
    }
}

/// A query encoded as int8, scored against stored rows.
pub struct Int8QueryScorer<'a> {
    params: Int8Params,
    distance: Distance,
    kernels: &'static QuantKernels,
    query: Vec<u8>,
    query_term: f32,
    rows: CodeRows<'a>,
}

impl<'a> Int8QueryScorer<'a> {
    pub fn new(params: Int8Params, distance: Distance, query: &[f32], rows: CodeRows<'a>) -> Self {
        let mut code = vec![0u8; Int8Params::code_len(query.len())];
        params.encode(query, &mut code);
        let query_term = params.query_term(&code, query.len());
        Int8QueryScorer { params, distance, kernels: kernels(), query: code, query_term, rows }
    }
}

impl QueryScorer for Int8QueryScorer<'_> {
    #[inline]
    fn score(&self, point: u32) -> f32 {
        self.params.score_codes(
            self.kernels,
            self.distance,
            &self.query,
            self.rows.row(point),
            self.query_term,
        )
    }

    fn score_many(&self, points: &[u32], out: &mut [f32]) {
        if !super::consecutive(points) {
            for &p in points {
                crate::distance::prefetch_all(self.rows.row(p));
            }
        }
        for (o, &p) in out.iter_mut().zip(points) {
            *o = self.score(p);
        }
    }
}
