//! Binary quantization: each dimension becomes one or two bits, stored as bit planes. Every plane is a
//! row of bits padded to whole u64 words (little-endian), and the code of a point is its planes back to
//! back. Components are first centred on the per-dimension mean `m` (which changes no ranking: `q.m` is
//! the same for every point, and differences are translation invariant).
//!
//! - `one_bit`: one plane, bit `i` = `x_i > m_i`.
//! - `two_bits`: two planes over all dimensions, thermometer-coded: `x_i > m_i - t s_i` and
//!   `x_i > m_i + t s_i` (`s` the standard deviation, `t` = [`SPREAD`]): three levels per dimension.
//! - `one_and_half_bits`: the sign plane plus a plane over pairs of dimensions, bit `p` =
//!   `(x_2p - m_2p) + (x_2p+1 - m_2p+1) > 0`, weighted [`PAIR_WEIGHT`].
//!
//! A plane's bit decodes to `w (2 b - 1)`, and a point's vector estimate adds its planes (a pair bit
//! counts for both dimensions of its pair). Queries are scored either as bits too (`binary`, the default:
//! `sum_j w_j (n_j - 2 hamming_j)`) or asymmetrically as 4- or 8-bit scalars against the decoded planes
//! (`scalar4bits`, `scalar8bits`): `sum_i y_i (2 b_i - 1) = 2 sum_i y_i b_i - sum_i y_i`, where `y` is the
//! query projected on the plane, quantized to `u` levels, and `sum_i u_i b_i = sum_k 2^k popcount(U_k & b)`
//! over the query's bit planes `U_k`.

use grape_types::quantization::{BinaryEncoding, BinaryQueryEncoding};
use grape_types::Distance;

use super::kernels::{kernels, QuantKernels};
use super::{sample_rows, CodeRows, VectorRows};
use crate::error::{IndexError, Result};
use crate::QueryScorer;

/// Thermometer thresholds of `two_bits`, in standard deviations from the mean.
pub const SPREAD: f32 = 0.5;
/// Weight of the pair plane of `one_and_half_bits` relative to the sign plane.
pub const PAIR_WEIGHT: f32 = 0.5;

fn words_bytes(bits: usize) -> usize {
    bits.div_ceil(64) * 8
}

/// One bit plane: how many bits, where it starts in a code row, its weight, and whether its bits are
/// pairs of dimensions.
#[derive(Debug, Clone, Copy)]
struct Plane {
    bits: usize,
    start: usize,
    weight: f32,
    pairs: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BinaryParams {
    pub encoding: BinaryEncoding,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl BinaryParams {
    pub fn train(source: &dyn VectorRows, encoding: BinaryEncoding) -> BinaryParams {
        let dim = source.dim();
        let (mut sum, mut sq, mut n) = (vec![0f64; dim], vec![0f64; dim], 0usize);
        sample_rows(source, 1 << 22, |row| {
            for (i, &x) in row.iter().enumerate() {
                sum[i] += f64::from(x);
                sq[i] += f64::from(x) * f64::from(x);
            }
            n += 1;
        });
        let n = n.max(1) as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let std =
            sq.iter().zip(&sum).map(|(q, s)| ((q / n - (s / n) * (s / n)).max(0.0)).sqrt() as f32).collect();
        BinaryParams { encoding, mean, std }
    }

    fn dim(&self) -> usize {
        self.mean.len()
    }

    fn planes(&self) -> Vec<Plane> {
        let dim = self.dim();
        let full = |start, weight| Plane { bits: dim, start, weight, pairs: false };
        match self.encoding {
            BinaryEncoding::OneBit => vec![full(0, 1.0)],
            BinaryEncoding::TwoBits => vec![full(0, 1.0), full(words_bytes(dim), 1.0)],
            BinaryEncoding::OneAndHalfBits => vec![
                full(0, 1.0),
                Plane { bits: dim.div_ceil(2), start: words_bytes(dim), weight: PAIR_WEIGHT, pairs: true },
            ],
        }
    }

    pub fn code_len(&self) -> usize {
        self.planes().iter().map(|p| words_bytes(p.bits)).sum()
    }

    /// Encodes `v` into `out` (`code_len()` bytes, zeroed by the caller).
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        let set = |out: &mut [u8], start: usize, bit: usize| out[start + bit / 8] |= 1 << (bit % 8);
        let centred = |i: usize| v[i] - self.mean[i];
        let planes = self.planes();
        for i in 0..self.dim() {
            let c = centred(i);
            match self.encoding {
                BinaryEncoding::OneBit | BinaryEncoding::OneAndHalfBits => {
                    if c > 0.0 {
                        set(out, 0, i);
                    }
                }
                BinaryEncoding::TwoBits => {
                    let t = SPREAD * self.std[i];
                    if c > -t {
                        set(out, 0, i);
                    }
                    if c > t {
                        set(out, planes[1].start, i);
                    }
                }
            }
        }
        if self.encoding == BinaryEncoding::OneAndHalfBits {
            for p in 0..planes[1].bits {
                let pair = centred(2 * p) + if 2 * p + 1 < self.dim() { centred(2 * p + 1) } else { 0.0 };
                if pair > 0.0 {
                    set(out, planes[1].start, p);
                }
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let tag: u32 = match self.encoding {
            BinaryEncoding::OneBit => 1,
            BinaryEncoding::TwoBits => 2,
            BinaryEncoding::OneAndHalfBits => 3,
        };
        let mut out = tag.to_le_bytes().to_vec();
        out.extend(self.mean.iter().chain(&self.std).flat_map(|x| x.to_le_bytes()));
        out
    }

    pub fn from_bytes(b: &[u8], dim: usize) -> Result<BinaryParams> {
        let bad = || IndexError::QuantizationCorruption("binary quantization parameters".into());
        if b.len() != 4 + 8 * dim {
            return Err(bad());
        }
        let encoding = match u32::from_le_bytes(b[0..4].try_into().map_err(|_| bad())?) {
            1 => BinaryEncoding::OneBit,
            2 => BinaryEncoding::TwoBits,
            3 => BinaryEncoding::OneAndHalfBits,
            _ => return Err(bad()),
        };
        let floats: Vec<f32> =
            b[4..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let (mean, std) = floats.split_at(dim);
        Ok(BinaryParams { encoding, mean: mean.to_vec(), std: std.to_vec() })
    }

    /// Symmetric score of two encoded rows: the weighted agreement of their planes.
    #[inline]
    fn score_bits(planes: &[Plane], k: &QuantKernels, a: &[u8], b: &[u8]) -> f32 {
        planes
            .iter()
            .map(|p| {
                let r = p.start..p.start + words_bytes(p.bits);
                let ham = k.xor_popcount(&a[r.clone()], &b[r]);
                p.weight * (p.bits as f32 - 2.0 * ham as f32)
            })
            .sum()
    }

    pub fn score_pair(&self, a: &[u8], b: &[u8]) -> f32 {
        Self::score_bits(&self.planes(), kernels(), a, b)
    }
}

/// A query projected on one plane and quantized to `levels` bit planes.
struct QueryPlane {
    plane: Plane,
    lo: f32,
    step: f32,
    /// Sum of the quantized components.
    sum: f32,
    /// `levels` rows of `words_bytes(plane.bits)` bytes: bit `k` of every quantized component.
    bits: Vec<u8>,
}

enum Mode {
    Bits(Vec<u8>),
    Scalar(Vec<QueryPlane>),
}

/// A query scored against binary codes.
pub struct BinaryQueryScorer<'a> {
    planes: Vec<Plane>,
    kernels: &'static QuantKernels,
    mode: Mode,
    rows: CodeRows<'a>,
}

impl<'a> BinaryQueryScorer<'a> {
    pub fn new(
        params: &BinaryParams,
        query_encoding: BinaryQueryEncoding,
        distance: Distance,
        query: &[f32],
        rows: CodeRows<'a>,
    ) -> Self {
        let planes = params.planes();
        let levels = match query_encoding {
            BinaryQueryEncoding::Default | BinaryQueryEncoding::Binary => 0,
            BinaryQueryEncoding::Scalar4bits => 4,
            BinaryQueryEncoding::Scalar8bits => 8,
        };
        let mode = if levels == 0 {
            let mut code = vec![0u8; params.code_len()];
            params.encode(query, &mut code);
            Mode::Bits(code)
        } else {
            // Dot products rank by q.x = q.(x - m) + const; distances need q - m.
            let centre = matches!(distance, Distance::Euclid | Distance::Manhattan);
            let q: Vec<f32> =
                query.iter().zip(&params.mean).map(|(&x, &m)| if centre { x - m } else { x }).collect();
            Mode::Scalar(planes.iter().map(|&plane| quantize_plane(&q, plane, levels)).collect())
        };
        BinaryQueryScorer { planes, kernels: kernels(), mode, rows }
    }
}

fn quantize_plane(q: &[f32], plane: Plane, levels: usize) -> QueryPlane {
    let y: Vec<f32> = if plane.pairs { q.chunks(2).map(|c| c.iter().sum()).collect() } else { q.to_vec() };
    let (lo, hi) = y.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let max_level = ((1u32 << levels) - 1) as f32;
    let step = if hi > lo { (hi - lo) / max_level } else { 1.0 };
    let row = words_bytes(plane.bits);
    let mut bits = vec![0u8; row * levels];
    let mut sum = 0.0;
    for (i, &v) in y.iter().enumerate() {
        let u = ((v - lo) / step).round().clamp(0.0, max_level) as u32;
        sum += lo + step * u as f32;
        for k in 0..levels {
            if u & (1 << k) != 0 {
                bits[k * row + i / 8] |= 1 << (i % 8);
            }
        }
    }
    QueryPlane { plane, lo, step, sum, bits }
}

impl QueryScorer for BinaryQueryScorer<'_> {
    #[inline]
    fn score(&self, point: u32) -> f32 {
        let x = self.rows.row(point);
        match &self.mode {
            Mode::Bits(q) => BinaryParams::score_bits(&self.planes, self.kernels, q, x),
            Mode::Scalar(planes) => planes
                .iter()
                .map(|qp| {
                    let row = words_bytes(qp.plane.bits);
                    let b = &x[qp.plane.start..qp.plane.start + row];
                    let ones = self.kernels.popcount(b) as f32;
                    let weighted = self.kernels.weighted_and_popcount(&qp.bits, b);
                    let dot_b = qp.lo * ones + qp.step * weighted as f32;
                    qp.plane.weight * (2.0 * dot_b - qp.sum)
                })
                .sum(),
        }
    }

    fn score_many(&self, points: &[u32], out: &mut [f32]) {
        // A scan's consecutive rows, with every plane weighted 1: one Hamming distance over whole rows
        // (padding bits are zero on both sides), `sum_j (n_j - 2 h_j) = n - 2 h`, in one kernel call.
        if let (Mode::Bits(q), Some(&first)) = (&self.mode, points.first()) {
            if self.planes.iter().all(|p| p.weight == 1.0) && super::consecutive(points) {
                let bits: usize = self.planes.iter().map(|p| p.bits).sum();
                let mut ham = vec![0u32; points.len()];
                self.kernels.xor_popcount_rows(q, self.rows.span(first, points.len()), &mut ham);
                for (o, h) in out.iter_mut().zip(ham) {
                    *o = bits as f32 - 2.0 * h as f32;
                }
                return;
            }
        }
        // Rows of a scan are consecutive (the hardware prefetcher follows); a graph's are scattered.
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
