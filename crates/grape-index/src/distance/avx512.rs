//! x86_64 kernels for AVX-512 (F, plus BW/VL for the masked loads of 16-bit and 8-bit elements).
//!
//! Each kernel walks 64 elements per iteration in four accumulators, then 16 at a time, and handles the
//! last `len % 16` elements with one masked load (masked-off lanes read as zero and add nothing), so there
//! is no scalar tail. Not selected by default: on the Zen 4 build machine it measured no faster than AVX2
//! (figures in `Kernels::detect`, `mod.rs`); `GRAPE_SIMD=avx512` selects it, and the property tests always
//! check it where the CPU has it.

use core::arch::x86_64::*;

use half::f16;

/// Whether this CPU can run the kernels of this file.
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
}

/// # Safety
/// The lanes of `p` selected by `m` must be readable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn load_f32(p: *const f32, m: __mmask16) -> __m512 {
    // SAFETY: the caller guarantees the selected lanes are readable; masked-off lanes are not accessed.
    unsafe { _mm512_maskz_loadu_ps(m, p) }
}

/// # Safety
/// The lanes of `p` selected by `m` must be readable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn load_f16(p: *const f16, m: __mmask16) -> __m512 {
    // SAFETY: as for `load_f32`; f16 is a transparent u16 holding IEEE half bits, as vcvtph2ps expects.
    unsafe { _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p.cast::<i16>())) }
}

/// # Safety
/// The lanes of `p` selected by `m` must be readable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn load_u8(p: *const u8, m: __mmask16) -> __m512 {
    // SAFETY: as for `load_f32`, one byte per lane.
    unsafe { _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p.cast::<i8>()))) }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn step_dot(acc: __m512, x: __m512, y: __m512) -> __m512 {
    _mm512_fmadd_ps(x, y, acc)
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn step_l2(acc: __m512, x: __m512, y: __m512) -> __m512 {
    let d = _mm512_sub_ps(x, y);
    _mm512_fmadd_ps(d, d, acc)
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn step_l1(acc: __m512, x: __m512, y: __m512) -> __m512 {
    _mm512_add_ps(acc, _mm512_abs_ps(_mm512_sub_ps(x, y)))
}

const ALL: __mmask16 = 0xffff;

macro_rules! kernel {
    ($name:ident, $t:ty, $load:ident, $step:ident) => {
        /// # Safety
        /// The CPU must support AVX-512 F, BW and VL (see [`available`]).
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        pub unsafe fn $name(q: &[f32], v: &[$t]) -> f32 {
            let n = q.len().min(v.len());
            let (pq, pv) = (q.as_ptr(), v.as_ptr());
            let mut acc = [_mm512_setzero_ps(); 4];
            let mut i = 0;
            while i + 64 <= n {
                for (j, a) in acc.iter_mut().enumerate() {
                    let k = i + 16 * j;
                    // SAFETY: k + 16 <= i + 64 <= n: all 16 lanes are readable in both slices.
                    let (x, y) = unsafe { (load_f32(pq.add(k), ALL), $load(pv.add(k), ALL)) };
                    *a = $step(*a, x, y);
                }
                i += 64;
            }
            while i + 16 <= n {
                // SAFETY: i + 16 <= n: all 16 lanes are readable in both slices.
                let (x, y) = unsafe { (load_f32(pq.add(i), ALL), $load(pv.add(i), ALL)) };
                acc[0] = $step(acc[0], x, y);
                i += 16;
            }
            if i < n {
                let m: __mmask16 = (1u16 << (n - i)) - 1;
                // SAFETY: the mask selects lanes i..n, which are in bounds of both slices.
                let (x, y) = unsafe { (load_f32(pq.add(i), m), $load(pv.add(i), m)) };
                acc[1] = $step(acc[1], x, y);
            }
            let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
            _mm512_reduce_add_ps(sum)
        }
    };
}

kernel!(dot, f32, load_f32, step_dot);
kernel!(l2_sq, f32, load_f32, step_l2);
kernel!(l1, f32, load_f32, step_l1);
kernel!(dot_f16, f16, load_f16, step_dot);
kernel!(l2_sq_f16, f16, load_f16, step_l2);
kernel!(l1_f16, f16, load_f16, step_l1);
kernel!(dot_u8, u8, load_u8, step_dot);
kernel!(l2_sq_u8, u8, load_u8, step_l2);
kernel!(l1_u8, u8, load_u8, step_l1);
