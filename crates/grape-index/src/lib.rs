//! Grape's index layer: distance kernels (SIMD with scalar reference), dense vector storage and the HNSW
//! graph. Everything here is synchronous and knows nothing about ids, payloads or files above a segment.
//!
//! ```
//! use grape_index::distance::{score, normalize};
//! use grape_types::Distance;
//! let mut a = vec![3.0, 4.0];
//! normalize(&mut a);
//! assert!((score(Distance::Cosine, &a, &a) - 1.0).abs() < 1e-6);
//! ```

pub mod distance;
pub mod error;
pub mod geo_index;
pub mod hnsw;
pub mod mem;
pub mod payload_index;
pub mod quantization;
pub mod scorer;
pub mod testing;
pub mod text_index;

pub use error::{IndexError, Result};
pub use scorer::{PointScorer, QueryScorer, ScoredOffset};
