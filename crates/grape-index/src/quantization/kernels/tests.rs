//! Every kernel table this CPU can run equals the scalar reference exactly (integer arithmetic), for
//! lengths that are and are not multiples of the register width and for unaligned slices.

use proptest::prelude::*;

use super::{scalar, QuantKernels};

fn rows() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, usize)> {
    (0usize..700, 0usize..8).prop_flat_map(|(len, skip)| {
        (
            prop::collection::vec(any::<u8>(), len + skip),
            prop::collection::vec(any::<u8>(), len + skip),
            Just(skip),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn kernels_match_scalar((a, b, skip) in rows()) {
        let (a, b) = (&a[skip..], &b[skip..]);
        for k in QuantKernels::all() {
            prop_assert_eq!(k.xor_popcount(a, b), scalar::xor_popcount(a, b), "{} xor", k.name);
            prop_assert_eq!(k.popcount(a), scalar::popcount(a), "{} popcount", k.name);
            // `b`'s first bytes as a row, `a` as whole planes of it.
            let row = &b[..b.len().min(24)];
            let planes = &a[..if row.is_empty() { 0 } else { a.len() / row.len() * row.len() }.min(8 * row.len())];
            prop_assert_eq!(k.weighted_and_popcount(planes, row), scalar::weighted_and_popcount(planes, row), "{} weighted", k.name);
            let (mut got, mut want) = (vec![0u32; 40], vec![0u32; 40]);
            k.xor_popcount_rows(row, a, &mut got);
            scalar::xor_popcount_rows(row, a, &mut want);
            prop_assert_eq!(got, want, "{} rows", k.name);
            prop_assert_eq!(k.dot_u8(a, b), scalar::dot_u8(a, b), "{} dot", k.name);
            prop_assert_eq!(k.l2_u8(a, b), scalar::l2_u8(a, b), "{} l2", k.name);
            prop_assert_eq!(k.l1_u8(a, b), scalar::l1_u8(a, b), "{} l1", k.name);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The lookup-table kernel equals the reference within float rounding (it sums in another order).
    #[test]
    fn table_kernels_match_scalar(
        (k, code, table) in (1usize..=256, 0usize..150).prop_flat_map(|(k, n)| (
            Just(k),
            prop::collection::vec(any::<u8>(), n)
                .prop_map(move |c| c.into_iter().map(|x| (usize::from(x) % k) as u8).collect::<Vec<u8>>()),
            prop::collection::vec(-100.0f32..100.0, n * k),
        ))
    ) {
        let want = scalar::table_score(&table, k, &code);
        let bound: f32 = code.iter().enumerate().map(|(s, &c)| table[s * k + c as usize].abs()).sum();
        for kernels in QuantKernels::all() {
            let got = kernels.table_score(&table, k, &code);
            prop_assert!((got - want).abs() <= 1e-5 * bound + 1e-5, "{} {} vs {}", kernels.name, got, want);
        }
    }
}

#[test]
fn scalar_reference_by_hand() {
    let (a, b) = ([0b1011u8, 0xFF, 0, 0, 0, 0, 0, 0, 1], [0b0110u8, 0x0F, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(scalar::xor_popcount(&a, &b), 3 + 4);
    assert_eq!(scalar::and_popcount(&a, &b), 1 + 4 + 1);
    assert_eq!(scalar::popcount(&a), 3 + 8 + 1);
    // Planes 0b0011 and 0b0101 (levels 0..3 of 1, 2, 3, 0) against bits 0b0111: 1·1 + 2·1 + 3·1.
    assert_eq!(scalar::weighted_and_popcount(&[0b0101, 0b0110], &[0b0111]), 6);
    assert_eq!(scalar::dot_u8(&[1, 2, 255], &[3, 4, 255]), 3 + 8 + 65025);
    // Two subspaces of three entries: entries 2 and 3 + 0.
    assert_eq!(scalar::table_score(&[0.5, 1.0, 2.0, 10.0, 20.0, 30.0], 3, &[2, 0]), 12.0);
    assert_eq!(scalar::l2_u8(&[1, 10], &[4, 0]), 9 + 100);
    assert_eq!(scalar::l1_u8(&[1, 10], &[4, 0]), 3 + 10);
}
