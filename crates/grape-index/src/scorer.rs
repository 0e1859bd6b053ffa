//! The scoring interface between vector storage (raw or quantized) and the graph.
//!
//! Scores are internal: larger is better for every metric (see `grape_types::Distance`).

/// Scores stored points against each other; used to build graphs.
pub trait PointScorer: Sync {
    /// Number of point offsets (`0..num_points`) this scorer can address.
    fn num_points(&self) -> usize;
    /// Internal score between two stored points.
    fn score_pair(&self, a: u32, b: u32) -> f32;

    /// Scores `a` against many points; implementations may override for better memory access (e.g.
    /// prefetching the rows of `points` first), as graph builds spend most of their time here.
    fn score_pair_many(&self, a: u32, points: &[u32], out: &mut [f32]) {
        for (o, &p) in out.iter_mut().zip(points) {
            *o = self.score_pair(a, p);
        }
    }
}

/// Scores stored points against one query.
pub trait QueryScorer {
    fn score(&self, point: u32) -> f32;

    /// Scores many points; implementations may override for better memory access.
    fn score_many(&self, points: &[u32], out: &mut [f32]) {
        for (o, &p) in out.iter_mut().zip(points) {
            *o = self.score(p);
        }
    }
}

/// A point offset within a segment with its internal score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredOffset {
    pub offset: u32,
    pub score: f32,
}

impl Eq for ScoredOffset {}

impl PartialOrd for ScoredOffset {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ScoredOffset {
    /// Orders by score, then by offset (smaller offset ranks higher on ties) so results are deterministic.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score.total_cmp(&other.score).then_with(|| other.offset.cmp(&self.offset))
    }
}
