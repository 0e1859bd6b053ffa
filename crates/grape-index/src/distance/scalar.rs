//! Scalar reference kernels. Every SIMD kernel is tested against these, and they are the fallback on CPUs
//! without a supported instruction set. Slices of different lengths are compared over the shorter one.

use half::f16;

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}

pub fn dot_f16(q: &[f32], v: &[f16]) -> f32 {
    q.iter().zip(v).map(|(x, y)| x * y.to_f32()).sum()
}

pub fn l2_sq_f16(q: &[f32], v: &[f16]) -> f32 {
    q.iter().zip(v).map(|(x, y)| (x - y.to_f32()) * (x - y.to_f32())).sum()
}

pub fn l1_f16(q: &[f32], v: &[f16]) -> f32 {
    q.iter().zip(v).map(|(x, y)| (x - y.to_f32()).abs()).sum()
}

pub fn dot_u8(q: &[f32], v: &[u8]) -> f32 {
    q.iter().zip(v).map(|(x, &y)| x * f32::from(y)).sum()
}

pub fn l2_sq_u8(q: &[f32], v: &[u8]) -> f32 {
    q.iter().zip(v).map(|(x, &y)| (x - f32::from(y)) * (x - f32::from(y))).sum()
}

pub fn l1_u8(q: &[f32], v: &[u8]) -> f32 {
    q.iter().zip(v).map(|(x, &y)| (x - f32::from(y)).abs()).sum()
}
