//! Sparse vectors: `{indices, values}` pairs, scored by dot product over the shared indices.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A sparse vector as Qdrant's JSON writes it. Stored vectors are kept sorted by index (see
/// [`SparseVector::validated`]); the order a user sends does not matter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SparseVector {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseVector {
    pub fn new(indices: Vec<u32>, values: Vec<f32>) -> Self {
        SparseVector { indices, values }
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Checks the vector (`what` names it in errors) and returns it sorted by index: indices and values
    /// of the same length, finite values, no index twice.
    pub fn validated(mut self, what: &str) -> Result<SparseVector> {
        if self.indices.len() != self.values.len() {
            return Err(Error::bad_input(format!(
                "{what}: indices and values must have the same length, got {} indices and {} values",
                self.indices.len(),
                self.values.len()
            )));
        }
        if let Some(i) = self.values.iter().position(|v| !v.is_finite()) {
            return Err(Error::bad_input(format!(
                "{what}: value at position {i} is not finite ({})",
                self.values[i]
            )));
        }
        if !self.indices.windows(2).all(|w| w[0] < w[1]) {
            let mut pairs: Vec<(u32, f32)> =
                self.indices.iter().copied().zip(self.values.iter().copied()).collect();
            pairs.sort_by_key(|p| p.0);
            if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(Error::bad_input(format!("{what}: index {} is given more than once", w[0].0)));
            }
            (self.indices, self.values) = pairs.into_iter().unzip();
        }
        Ok(self)
    }

    /// Dot product with another vector sorted by index; `None` when they share no index (such a point
    /// is not a match for a sparse query, as in Qdrant).
    pub fn dot(&self, other: &SparseVector) -> Option<f32> {
        let (mut i, mut j) = (0, 0);
        let mut sum = 0.0f32;
        let mut overlap = false;
        while i < self.indices.len() && j < other.indices.len() {
            match self.indices[i].cmp(&other.indices[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    sum += self.values[i] * other.values[j];
                    overlap = true;
                    i += 1;
                    j += 1;
                }
            }
        }
        overlap.then_some(sum)
    }

    /// Dot product that counts no overlap as 0 (how multi-example scores treat sparse vectors).
    pub fn dot_or_zero(&self, other: &SparseVector) -> f32 {
        self.dot(other).unwrap_or(0.0)
    }
}

/// How stored sparse values are weighted at query time (Qdrant's `modifier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Modifier {
    #[default]
    None,
    /// Each query value is multiplied by the inverse document frequency of its index.
    Idf,
}

/// Qdrant's inverse document frequency: `ln((n - df + 0.5) / (df + 0.5) + 1)` for `n` points having
/// the vector and `df` of them containing the index.
pub fn idf(df: u64, n: u64) -> f32 {
    let (df, n) = (df as f64, n as f64);
    ((n - df + 0.5) / (df + 0.5) + 1.0).ln() as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn validation() {
        let v = SparseVector::new(vec![5, 1, 3], vec![0.5, 1.0, 2.0]).validated("v").unwrap();
        assert_eq!(v.indices, vec![1, 3, 5]);
        assert_eq!(v.values, vec![1.0, 2.0, 0.5]);
        let e = SparseVector::new(vec![1, 2], vec![1.0]).validated("v").unwrap_err();
        assert!(e.to_string().contains("same length"), "{e}");
        let e = SparseVector::new(vec![2, 1, 2], vec![1.0, 1.0, 1.0]).validated("v").unwrap_err();
        assert!(e.to_string().contains("index 2 is given more than once"), "{e}");
        let e = SparseVector::new(vec![1], vec![f32::NAN]).validated("v").unwrap_err();
        assert!(e.to_string().contains("not finite"), "{e}");
        assert!(SparseVector::default().validated("v").is_ok());
    }

    #[test]
    fn idf_matches_the_formula() {
        assert!((idf(1, 10) - ((10.0f64 - 1.0 + 0.5) / 1.5 + 1.0).ln() as f32).abs() < 1e-6);
        assert!(idf(10, 10) > 0.0);
    }

    proptest! {
        #[test]
        fn dot_equals_a_dense_dot(
            a in proptest::collection::btree_map(0u32..40, -5.0f32..5.0, 0..12),
            b in proptest::collection::btree_map(0u32..40, -5.0f32..5.0, 0..12),
        ) {
            let sa = SparseVector::new(a.keys().copied().collect(), a.values().copied().collect());
            let sb = SparseVector::new(b.keys().copied().collect(), b.values().copied().collect());
            let expected: f32 = a.iter().filter_map(|(k, v)| b.get(k).map(|w| v * w)).sum();
            let overlap = a.keys().any(|k| b.contains_key(k));
            match sa.dot(&sb) {
                Some(d) => { prop_assert!(overlap); prop_assert!((d - expected).abs() < 1e-3); }
                None => prop_assert!(!overlap),
            }
        }
    }
}
