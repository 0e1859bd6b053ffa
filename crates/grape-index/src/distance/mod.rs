//! Distance kernels with runtime CPU dispatch. Internal scores are "larger is better":
//! Cosine and Dot return the dot product (cosine vectors are normalised on insert), Euclid returns the
//! negated squared L2 distance and Manhattan the negated L1 distance.

mod scalar;

use grape_types::Distance;

pub use scalar::{dot as dot_scalar, l1 as l1_scalar, l2_sq as l2_sq_scalar};

/// Dot product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    scalar::dot(a, b)
}

/// Squared Euclidean distance.
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    scalar::l2_sq(a, b)
}

/// Manhattan (L1) distance.
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    scalar::l1(a, b)
}

/// Internal score of `a` against `b` for a metric (larger is better).
#[inline]
pub fn score(metric: Distance, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Distance::Cosine | Distance::Dot => dot(a, b),
        Distance::Euclid => -l2_sq(a, b),
        Distance::Manhattan => -l1(a, b),
    }
}

/// Scales `v` to unit length in place. A zero vector is left unchanged (as Qdrant does).
pub fn normalize(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > f32::EPSILON {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}
