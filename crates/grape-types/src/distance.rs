//! Distance functions as a collection setting, and Qdrant's conventions for reporting their scores.
//!
//! Internally every metric is a score where larger is better: cosine and dot are similarities, Euclid is
//! the negated squared L2 distance and Manhattan the negated L1 distance. Results are reported as Qdrant
//! does: Euclid as the L2 distance and Manhattan as the L1 distance (smaller is better).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Distance {
    Cosine,
    Euclid,
    Dot,
    Manhattan,
}

impl Distance {
    /// Whether the reported value is a distance (smaller is better) rather than a similarity.
    pub fn is_distance_like(self) -> bool {
        matches!(self, Distance::Euclid | Distance::Manhattan)
    }

    /// Turns an internal score (larger is better) into the value reported to users.
    pub fn postprocess(self, internal: f32) -> f32 {
        match self {
            Distance::Cosine | Distance::Dot => internal,
            Distance::Euclid => (-internal).max(0.0).sqrt(),
            Distance::Manhattan => -internal,
        }
    }

    /// Turns a user-facing score threshold into an internal one, so that `internal >= threshold` keeps a
    /// point exactly when Qdrant would keep it.
    pub fn preprocess_threshold(self, user: f32) -> f32 {
        match self {
            Distance::Cosine | Distance::Dot => user,
            Distance::Euclid => -(user * user),
            Distance::Manhattan => -user,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_thresholds() {
        for d in [Distance::Cosine, Distance::Dot, Distance::Euclid, Distance::Manhattan] {
            let t = 2.5f32;
            let internal = d.preprocess_threshold(t);
            assert!((d.postprocess(internal) - t).abs() < 1e-6, "{d:?}");
        }
    }
}
