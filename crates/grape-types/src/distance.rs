//! Distance functions as a collection setting, and Qdrant's conventions for reporting their scores.
//!
//! Internally every metric is a score where larger is better: cosine and dot are similarities, Euclid is
//! the negated squared L2 distance and Manhattan the negated L1 distance. Results are reported as Qdrant
//! does: Euclid as the L2 distance and Manhattan as the L1 distance (smaller is better).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

    /// Whether a user-facing score passes a user-facing `score_threshold`: similarities must be at
    /// least the threshold, distances at most it. Comparing in user space (not squaring the
    /// threshold into the internal space) keeps a point whose reported score equals the threshold.
    pub fn passes_threshold(self, user_score: f32, threshold: f32) -> bool {
        match self {
            Distance::Cosine | Distance::Dot => user_score >= threshold,
            Distance::Euclid | Distance::Manhattan => user_score <= threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_keep_equal_scores() {
        for d in [Distance::Cosine, Distance::Dot, Distance::Euclid, Distance::Manhattan] {
            let internal = -2.0f32;
            let user = d.postprocess(internal);
            assert!(d.passes_threshold(user, user), "{d:?}");
        }
        assert!(!Distance::Euclid.passes_threshold(1.5, 1.4));
        assert!(!Distance::Dot.passes_threshold(1.3, 1.4));
    }
}
