//! Distance kernels with runtime CPU dispatch. Internal scores are "larger is better":
//! Cosine and Dot return the dot product (cosine vectors are normalised on insert), Euclid returns the
//! negated squared L2 distance and Manhattan the negated L1 distance.
//!
//! One file per instruction set (`scalar` is the reference and fallback, `avx2`, `avx512`, `neon`). The
//! CPU is probed once, on first use, into a table of function pointers; after that a call costs one
//! atomic load (the `OnceLock` check) and one indirect call. Slices of different lengths are compared
//! over the shorter one. Stored float16 and uint8 vectors are scored against a float32 query; uint8
//! elements are the integers 0..=255 as floats.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use grape_types::Distance;
use half::f16;

pub use scalar::{dot as dot_scalar, l1 as l1_scalar, l2_sq as l2_sq_scalar};

type F32Kernel = unsafe fn(&[f32], &[f32]) -> f32;
type F16Kernel = unsafe fn(&[f32], &[f16]) -> f32;
type U8Kernel = unsafe fn(&[f32], &[u8]) -> f32;

/// One instruction set's kernels. Invariant: a table is only ever built for a CPU that supports every
/// instruction its kernels use, which is what makes calling through it sound.
struct Kernels {
    name: &'static str,
    dot: F32Kernel,
    l2_sq: F32Kernel,
    l1: F32Kernel,
    dot_f16: F16Kernel,
    l2_sq_f16: F16Kernel,
    l1_f16: F16Kernel,
    dot_u8: U8Kernel,
    l2_sq_u8: U8Kernel,
    l1_u8: U8Kernel,
}

impl Kernels {
    const SCALAR: Kernels = Kernels {
        name: "scalar",
        dot: scalar::dot,
        l2_sq: scalar::l2_sq,
        l1: scalar::l1,
        dot_f16: scalar::dot_f16,
        l2_sq_f16: scalar::l2_sq_f16,
        l1_f16: scalar::l1_f16,
        dot_u8: scalar::dot_u8,
        l2_sq_u8: scalar::l2_sq_u8,
        l1_u8: scalar::l1_u8,
    };

    #[cfg(target_arch = "x86_64")]
    const AVX2: Kernels = Kernels {
        name: "avx2",
        dot: avx2::dot,
        l2_sq: avx2::l2_sq,
        l1: avx2::l1,
        dot_f16: avx2::dot_f16,
        l2_sq_f16: avx2::l2_sq_f16,
        l1_f16: avx2::l1_f16,
        dot_u8: avx2::dot_u8,
        l2_sq_u8: avx2::l2_sq_u8,
        l1_u8: avx2::l1_u8,
    };

    #[cfg(target_arch = "x86_64")]
    const AVX512: Kernels = Kernels {
        name: "avx512",
        dot: avx512::dot,
        l2_sq: avx512::l2_sq,
        l1: avx512::l1,
        dot_f16: avx512::dot_f16,
        l2_sq_f16: avx512::l2_sq_f16,
        l1_f16: avx512::l1_f16,
        dot_u8: avx512::dot_u8,
        l2_sq_u8: avx512::l2_sq_u8,
        l1_u8: avx512::l1_u8,
    };

    #[cfg(target_arch = "aarch64")]
    const NEON: Kernels = Kernels {
        name: "neon",
        dot: neon::dot,
        l2_sq: neon::l2_sq,
        l1: neon::l1,
        dot_f16: scalar::dot_f16,
        l2_sq_f16: scalar::l2_sq_f16,
        l1_f16: scalar::l1_f16,
        dot_u8: neon::dot_u8,
        l2_sq_u8: neon::l2_sq_u8,
        l1_u8: neon::l1_u8,
    };

    /// The table to use on this CPU. `GRAPE_SIMD=scalar|avx512` overrides the choice (for benchmarks and
    /// for bisecting a suspected kernel bug); a request this CPU cannot run falls back to detection.
    ///
    /// AVX-512 is opt-in: on the AMD EPYC (Zen 4) build machine it measured within noise of AVX2
    /// (384-d dot 31-32 ns vs 33-35 ns, 768-d and 1536-d no better), as Zen 4 splits 512-bit operations
    /// into two 256-bit halves and these kernels are bound by loads. Revisit on CPUs with full-width units.
    fn detect() -> Kernels {
        let request = std::env::var("GRAPE_SIMD").unwrap_or_default();
        if request == "scalar" {
            return Kernels::SCALAR;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if request == "avx512" && avx512::available() {
                return Kernels::AVX512;
            }
            if avx2::available() {
                return Kernels::AVX2;
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            return Kernels::NEON;
        }
        #[allow(unreachable_code)]
        Kernels::SCALAR
    }
}

static KERNELS: OnceLock<Kernels> = OnceLock::new();

#[inline(always)]
fn kernels() -> &'static Kernels {
    KERNELS.get_or_init(Kernels::detect)
}

/// Name of the instruction set the kernels dispatch to: "avx512", "avx2", "neon" or "scalar".
pub fn simd_level() -> &'static str {
    kernels().name
}

macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $t:ty) => {
        $(#[$doc])*
        #[inline]
        pub fn $name(a: &[f32], b: &[$t]) -> f32 {
            // SAFETY: the table was built by `Kernels::detect`, which only selects kernels whose
            // instructions this CPU supports; every kernel accepts any pair of slices.
            unsafe { (kernels().$name)(a, b) }
        }
    };
}

dispatch!(
    /// Dot product.
    dot, f32
);
dispatch!(
    /// Squared Euclidean distance.
    l2_sq, f32
);
dispatch!(
    /// Manhattan (L1) distance.
    l1, f32
);
dispatch!(
    /// Dot product of a float32 query with a stored float16 vector.
    dot_f16, f16
);
dispatch!(
    /// Squared Euclidean distance of a float32 query to a stored float16 vector.
    l2_sq_f16, f16
);
dispatch!(
    /// Manhattan distance of a float32 query to a stored float16 vector.
    l1_f16, f16
);
dispatch!(
    /// Dot product of a float32 query with a stored uint8 vector.
    dot_u8, u8
);
dispatch!(
    /// Squared Euclidean distance of a float32 query to a stored uint8 vector.
    l2_sq_u8, u8
);
dispatch!(
    /// Manhattan distance of a float32 query to a stored uint8 vector.
    l1_u8, u8
);

/// Internal score of `a` against `b` for a metric (larger is better).
#[inline]
pub fn score(metric: Distance, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Distance::Cosine | Distance::Dot => dot(a, b),
        Distance::Euclid => -l2_sq(a, b),
        Distance::Manhattan => -l1(a, b),
    }
}

/// The score function of one metric with the CPU dispatch resolved up front: for scorers that call it
/// in a loop, this saves the per-call dispatch of [`score`].
#[derive(Clone, Copy)]
pub struct MetricKernel {
    /// Invariant: taken from the table `Kernels::detect` chose for this CPU.
    kernel: F32Kernel,
    negate: bool,
}

impl MetricKernel {
    pub fn new(metric: Distance) -> Self {
        let k = kernels();
        match metric {
            Distance::Cosine | Distance::Dot => MetricKernel { kernel: k.dot, negate: false },
            Distance::Euclid => MetricKernel { kernel: k.l2_sq, negate: true },
            Distance::Manhattan => MetricKernel { kernel: k.l1, negate: true },
        }
    }

    /// Same value as [`score`] for this metric.
    #[inline]
    pub fn score(&self, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: `kernel` comes from the table built by `Kernels::detect` for this CPU (type invariant);
        // every kernel accepts any pair of slices.
        let s = unsafe { (self.kernel)(a, b) };
        if self.negate {
            -s
        } else {
            s
        }
    }
}

impl std::fmt::Debug for MetricKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricKernel").field("simd", &simd_level()).field("negate", &self.negate).finish()
    }
}

/// Internal score of a float32 query against a stored float16 vector.
#[inline]
pub fn score_f16(metric: Distance, q: &[f32], v: &[f16]) -> f32 {
    match metric {
        Distance::Cosine | Distance::Dot => dot_f16(q, v),
        Distance::Euclid => -l2_sq_f16(q, v),
        Distance::Manhattan => -l1_f16(q, v),
    }
}

/// Internal score of a float32 query against a stored uint8 vector.
#[inline]
pub fn score_u8(metric: Distance, q: &[f32], v: &[u8]) -> f32 {
    match metric {
        Distance::Cosine | Distance::Dot => dot_u8(q, v),
        Distance::Euclid => -l2_sq_u8(q, v),
        Distance::Manhattan => -l1_u8(q, v),
    }
}

/// Scales `v` to unit length in place. A zero vector is left unchanged (as Qdrant does).
pub fn normalize(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > f32::EPSILON {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Hints the CPU to start loading the first two cache lines of `data` (the hardware prefetcher follows
/// on from there). Vector storages call this from `QueryScorer::score_many` for the rows they are about
/// to score: the graph cannot see vectors, so it cannot prefetch them itself.
#[inline(always)]
pub fn prefetch<T>(data: &[T]) {
    prefetch_bytes(data.as_ptr().cast(), std::mem::size_of_val(data).min(128));
}

/// Hints the CPU to load every cache line of `data` into L1: for the row scored a couple of steps ahead.
#[inline(always)]
pub fn prefetch_all<T>(data: &[T]) {
    prefetch_bytes(data.as_ptr().cast(), std::mem::size_of_val(data));
}

/// Hints the CPU to load every cache line of `data` into L2 (`prefetcht1`). Vector storages request a
/// whole batch of rows about to be scored this way at once and move each row into L1 with
/// [`prefetch_all`] shortly before scoring it: on the AMD EPYC build machine far more lines are then in
/// flight than when L1 prefetches (bounded by the L1's few miss buffers) do all the work, and HNSW search
/// ran 1.3-1.7x faster (benches/README.md, "HNSW search: rows prefetched into L2").
#[inline(always)]
pub fn prefetch_l2<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    prefetch_lines::<{ core::arch::x86_64::_MM_HINT_T1 }>(data.as_ptr().cast(), std::mem::size_of_val(data));
    #[cfg(not(target_arch = "x86_64"))]
    prefetch_bytes(data.as_ptr().cast(), std::mem::size_of_val(data));
}

/// Prefetches the cache lines covering `len` bytes from `p` into L1.
#[inline(always)]
pub(crate) fn prefetch_bytes(p: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    prefetch_lines::<{ core::arch::x86_64::_MM_HINT_T0 }>(p, len);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// Prefetches the cache lines covering `len` bytes from `p` with the locality hint `HINT`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_lines<const HINT: i32>(p: *const u8, len: usize) {
    use core::arch::x86_64::_mm_prefetch;
    let mut at = 0;
    while at < len {
        // SAFETY: prefetching is only a hint and never faults, whatever the address; the address is
        // never dereferenced.
        unsafe { _mm_prefetch::<HINT>(p.wrapping_add(at).cast::<i8>()) };
        at += 64;
    }
    if len > 0 && (p as usize + len - 1) / 64 != (p as usize + at - 64) / 64 {
        // SAFETY: as above.
        unsafe { _mm_prefetch::<HINT>(p.wrapping_add(len - 1).cast::<i8>()) };
    }
}
