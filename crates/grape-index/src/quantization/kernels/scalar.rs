//! Reference kernels: plain loops every SIMD kernel is property-tested against, and the fallback.
//! Bit kernels read their slices as little-endian u64 words; a trailing partial word counts its bytes.

#[inline]
fn words<'a>(a: &'a [u8], b: &'a [u8]) -> impl Iterator<Item = (u64, u64)> + 'a {
    let n = a.len().min(b.len());
    a[..n].chunks(8).zip(b[..n].chunks(8)).map(|(x, y)| (word(x), word(y)))
}

#[inline]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// Number of differing bits (Hamming distance).
pub fn xor_popcount(a: &[u8], b: &[u8]) -> u32 {
    words(a, b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// Number of bits set in both.
pub fn and_popcount(a: &[u8], b: &[u8]) -> u32 {
    words(a, b).map(|(x, y)| (x & y).count_ones()).sum()
}

/// Number of bits set.
pub fn popcount(a: &[u8]) -> u32 {
    a.chunks(8).map(|x| word(x).count_ones()).sum()
}

/// Dot product of two code rows.
pub fn dot_u8(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(&x, &y)| u32::from(x) * u32::from(y)).sum()
}

/// Squared Euclidean distance of two code rows.
pub fn l2_u8(a: &[u8], b: &[u8]) -> u32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = u32::from(x.abs_diff(y));
            d * d
        })
        .sum()
}

/// Manhattan distance of two code rows.
pub fn l1_u8(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(&x, &y)| u32::from(x.abs_diff(y))).sum()
}

/// `sum_k popcount(q_k & b) << k` over the bit planes `q_k` of `q` (`q` holds whole planes of `b.len()`
/// bytes): the dot product of a row of bits with a query quantized to unsigned levels.
pub fn weighted_and_popcount(q: &[u8], b: &[u8]) -> u32 {
    if b.is_empty() {
        return 0;
    }
    q.chunks_exact(b.len()).enumerate().map(|(k, plane)| and_popcount(plane, b) << k).sum()
}

/// Hamming distance of `q` to each row of `rows` (consecutive rows of `q.len()` bytes) into `out`.
pub fn xor_popcount_rows(q: &[u8], rows: &[u8], out: &mut [u32]) {
    if q.is_empty() {
        out.fill(0);
        return;
    }
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len())) {
        *o = xor_popcount(q, row);
    }
}

/// Product-quantization lookup: the sum over the code's bytes of `table[s * k + code[s]]` (subspace
/// `s`, `k` entries per subspace).
pub fn table_score(table: &[f32], k: usize, code: &[u8]) -> f32 {
    code.iter().enumerate().map(|(s, &c)| table[s * k + usize::from(c)]).sum()
}
