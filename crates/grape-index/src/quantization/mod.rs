//! Quantized copies of dense vectors: scalar int8 ([`int8`]), binary 1 / 1.5 / 2 bits ([`binary`]) and
//! product quantization ([`product`]), with their SIMD kernels ([`kernels`]).
//!
//! [`QuantizedVectors`] holds the trained parameters and one fixed-size code row per point offset, in RAM
//! or memory-mapped ([`Codes`]). Its query scorers implement [`QueryScorer`], so the HNSW graph (built on
//! the original vectors) is traversed on quantized scores unchanged; callers re-score the best candidates
//! with the originals. Scores are internal (larger is better) approximations of the metric's.
//!
//! ```
//! use grape_index::quantization::{QuantizedVectors, VectorRows};
//! use grape_index::QueryScorer;
//! use grape_types::{Distance, QuantizationConfig};
//!
//! struct Rows(Vec<Vec<f32>>);
//! impl VectorRows for Rows {
//!     fn len(&self) -> usize { self.0.len() }
//!     fn dim(&self) -> usize { 2 }
//!     fn has(&self, _: u32) -> bool { true }
//!     fn row(&self, offset: u32, buf: &mut Vec<f32>) { buf.clear(); buf.extend(&self.0[offset as usize]); }
//! }
//! let config: QuantizationConfig = serde_json::from_str(r#"{"scalar": {"type": "int8"}}"#).unwrap();
//! let rows = Rows(vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.7, 0.7]]);
//! let q = QuantizedVectors::build(&config, Distance::Dot, &rows, 1).unwrap();
//! let scorer = q.query_scorer(&[1.0, 0.1]);
//! assert!(scorer.score(0) > scorer.score(1));
//! ```

pub mod binary;
pub mod int8;
pub mod kernels;
pub mod product;
#[cfg(test)]
mod tests;

use grape_types::quantization::{BinaryQueryEncoding, QuantizationConfig};
use grape_types::Distance;
use memmap2::Mmap;
use rayon::prelude::*;

use crate::error::{IndexError, Result};
use crate::{PointScorer, QueryScorer};
use binary::{BinaryParams, BinaryQueryScorer};
use int8::{Int8Params, Int8QueryScorer};
use product::{ProductParams, ProductQueryScorer};

/// Original vectors as the quantizers read them (decoded to f32; cosine rows unit length).
pub trait VectorRows: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn dim(&self) -> usize;
    /// Whether offset `offset` has a vector (absent rows are never trained on, encoded as zeros).
    fn has(&self, offset: u32) -> bool;
    /// Writes row `offset` into `buf` (replacing its contents).
    fn row(&self, offset: u32, buf: &mut Vec<f32>);
}

/// Calls `f` with present rows spread evenly over the offsets, about `max_values / dim` of them.
pub(crate) fn sample_rows(source: &dyn VectorRows, max_values: usize, mut f: impl FnMut(&[f32])) {
    let (n, dim) = (source.len(), source.dim().max(1));
    let want = (max_values / dim).max(1);
    let stride = n.div_ceil(want).max(1);
    let mut buf = Vec::with_capacity(dim);
    for offset in (0..n).step_by(stride) {
        if source.has(offset as u32) {
            source.row(offset as u32, &mut buf);
            f(&buf);
        }
    }
}

/// Whether `points` are consecutive offsets (an exact scan), which need no software prefetch.
fn consecutive(points: &[u32]) -> bool {
    points.windows(2).all(|w| w[0].checked_add(1) == Some(w[1]))
}

/// Code rows of one quantized vector, all of one length.
pub enum Codes {
    Ram(Vec<u8>),
    /// A memory-mapped file whose code rows are bytes `start..start + len`.
    Mapped {
        map: Mmap,
        start: usize,
        len: usize,
    },
}

impl Codes {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Codes::Ram(v) => v,
            Codes::Mapped { map, start, len } => &map[*start..*start + *len],
        }
    }

    pub fn in_ram(&self) -> bool {
        matches!(self, Codes::Ram(_))
    }
}

/// Rows of `len` bytes in one slice.
#[derive(Clone, Copy)]
pub struct CodeRows<'a> {
    bytes: &'a [u8],
    len: usize,
}

impl<'a> CodeRows<'a> {
    /// The bytes of `n` consecutive rows from `first`.
    #[inline]
    pub fn span(&self, first: u32, n: usize) -> &'a [u8] {
        let start = first as usize * self.len;
        &self.bytes[start..start + n * self.len]
    }

    #[inline]
    pub fn row(&self, offset: u32) -> &'a [u8] {
        let start = offset as usize * self.len;
        &self.bytes[start..start + self.len]
    }
}

/// Trained parameters of one method.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantizer {
    Int8(Int8Params),
    Binary(BinaryParams),
    Product(ProductParams),
}

impl Quantizer {
    /// Learns the parameters of `config` from `source` (`seed` makes k-means reproducible).
    pub fn train(config: &QuantizationConfig, source: &dyn VectorRows, seed: u64) -> Result<Quantizer> {
        Ok(match config {
            QuantizationConfig::Scalar(s) => Quantizer::Int8(Int8Params::train(source, s.scalar.quantile)),
            QuantizationConfig::Binary(b) => {
                Quantizer::Binary(BinaryParams::train(source, b.binary.encoding.unwrap_or_default()))
            }
            QuantizationConfig::Product(p) => {
                let sub_dim = p.product.compression.sub_dim();
                if !source.dim().is_multiple_of(sub_dim) {
                    return Err(IndexError::InvalidQuantization(format!(
                        "product quantization of {sub_dim} dimensions per byte does not divide the dimension {}",
                        source.dim()
                    )));
                }
                Quantizer::Product(ProductParams::train(source, sub_dim, seed))
            }
        })
    }

    /// Method tag in files: 1 int8, 2 binary, 3 product.
    pub fn kind(&self) -> u32 {
        match self {
            Quantizer::Int8(_) => 1,
            Quantizer::Binary(_) => 2,
            Quantizer::Product(_) => 3,
        }
    }

    pub fn code_len(&self, dim: usize) -> usize {
        match self {
            Quantizer::Int8(_) => Int8Params::code_len(dim),
            Quantizer::Binary(b) => b.code_len(),
            Quantizer::Product(p) => p.code_len(),
        }
    }

    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        match self {
            Quantizer::Int8(p) => p.encode(v, out),
            Quantizer::Binary(p) => p.encode(v, out),
            Quantizer::Product(p) => p.encode(v, out),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Quantizer::Int8(p) => p.to_bytes(),
            Quantizer::Binary(p) => p.to_bytes(),
            Quantizer::Product(p) => p.to_bytes(),
        }
    }

    pub fn from_bytes(kind: u32, bytes: &[u8], dim: usize) -> Result<Quantizer> {
        Ok(match kind {
            1 => Quantizer::Int8(Int8Params::from_bytes(bytes)?),
            2 => Quantizer::Binary(BinaryParams::from_bytes(bytes, dim)?),
            3 => Quantizer::Product(ProductParams::from_bytes(bytes, dim)?),
            k => return Err(IndexError::QuantizationCorruption(format!("unknown quantization kind {k}"))),
        })
    }
}

/// Quantized codes of one dense vector of a segment.
pub struct QuantizedVectors {
    config: QuantizationConfig,
    distance: Distance,
    dim: usize,
    quantizer: Quantizer,
    code_len: usize,
    codes: Codes,
}

impl std::fmt::Debug for QuantizedVectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantizedVectors")
            .field("config", &self.config)
            .field("dim", &self.dim)
            .field("points", &self.len())
            .field("in_ram", &self.codes.in_ram())
            .finish()
    }
}

impl QuantizedVectors {
    /// Trains on `source` and encodes every row (in parallel).
    pub fn build(
        config: &QuantizationConfig,
        distance: Distance,
        source: &dyn VectorRows,
        seed: u64,
    ) -> Result<QuantizedVectors> {
        let quantizer = Quantizer::train(config, source, seed)?;
        let (dim, code_len) = (source.dim(), quantizer.code_len(source.dim()));
        let mut codes = vec![0u8; source.len() * code_len];
        codes.par_chunks_mut(code_len.max(1)).enumerate().for_each_init(Vec::new, |buf, (i, out)| {
            if source.has(i as u32) {
                source.row(i as u32, buf);
                quantizer.encode(buf, out);
            }
        });
        Ok(QuantizedVectors {
            config: config.clone(),
            distance,
            dim,
            quantizer,
            code_len,
            codes: Codes::Ram(codes),
        })
    }

    /// Reassembles stored codes; `codes` must hold whole rows.
    pub fn from_parts(
        config: QuantizationConfig,
        distance: Distance,
        dim: usize,
        quantizer: Quantizer,
        codes: Codes,
    ) -> Result<QuantizedVectors> {
        let code_len = quantizer.code_len(dim);
        if code_len == 0 || !codes.bytes().len().is_multiple_of(code_len) {
            return Err(IndexError::QuantizationCorruption("quantized codes are not whole rows".into()));
        }
        Ok(QuantizedVectors { config, distance, dim, quantizer, code_len, codes })
    }

    pub fn config(&self) -> &QuantizationConfig {
        &self.config
    }

    pub fn quantizer(&self) -> &Quantizer {
        &self.quantizer
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn code_len(&self) -> usize {
        self.code_len
    }

    pub fn len(&self) -> usize {
        self.codes.bytes().len() / self.code_len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn codes(&self) -> &Codes {
        &self.codes
    }

    /// Bytes of code rows (parameters excluded).
    pub fn code_bytes(&self) -> usize {
        self.codes.bytes().len()
    }

    /// Bytes of the trained parameters.
    pub fn params_bytes(&self) -> usize {
        self.quantizer.to_bytes().len()
    }

    /// Whether results found on these codes are re-scored with the originals when the request does not
    /// say (Qdrant's default: binary yes, scalar and product no).
    pub fn default_rescore(&self) -> bool {
        matches!(self.quantizer, Quantizer::Binary(_))
    }

    fn rows(&self) -> CodeRows<'_> {
        CodeRows { bytes: self.codes.bytes(), len: self.code_len }
    }

    /// A scorer of stored codes against `query` (preprocessed: unit length for cosine).
    pub fn query_scorer<'a>(&'a self, query: &[f32]) -> Box<dyn QueryScorer + 'a> {
        let rows = self.rows();
        match &self.quantizer {
            Quantizer::Int8(p) => Box::new(Int8QueryScorer::new(*p, self.distance, query, rows)),
            Quantizer::Binary(p) => {
                let encoding = match &self.config {
                    QuantizationConfig::Binary(b) => b.binary.query_encoding.unwrap_or_default(),
                    _ => BinaryQueryEncoding::Default,
                };
                Box::new(BinaryQueryScorer::new(p, encoding, self.distance, query, rows))
            }
            Quantizer::Product(p) => Box::new(ProductQueryScorer::new(p, self.distance, query, rows)),
        }
    }
}

impl PointScorer for QuantizedVectors {
    fn num_points(&self) -> usize {
        self.len()
    }

    fn score_pair(&self, a: u32, b: u32) -> f32 {
        let rows = self.rows();
        let (a, b) = (rows.row(a), rows.row(b));
        match &self.quantizer {
            Quantizer::Int8(p) => p.score_pair(self.distance, self.dim, a, b),
            Quantizer::Binary(p) => p.score_pair(a, b),
            Quantizer::Product(p) => p.score_pair(self.distance, a, b),
        }
    }
}
