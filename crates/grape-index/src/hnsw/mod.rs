//! HNSW graph index (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using
//! Hierarchical Navigable Small World graphs", 2016), our own implementation.
//!
//! - `graph`: [`HnswGraph`] and its search.
//! - `build`: parallel build and incremental insert, with the paper's neighbour-selection heuristic.
//! - `search`: layer traversals shared by search and build.
//! - `links`: adjacency storage (flat level 0, sparse upper levels).
//! - `payload_links`: a second level-0 list per node, built per payload value (filterable HNSW), and
//!   the search restricted to a set of points that follows them.
//! - `visited`: pooled generation-stamped visited sets.
//! - `file`: the on-disk format (docs/format.md, "HNSW graph file").
//!
//! The graph never sees vectors: it scores through [`crate::PointScorer`] and [`crate::QueryScorer`].
//!
//! ```
//! use grape_index::hnsw::{HnswGraph, HnswParams};
//! use grape_index::testing::{clustered, DenseF32};
//! use grape_types::Distance;
//!
//! let store = DenseF32::new(8, Distance::Euclid, clustered(500, 8, 5, 0.1, 1));
//! let graph = HnswGraph::build(&store, &|_| true, &HnswParams::default());
//! let query = store.query(store.row(42));
//! let top = graph.search(&query, 3, 32, &|offset| offset != 7);
//! assert_eq!(top[0].offset, 42);
//! ```

mod build;
mod file;
mod graph;
mod links;
mod payload_links;
mod search;
mod visited;

pub use graph::HnswGraph;

/// Build parameters of an HNSW graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Neighbours per node on levels >= 1; level 0 keeps up to `2 * m`.
    pub m: usize,
    /// Beam width while building.
    pub ef_construct: usize,
    /// Build threads; 0 = all cores.
    pub max_threads: usize,
    /// Seed of the level generator. With `max_threads == 1` the graph is a function of the seed, the
    /// scorer and the inclusion set.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams { m: 16, ef_construct: 100, max_threads: 0, seed: 0 }
    }
}

impl HnswParams {
    /// Largest `m` accepted (level-0 lists of `2 * m` neighbours); larger requests are capped.
    pub const MAX_M: usize = 4096;

    /// The parameters actually used: `m` within `2..=MAX_M` (the level multiplier `1/ln(m)` needs
    /// `m >= 2`) and `ef_construct >= m`.
    pub fn effective(&self) -> HnswParams {
        let m = self.m.clamp(2, Self::MAX_M);
        HnswParams { m, ef_construct: self.ef_construct.max(m), ..*self }
    }
}
