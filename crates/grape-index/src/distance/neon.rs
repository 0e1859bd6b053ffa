//! aarch64 NEON kernels. NEON is part of the aarch64 baseline, so these need no runtime detection.
//!
//! float32 and uint8 storage only: float16 storage uses the scalar kernels on aarch64 (the half-float
//! NEON intrinsics are not stable in Rust). Each kernel walks 16 (f32) or 8 (u8) elements per iteration and
//! finishes with the scalar reference.

use core::arch::aarch64::*;

use super::scalar;

macro_rules! kernel_f32 {
    ($name:ident, |$a:ident, $x:ident, $y:ident| $step:expr, $tail:path) => {
        pub fn $name(q: &[f32], v: &[f32]) -> f32 {
            let n = q.len().min(v.len());
            let (pq, pv) = (q.as_ptr(), v.as_ptr());
            let mut i = 0;
            let mut lanes = [0f32; 4];
            // SAFETY: NEON is always present on aarch64. Every load reads 4 floats starting at an index
            // `k` with k + 4 <= n, inside both slices; the store writes 4 floats into `lanes`.
            unsafe {
                let mut acc = [vdupq_n_f32(0.0); 4];
                while i + 16 <= n {
                    for (j, acc_j) in acc.iter_mut().enumerate() {
                        let ($a, $x, $y) =
                            (*acc_j, vld1q_f32(pq.add(i + 4 * j)), vld1q_f32(pv.add(i + 4 * j)));
                        *acc_j = $step;
                    }
                    i += 16;
                }
                while i + 4 <= n {
                    let ($a, $x, $y) = (acc[0], vld1q_f32(pq.add(i)), vld1q_f32(pv.add(i)));
                    acc[0] = $step;
                    i += 4;
                }
                let sum = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
                vst1q_f32(lanes.as_mut_ptr(), sum);
            }
            lanes.iter().sum::<f32>() + $tail(&q[i..n], &v[i..n])
        }
    };
}

macro_rules! kernel_u8 {
    ($name:ident, |$a:ident, $x:ident, $y:ident| $step:expr, $tail:path) => {
        pub fn $name(q: &[f32], v: &[u8]) -> f32 {
            let n = q.len().min(v.len());
            let (pq, pv) = (q.as_ptr(), v.as_ptr());
            let mut i = 0;
            let mut lanes = [0f32; 4];
            // SAFETY: NEON is always present on aarch64. Each iteration reads 8 bytes of `v` and 8 floats
            // of `q` starting at i with i + 8 <= n, inside both slices; the store writes 4 floats into `lanes`.
            unsafe {
                let mut acc = [vdupq_n_f32(0.0); 2];
                while i + 8 <= n {
                    let wide = vmovl_u8(vld1_u8(pv.add(i)));
                    let lo = vcvtq_f32_u32(vmovl_u16(vget_low_u16(wide)));
                    let hi = vcvtq_f32_u32(vmovl_u16(vget_high_u16(wide)));
                    let ($a, $x, $y) = (acc[0], vld1q_f32(pq.add(i)), lo);
                    acc[0] = $step;
                    let ($a, $x, $y) = (acc[1], vld1q_f32(pq.add(i + 4)), hi);
                    acc[1] = $step;
                    i += 8;
                }
                vst1q_f32(lanes.as_mut_ptr(), vaddq_f32(acc[0], acc[1]));
            }
            lanes.iter().sum::<f32>() + $tail(&q[i..n], &v[i..n])
        }
    };
}

kernel_f32!(dot, |a, x, y| vfmaq_f32(a, x, y), scalar::dot);
kernel_f32!(
    l2_sq,
    |a, x, y| {
        let d = vsubq_f32(x, y);
        vfmaq_f32(a, d, d)
    },
    scalar::l2_sq
);
kernel_f32!(l1, |a, x, y| vaddq_f32(a, vabsq_f32(vsubq_f32(x, y))), scalar::l1);
kernel_u8!(dot_u8, |a, x, y| vfmaq_f32(a, x, y), scalar::dot_u8);
kernel_u8!(
    l2_sq_u8,
    |a, x, y| {
        let d = vsubq_f32(x, y);
        vfmaq_f32(a, d, d)
    },
    scalar::l2_sq_u8
);
kernel_u8!(l1_u8, |a, x, y| vaddq_f32(a, vabsq_f32(vsubq_f32(x, y))), scalar::l1_u8);
