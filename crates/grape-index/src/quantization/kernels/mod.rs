//! Kernels of quantized scoring with runtime CPU dispatch, in the style of `crate::distance`: one file
//! per instruction set plus `scalar`, the reference every kernel is property-tested against.
//!
//! Bit kernels (Hamming distance, popcount of an AND, weighted over a query's bit planes) score binary codes; byte kernels (dot, squared L2,
//! L1 of two u8 rows) score int8 scalar codes; the table kernel sums a product-quantization query's
//! lookup table over a code. All accept slices of any length (compared over the shorter one).

#[cfg(target_arch = "aarch64")]
mod neon;
pub mod scalar;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;

type PairKernel = unsafe fn(&[u8], &[u8]) -> u32;
type OneKernel = unsafe fn(&[u8]) -> u32;
type RowsKernel = unsafe fn(&[u8], &[u8], &mut [u32]);
type TableKernel = unsafe fn(&[f32], usize, &[u8]) -> f32;

/// One instruction set's kernels. Invariant: a table is only ever built for a CPU that supports every
/// instruction its kernels use, which is what makes calling through it sound.
pub(crate) struct QuantKernels {
    pub name: &'static str,
    xor_popcount: PairKernel,
    popcount: OneKernel,
    weighted_and_popcount: PairKernel,
    xor_popcount_rows: RowsKernel,
    dot_u8: PairKernel,
    l2_u8: PairKernel,
    l1_u8: PairKernel,
    table_score: TableKernel,
}

impl QuantKernels {
    const SCALAR: QuantKernels = QuantKernels {
        name: "scalar",
        xor_popcount: scalar::xor_popcount,
        popcount: scalar::popcount,
        weighted_and_popcount: scalar::weighted_and_popcount,
        xor_popcount_rows: scalar::xor_popcount_rows,
        dot_u8: scalar::dot_u8,
        l2_u8: scalar::l2_u8,
        l1_u8: scalar::l1_u8,
        table_score: scalar::table_score,
    };

    #[cfg(target_arch = "x86_64")]
    const X86: QuantKernels = QuantKernels {
        name: "avx2",
        xor_popcount: x86::xor_popcount,
        popcount: x86::popcount,
        weighted_and_popcount: x86::weighted_and_popcount,
        xor_popcount_rows: x86::xor_popcount_rows,
        dot_u8: x86::dot_u8,
        l2_u8: x86::l2_u8,
        l1_u8: x86::l1_u8,
        table_score: x86::table_score,
    };

    #[cfg(target_arch = "aarch64")]
    const NEON: QuantKernels = QuantKernels {
        name: "neon",
        xor_popcount: neon::xor_popcount,
        popcount: neon::popcount,
        weighted_and_popcount: neon::weighted_and_popcount,
        xor_popcount_rows: neon::xor_popcount_rows,
        dot_u8: neon::dot_u8,
        l2_u8: neon::l2_u8,
        l1_u8: neon::l1_u8,
        // NEON has no gather: the reference.
        table_score: scalar::table_score,
    };

    /// The table for this CPU; `GRAPE_SIMD=scalar` forces the reference kernels (as for `distance`).
    fn detect() -> QuantKernels {
        if std::env::var("GRAPE_SIMD").is_ok_and(|v| v == "scalar") {
            return QuantKernels::SCALAR;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if x86::available() {
                return QuantKernels::X86;
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            return QuantKernels::NEON;
        }
        #[allow(unreachable_code)]
        QuantKernels::SCALAR
    }

    /// Every table this CPU can run, the scalar one first (for tests and benchmarks).
    #[cfg(test)]
    pub(crate) fn all() -> Vec<&'static QuantKernels> {
        let mut t = vec![&QuantKernels::SCALAR];
        #[cfg(target_arch = "x86_64")]
        if x86::available() {
            t.push(&QuantKernels::X86);
        }
        #[cfg(target_arch = "aarch64")]
        t.push(&QuantKernels::NEON);
        t
    }
}

static KERNELS: OnceLock<QuantKernels> = OnceLock::new();

/// The kernel table of this CPU, chosen on first use.
#[inline(always)]
pub(crate) fn kernels() -> &'static QuantKernels {
    KERNELS.get_or_init(QuantKernels::detect)
}

macro_rules! method {
    ($(#[$doc:meta])* $name:ident($($arg:ident),*)) => {
        $(#[$doc])*
        #[inline(always)]
        pub fn $name(&self, $($arg: &[u8]),*) -> u32 {
            // SAFETY: the table was built by `QuantKernels::detect` (or listed by `all`) for this CPU,
            // which only selects kernels whose instructions it supports; every kernel accepts any slices.
            unsafe { (self.$name)($($arg),*) }
        }
    };
}

impl QuantKernels {
    method!(
        /// Hamming distance of two bit rows.
        xor_popcount(a, b)
    );
    method!(
        /// Bits set in a row.
        popcount(a)
    );
    method!(
        /// `sum_k popcount(q_k & b) << k` over the planes `q_k` of `q`, each `b.len()` bytes.
        weighted_and_popcount(q, b)
    );
    method!(
        /// Dot product of two byte rows.
        dot_u8(a, b)
    );
    method!(
        /// Squared L2 distance of two byte rows.
        l2_u8(a, b)
    );
    method!(
        /// L1 distance of two byte rows.
        l1_u8(a, b)
    );
}

impl QuantKernels {
    /// Hamming distance of `q` to each of the consecutive rows of `q.len()` bytes in `rows`, into `out`
    /// (an exact scan scores a block of rows in one call).
    #[inline(always)]
    pub fn xor_popcount_rows(&self, q: &[u8], rows: &[u8], out: &mut [u32]) {
        // SAFETY: as for the other kernels: the table matches this CPU; any slices are accepted.
        unsafe { (self.xor_popcount_rows)(q, rows, out) }
    }

    /// Product-quantization lookup: `sum_s table[s * k + code[s]]`.
    #[inline(always)]
    pub fn table_score(&self, table: &[f32], k: usize, code: &[u8]) -> f32 {
        // SAFETY: as for the other kernels: the table matches this CPU; any slices are accepted.
        unsafe { (self.table_score)(table, k, code) }
    }
}

/// Name of the instruction set the quantized kernels dispatch to.
pub fn simd_level() -> &'static str {
    kernels().name
}
