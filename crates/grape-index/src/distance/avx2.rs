//! x86_64 kernels for AVX2 + FMA, with F16C for float16 storage (every AVX2 CPU has F16C).
//!
//! Each kernel walks 32 elements per iteration in four independent accumulators (hiding FMA latency), then
//! 8 at a time, and finishes the last `len % 8` elements with the scalar reference.

use core::arch::x86_64::*;

use half::f16;

use super::scalar;

/// Whether this CPU can run the kernels of this file.
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// # Safety
/// `p` must be valid for reading 8 `f32`s.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_f32(p: *const f32) -> __m256 {
    // SAFETY: the caller guarantees 8 readable elements; the load is unaligned.
    unsafe { _mm256_loadu_ps(p) }
}

/// # Safety
/// `p` must be valid for reading 8 `f16`s.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_f16(p: *const f16) -> __m256 {
    // SAFETY: the caller guarantees 8 readable f16 (16 bytes); f16 is a transparent u16, so the bytes are
    // IEEE half floats as vcvtph2ps expects.
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast::<__m128i>())) }
}

/// # Safety
/// `p` must be valid for reading 8 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_u8(p: *const u8) -> __m256 {
    // SAFETY: the caller guarantees 8 readable bytes; _mm_loadl_epi64 reads exactly 8.
    unsafe { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast::<__m128i>()))) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn step_dot(acc: __m256, x: __m256, y: __m256) -> __m256 {
    _mm256_fmadd_ps(x, y, acc)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn step_l2(acc: __m256, x: __m256, y: __m256) -> __m256 {
    let d = _mm256_sub_ps(x, y);
    _mm256_fmadd_ps(d, d, acc)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn step_l1(acc: __m256, x: __m256, y: __m256) -> __m256 {
    let d = _mm256_sub_ps(x, y);
    _mm256_add_ps(acc, _mm256_andnot_ps(_mm256_set1_ps(-0.0), d))
}

macro_rules! kernel {
    ($name:ident, $t:ty, $load:ident, $step:ident, $tail:path) => {
        /// # Safety
        /// The CPU must support AVX2, FMA and F16C (see [`available`]).
        #[target_feature(enable = "avx2,fma,f16c")]
        pub unsafe fn $name(q: &[f32], v: &[$t]) -> f32 {
            let n = q.len().min(v.len());
            let (pq, pv) = (q.as_ptr(), v.as_ptr());
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            while i + 32 <= n {
                for (j, a) in acc.iter_mut().enumerate() {
                    // SAFETY: i + 8 * j + 8 <= i + 32 <= n, so 8 elements are readable in both slices.
                    let (x, y) = unsafe { (load_f32(pq.add(i + 8 * j)), $load(pv.add(i + 8 * j))) };
                    *a = $step(*a, x, y);
                }
                i += 32;
            }
            while i + 8 <= n {
                // SAFETY: i + 8 <= n, so 8 elements are readable in both slices.
                let (x, y) = unsafe { (load_f32(pq.add(i)), $load(pv.add(i))) };
                acc[0] = $step(acc[0], x, y);
                i += 8;
            }
            let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            hsum(sum) + $tail(&q[i..n], &v[i..n])
        }
    };
}

kernel!(dot, f32, load_f32, step_dot, scalar::dot);
kernel!(l2_sq, f32, load_f32, step_l2, scalar::l2_sq);
kernel!(l1, f32, load_f32, step_l1, scalar::l1);
kernel!(dot_f16, f16, load_f16, step_dot, scalar::dot_f16);
kernel!(l2_sq_f16, f16, load_f16, step_l2, scalar::l2_sq_f16);
kernel!(l1_f16, f16, load_f16, step_l1, scalar::l1_f16);
kernel!(dot_u8, u8, load_u8, step_dot, scalar::dot_u8);
kernel!(l2_sq_u8, u8, load_u8, step_l2, scalar::l2_sq_u8);
kernel!(l1_u8, u8, load_u8, step_l1, scalar::l1_u8);
