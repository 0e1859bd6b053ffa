//! aarch64 NEON kernels (NEON is part of the aarch64 baseline). Each walks 16 bytes per iteration and
//! finishes with the scalar reference.

use core::arch::aarch64::*;

use super::scalar;

macro_rules! bits_kernel {
    ($name:ident, $op:ident, $tail:path) => {
        pub fn $name(a: &[u8], b: &[u8]) -> u32 {
            let n = a.len().min(b.len());
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut total = 0u32;
            let mut i = 0;
            // SAFETY: NEON is always present on aarch64; each load reads 16 bytes from i with i + 16 <= n,
            // inside both slices.
            unsafe {
                while i + 16 <= n {
                    let x = $op(vld1q_u8(pa.add(i)), vld1q_u8(pb.add(i)));
                    total += u32::from(vaddlvq_u8(vcntq_u8(x)));
                    i += 16;
                }
            }
            total + $tail(&a[i..n], &b[i..n])
        }
    };
}

bits_kernel!(xor_popcount, veorq_u8, scalar::xor_popcount);
bits_kernel!(and_popcount, vandq_u8, scalar::and_popcount);

pub fn xor_popcount_rows(q: &[u8], rows: &[u8], out: &mut [u32]) {
    if q.is_empty() {
        out.fill(0);
        return;
    }
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len())) {
        *o = xor_popcount(q, row);
    }
}

pub fn weighted_and_popcount(q: &[u8], b: &[u8]) -> u32 {
    if b.is_empty() {
        return 0;
    }
    q.chunks_exact(b.len()).enumerate().map(|(k, plane)| and_popcount(plane, b) << k).sum()
}

pub fn popcount(a: &[u8]) -> u32 {
    let mut total = 0u32;
    let mut i = 0;
    // SAFETY: NEON is always present on aarch64; each load reads 16 bytes from i with i + 16 <= len.
    unsafe {
        while i + 16 <= a.len() {
            total += u32::from(vaddlvq_u8(vcntq_u8(vld1q_u8(a.as_ptr().add(i)))));
            i += 16;
        }
    }
    total + scalar::popcount(&a[i..])
}

/// Walks 16 bytes at a time; `$step` turns the two rows' 8-byte halves into u16 lanes, which are added
/// pairwise into four u32 lanes.
macro_rules! bytes_kernel {
    ($name:ident, |$x:ident, $y:ident| $step:expr, $tail:path) => {
        pub fn $name(a: &[u8], b: &[u8]) -> u32 {
            let n = a.len().min(b.len());
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut i = 0;
            // SAFETY: NEON is always present on aarch64; each load reads 16 bytes from i with i + 16 <= n,
            // inside both slices.
            let sum = unsafe {
                let mut acc = vdupq_n_u32(0);
                while i + 16 <= n {
                    let (va, vb) = (vld1q_u8(pa.add(i)), vld1q_u8(pb.add(i)));
                    for ($x, $y) in [(vget_low_u8(va), vget_low_u8(vb)), (vget_high_u8(va), vget_high_u8(vb))]
                    {
                        acc = vpadalq_u16(acc, $step);
                    }
                    i += 16;
                }
                vaddvq_u32(acc)
            };
            sum + $tail(&a[i..n], &b[i..n])
        }
    };
}

bytes_kernel!(dot_u8, |x, y| vmull_u8(x, y), scalar::dot_u8);
bytes_kernel!(
    l2_u8,
    |x, y| {
        let d = vabd_u8(x, y);
        vmull_u8(d, d)
    },
    scalar::l2_u8
);
bytes_kernel!(l1_u8, |x, y| vmovl_u8(vabd_u8(x, y)), scalar::l1_u8);
