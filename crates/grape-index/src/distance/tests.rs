//! Every SIMD kernel this CPU can run must equal the scalar reference within a relative epsilon, for
//! lengths that are and are not multiples of the vector width and for unaligned slices.

use half::f16;
use proptest::prelude::*;

use super::{scalar, Kernels};

/// Every table this CPU can run, the scalar one included.
fn tables() -> Vec<Kernels> {
    let mut t = vec![Kernels::SCALAR];
    #[cfg(target_arch = "x86_64")]
    {
        if super::avx2::available() {
            t.push(Kernels::AVX2);
        }
        if super::avx512::available() {
            t.push(Kernels::AVX512);
        }
    }
    #[cfg(target_arch = "aarch64")]
    t.push(Kernels::NEON);
    t
}

/// `got` is within rounding of `want`, relative to the magnitude of the summed terms (a dot product can
/// cancel to near zero, so its own value is the wrong scale).
fn close(got: f32, want: f32, magnitude: f32) -> bool {
    (got - want).abs() <= 2e-5 * magnitude + 1e-6
}

fn floats(len: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-10.0f32..10.0, len)
}

fn pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>, usize)> {
    (0usize..1100, 0usize..4)
        .prop_flat_map(|(len, skip)| (floats(len + skip), floats(len + skip), Just(skip)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn f32_kernels_match_scalar((a, b, skip) in pair()) {
        let (a, b) = (&a[skip..], &b[skip..]);
        let mag_dot = scalar::dot(&a.iter().map(|x| x.abs()).collect::<Vec<_>>(), &b.iter().map(|x| x.abs()).collect::<Vec<_>>());
        for k in tables() {
            // SAFETY: `tables` lists only tables whose instructions this CPU supports.
            let (d, l2, l1) = unsafe { ((k.dot)(a, b), (k.l2_sq)(a, b), (k.l1)(a, b)) };
            prop_assert!(close(d, scalar::dot(a, b), mag_dot), "{} dot {d} vs {}", k.name, scalar::dot(a, b));
            let want = scalar::l2_sq(a, b);
            prop_assert!(close(l2, want, want), "{} l2 {l2} vs {want}", k.name);
            let want = scalar::l1(a, b);
            prop_assert!(close(l1, want, want), "{} l1 {l1} vs {want}", k.name);
        }
    }

    #[test]
    fn f16_kernels_match_scalar((a, b, skip) in pair()) {
        let q = &a[skip..];
        let v: Vec<f16> = b[skip..].iter().map(|&x| f16::from_f32(x)).collect();
        let mag_dot: f32 = q.iter().zip(&v).map(|(x, y)| (x * y.to_f32()).abs()).sum();
        for k in tables() {
            // SAFETY: `tables` lists only tables whose instructions this CPU supports.
            let (d, l2, l1) = unsafe { ((k.dot_f16)(q, &v), (k.l2_sq_f16)(q, &v), (k.l1_f16)(q, &v)) };
            prop_assert!(close(d, scalar::dot_f16(q, &v), mag_dot), "{} dot_f16", k.name);
            let want = scalar::l2_sq_f16(q, &v);
            prop_assert!(close(l2, want, want), "{} l2_f16 {l2} vs {want}", k.name);
            let want = scalar::l1_f16(q, &v);
            prop_assert!(close(l1, want, want), "{} l1_f16 {l1} vs {want}", k.name);
        }
    }

    #[test]
    fn u8_kernels_match_scalar(
        (q, v, skip) in (0usize..1100, 0usize..4).prop_flat_map(|(len, skip)| {
            (prop::collection::vec(-300.0f32..300.0, len + skip), prop::collection::vec(any::<u8>(), len + skip), Just(skip))
        })
    ) {
        let (q, v) = (&q[skip..], &v[skip..]);
        let mag_dot: f32 = q.iter().zip(v).map(|(x, &y)| (x * f32::from(y)).abs()).sum();
        for k in tables() {
            // SAFETY: `tables` lists only tables whose instructions this CPU supports.
            let (d, l2, l1) = unsafe { ((k.dot_u8)(q, v), (k.l2_sq_u8)(q, v), (k.l1_u8)(q, v)) };
            prop_assert!(close(d, scalar::dot_u8(q, v), mag_dot), "{} dot_u8", k.name);
            let want = scalar::l2_sq_u8(q, v);
            prop_assert!(close(l2, want, want), "{} l2_u8 {l2} vs {want}", k.name);
            let want = scalar::l1_u8(q, v);
            prop_assert!(close(l1, want, want), "{} l1_u8 {l1} vs {want}", k.name);
        }
    }

    #[test]
    fn unequal_lengths_use_the_shorter(a in floats(37), b in floats(45)) {
        for k in tables() {
            // SAFETY: `tables` lists only tables whose instructions this CPU supports.
            let (d1, d2) = unsafe { ((k.dot)(&a, &b), (k.dot)(&a, &b[..37])) };
            prop_assert_eq!(d1, d2);
        }
    }
}

#[test]
fn dispatch_picks_a_table() {
    let level = super::simd_level();
    assert!(["scalar", "avx2", "avx512", "neon"].contains(&level), "{level}");
    assert_eq!(super::dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
    assert_eq!(super::l1_u8(&[1.0, 2.0], &[3, 0]), 4.0);
    assert_eq!(super::l2_sq_f16(&[1.0, 2.0], &[f16::from_f32(3.0), f16::from_f32(0.0)]), 8.0);
}
