//! x86_64 kernels: AVX2 for code rows of bytes, the POPCNT instruction for bit rows. Each finishes the
//! elements that do not fill a vector register with the scalar reference.

use core::arch::x86_64::*;

use super::scalar;

/// Whether this CPU can run the kernels of this file.
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("popcnt")
}

macro_rules! bits_kernel {
    ($name:ident, $op:tt, $tail:path) => {
        /// # Safety
        /// The CPU must support POPCNT (see [`available`]).
        #[target_feature(enable = "popcnt")]
        pub unsafe fn $name(a: &[u8], b: &[u8]) -> u32 {
            let n = a.len().min(b.len()) / 8 * 8;
            let mut total = 0u32;
            for (x, y) in a[..n].chunks_exact(8).zip(b[..n].chunks_exact(8)) {
                let (x, y) = (u64::from_le_bytes(x.try_into().unwrap_or_default()), u64::from_le_bytes(y.try_into().unwrap_or_default()));
                total += (x $op y).count_ones();
            }
            total + $tail(&a[n..], &b[n..])
        }
    };
}

bits_kernel!(xor_popcount, ^, scalar::xor_popcount);
bits_kernel!(and_popcount, &, scalar::and_popcount);

/// # Safety
/// The CPU must support POPCNT (see [`available`]).
#[target_feature(enable = "popcnt")]
pub unsafe fn xor_popcount_rows(q: &[u8], rows: &[u8], out: &mut [u32]) {
    if q.is_empty() {
        out.fill(0);
        return;
    }
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len())) {
        // SAFETY: the caller guarantees POPCNT, which is all `xor_popcount` needs.
        *o = unsafe { xor_popcount(q, row) };
    }
}

/// # Safety
/// The CPU must support POPCNT (see [`available`]).
#[target_feature(enable = "popcnt")]
pub unsafe fn weighted_and_popcount(q: &[u8], b: &[u8]) -> u32 {
    if b.is_empty() {
        return 0;
    }
    let mut total = 0;
    for (k, plane) in q.chunks_exact(b.len()).enumerate() {
        // SAFETY: the caller guarantees POPCNT, which is all `and_popcount` needs.
        total += unsafe { and_popcount(plane, b) } << k;
    }
    total
}

/// # Safety
/// The CPU must support POPCNT (see [`available`]).
#[target_feature(enable = "popcnt")]
pub unsafe fn popcount(a: &[u8]) -> u32 {
    let n = a.len() / 8 * 8;
    let whole: u32 = a[..n]
        .chunks_exact(8)
        .map(|x| u64::from_le_bytes(x.try_into().unwrap_or_default()).count_ones())
        .sum();
    whole + scalar::popcount(&a[n..])
}

#[inline]
#[target_feature(enable = "avx2")]
fn hsum_epi32(v: __m256i) -> u32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s) as u32
}

/// Loads 32 bytes at `i` from each row.
///
/// # Safety
/// Both pointers must be valid for reading 32 bytes from `i`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load_pair(pa: *const u8, pb: *const u8, i: usize) -> (__m256i, __m256i) {
    // SAFETY: the caller guarantees 32 readable bytes from `i` in both rows; the loads are unaligned.
    unsafe { (_mm256_loadu_si256(pa.add(i).cast()), _mm256_loadu_si256(pb.add(i).cast())) }
}

/// The 32 bytes of `v` widened to two registers of 16 i16 lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn halves(v: __m256i) -> [__m256i; 2] {
    [_mm256_cvtepu8_epi16(_mm256_castsi256_si128(v)), _mm256_cvtepu8_epi16(_mm256_extracti128_si256::<1>(v))]
}

#[inline]
#[target_feature(enable = "avx2")]
fn dot_block(a: __m256i, b: __m256i) -> __m256i {
    let ([a0, a1], [b0, b1]) = (halves(a), halves(b));
    _mm256_add_epi32(_mm256_madd_epi16(a0, b0), _mm256_madd_epi16(a1, b1))
}

#[inline]
#[target_feature(enable = "avx2")]
fn l2_block(a: __m256i, b: __m256i) -> __m256i {
    let ([a0, a1], [b0, b1]) = (halves(a), halves(b));
    let (d0, d1) = (_mm256_sub_epi16(a0, b0), _mm256_sub_epi16(a1, b1));
    _mm256_add_epi32(_mm256_madd_epi16(d0, d0), _mm256_madd_epi16(d1, d1))
}

/// Sums of absolute differences in four u64 lanes; each is below 2^32, so its upper half is zero and
/// the lanes add up as eight i32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn l1_block(a: __m256i, b: __m256i) -> __m256i {
    _mm256_sad_epu8(a, b)
}

/// Walks 32 bytes at a time: `$block` folds the two rows' bytes into eight i32 lanes of partial sums.
macro_rules! bytes_kernel {
    ($name:ident, $block:ident, $tail:path) => {
        /// # Safety
        /// The CPU must support AVX2 (see [`available`]).
        #[target_feature(enable = "avx2")]
        pub unsafe fn $name(a: &[u8], b: &[u8]) -> u32 {
            let n = a.len().min(b.len());
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut acc = _mm256_setzero_si256();
            let mut i = 0;
            while i + 32 <= n {
                // SAFETY: i + 32 <= n, so 32 bytes from i are inside both slices.
                let (va, vb) = unsafe { load_pair(pa, pb, i) };
                acc = _mm256_add_epi32(acc, $block(va, vb));
                i += 32;
            }
            hsum_epi32(acc) + $tail(&a[i..n], &b[i..n])
        }
    };
}

bytes_kernel!(dot_u8, dot_block, scalar::dot_u8);
bytes_kernel!(l2_u8, l2_block, scalar::l2_u8);
bytes_kernel!(l1_u8, l1_block, scalar::l1_u8);

/// Product-quantization lookup (see [`scalar::table_score`]): eight subspaces at a time, their table
/// entries gathered into one register. Sums in another order than the reference (equal within
/// rounding). A code byte is clamped to `k - 1`, and a table shorter than `code.len() * k` is handed to
/// the reference, so every gather stays inside `table`.
///
/// # Safety
/// The CPU must support AVX2 (see [`available`]).
#[target_feature(enable = "avx2")]
pub unsafe fn table_score(table: &[f32], k: usize, code: &[u8]) -> f32 {
    let n = code.len();
    if k == 0 || k > 256 || table.len() < n.saturating_mul(k) || n.saturating_mul(k) > i32::MAX as usize {
        return scalar::table_score(table, k, code);
    }
    let k32 = k as i32;
    let mut base = _mm256_setr_epi32(0, k32, 2 * k32, 3 * k32, 4 * k32, 5 * k32, 6 * k32, 7 * k32);
    let step = _mm256_set1_epi32(8 * k32);
    let top = _mm256_set1_epi32(k32 - 1);
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`, so 8 bytes are readable at `i` (unaligned 64-bit load).
        let bytes = unsafe { _mm_loadl_epi64(code.as_ptr().add(i).cast()) };
        let codes = _mm256_min_epu32(_mm256_cvtepu8_epi32(bytes), top);
        let idx = _mm256_add_epi32(base, codes);
        // SAFETY: lane j reads `table[(i + j) * k + c]` with `c <= k - 1` and `i + j < n`, so below
        // `n * k <= table.len()`; indices fit in i32 (checked above); scale 4 = size of f32.
        acc = _mm256_add_ps(acc, unsafe { _mm256_i32gather_ps::<4>(table.as_ptr(), idx) });
        base = _mm256_add_epi32(base, step);
        i += 8;
    }
    let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
    _mm_cvtss_f32(s) + scalar::table_score(&table[i * k..], k, &code[i..])
}
