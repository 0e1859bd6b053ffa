//! Memory placement helpers.

/// An empty vector with room for `len` elements whose memory the kernel is asked to back with
/// transparent huge pages (Linux, `madvise` mode): HNSW search reads rows at random, and with 4 KiB
/// pages nearly every row read is also a TLB miss. Small vectors and other systems get a plain `Vec`.
pub fn huge_page_vec<T>(len: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(len);
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = len * std::mem::size_of::<T>();
        if bytes >= 4 * HUGE {
            let start = v.as_ptr() as usize;
            let aligned = (start + HUGE - 1) & !(HUGE - 1);
            let end = (start + bytes) & !(HUGE - 1);
            if end > aligned {
                // SAFETY: [aligned, end) lies inside the allocation just made for `v` (its capacity is
                // `bytes`), is page aligned, and madvise(MADV_HUGEPAGE) only changes how the kernel
                // backs those pages, never their contents or validity.
                unsafe { libc::madvise(aligned as *mut libc::c_void, end - aligned, libc::MADV_HUGEPAGE) };
            }
        }
    }
    v
}
