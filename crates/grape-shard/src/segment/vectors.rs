//! Dense vector storage of one named vector inside a segment: rows of float32, float16 or uint8
//! elements (the collection's `datatype`), in RAM or memory-mapped.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use grape_index::distance::{self, MetricKernel};
use grape_index::{PointScorer, QueryScorer};
use grape_types::{Datatype, Distance, Error, Result};
use half::f16;
use memmap2::Mmap;

use super::BitSet;
use crate::files::{self, FileHeader, HEADER_LEN};

const VERSION: u32 = 1;

/// The file magic of each element type; the element type is part of the file's identity.
fn magic(datatype: Datatype) -> &'static [u8; 8] {
    match datatype {
        Datatype::Float32 => b"GRPVEC\0\0",
        Datatype::Float16 => b"GRPVF16\0",
        Datatype::Uint8 => b"GRPVU8\0\0",
    }
}

fn elem_size(datatype: Datatype) -> usize {
    match datatype {
        Datatype::Float32 => 4,
        Datatype::Float16 => 2,
        Datatype::Uint8 => 1,
    }
}

enum Rows {
    F32(Vec<f32>),
    F16(Vec<f16>),
    U8(Vec<u8>),
    /// A whole vector file (`on_disk`); the body starts at `HEADER_LEN` and holds elements of the store's
    /// datatype. The open file serves positional reads (see [`DenseVectors::rescore`]).
    Mmap {
        map: Mmap,
        file: File,
    },
}

/// One stored row, in its element type.
#[derive(Debug, Clone, Copy)]
pub enum Row<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    U8(&'a [u8]),
}

impl Row<'_> {
    pub fn to_f32(self) -> Vec<f32> {
        match self {
            Row::F32(r) => r.to_vec(),
            Row::F16(r) => r.iter().map(|x| x.to_f32()).collect(),
            Row::U8(r) => r.iter().map(|&x| f32::from(x)).collect(),
        }
    }

    fn prefetch(self) {
        match self {
            Row::F32(r) => distance::prefetch(r),
            Row::F16(r) => distance::prefetch(r),
            Row::U8(r) => distance::prefetch(r),
        }
    }
}

/// Converts a validated uint8 component (an integer in 0..=255, checked at the API boundary).
fn to_u8(x: f32) -> u8 {
    x.round().clamp(0.0, 255.0) as u8
}

/// Row-major vectors of one dimension; offset `i` is row `i`. A point may lack this vector: its row is
/// then zeros and its bit in `absent` is set.
pub struct DenseVectors {
    dim: usize,
    distance: Distance,
    datatype: Datatype,
    kernel: MetricKernel,
    rows: Rows,
    absent: BitSet,
}

impl DenseVectors {
    pub fn new(dim: usize, distance: Distance, datatype: Datatype) -> Self {
        let rows = match datatype {
            Datatype::Float32 => Rows::F32(Vec::new()),
            Datatype::Float16 => Rows::F16(Vec::new()),
            Datatype::Uint8 => Rows::U8(Vec::new()),
        };
        Self::with_rows(dim, distance, datatype, rows)
    }

    fn with_rows(dim: usize, distance: Distance, datatype: Datatype, rows: Rows) -> Self {
        DenseVectors {
            dim,
            distance,
            datatype,
            kernel: MetricKernel::new(distance),
            rows,
            absent: BitSet::default(),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn distance(&self) -> Distance {
        self.distance
    }

    pub fn datatype(&self) -> Datatype {
        self.datatype
    }

    pub fn len(&self) -> usize {
        self.elements() / self.dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn elements(&self) -> usize {
        match &self.rows {
            Rows::F32(v) => v.len(),
            Rows::F16(v) => v.len(),
            Rows::U8(v) => v.len(),
            Rows::Mmap { map, .. } => (map.len() - HEADER_LEN) / elem_size(self.datatype),
        }
    }

    fn mapped_body(m: &Mmap) -> &[u8] {
        &m[HEADER_LEN..]
    }

    /// Row `offset`. Panics if out of range: offsets come from the segment's own id tracker.
    #[inline]
    pub fn row(&self, offset: u32) -> Row<'_> {
        let (start, dim) = (offset as usize * self.dim, self.dim);
        match &self.rows {
            Rows::F32(v) => Row::F32(&v[start..start + dim]),
            Rows::F16(v) => Row::F16(&v[start..start + dim]),
            Rows::U8(v) => Row::U8(&v[start..start + dim]),
            Rows::Mmap { map, .. } => {
                let body = Self::mapped_body(map);
                let size = elem_size(self.datatype);
                let bytes = &body[start * size..(start + dim) * size];
                // SAFETY: the body starts at a 64-byte aligned offset of a page-aligned mapping, so every
                // row of elements of `size` bytes is aligned for its type; its length was checked to be a
                // whole number of rows at open; every bit pattern is a valid f32, f16 or u8.
                unsafe {
                    match self.datatype {
                        Datatype::Float32 => {
                            Row::F32(std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), dim))
                        }
                        Datatype::Float16 => {
                            Row::F16(std::slice::from_raw_parts(bytes.as_ptr().cast::<f16>(), dim))
                        }
                        Datatype::Uint8 => Row::U8(bytes),
                    }
                }
            }
        }
    }

    /// All rows as one float32 slice, when stored as float32 (the fast path of the scorers).
    #[inline]
    fn f32_data(&self) -> Option<&[f32]> {
        match &self.rows {
            Rows::F32(v) => Some(v),
            Rows::Mmap { map, .. } if self.datatype == Datatype::Float32 => {
                let body = Self::mapped_body(map);
                // SAFETY: as in `row`: 64-byte aligned body, length checked at open to be whole f32 rows,
                // every bit pattern a valid f32.
                Some(unsafe { std::slice::from_raw_parts(body.as_ptr().cast::<f32>(), body.len() / 4) })
            }
            _ => None,
        }
    }

    /// Row `offset` as float32 (borrowed when stored as float32).
    pub fn get_f32(&self, offset: u32) -> Cow<'_, [f32]> {
        match self.row(offset) {
            Row::F32(r) => Cow::Borrowed(r),
            other => Cow::Owned(other.to_f32()),
        }
    }

    /// Whether the point at `offset` has this vector.
    #[inline]
    pub fn has(&self, offset: u32) -> bool {
        !self.absent.get(offset)
    }

    /// Offsets without this vector.
    pub fn absent(&self) -> &BitSet {
        &self.absent
    }

    /// Marks the rows without a vector (when opening a segment).
    pub fn set_absent(&mut self, absent: BitSet) {
        self.absent = absent;
    }

    /// Appends `v`, or a zero row marked absent (RAM storage only).
    pub fn push_opt(&mut self, v: Option<&[f32]>) -> Result<u32> {
        match v {
            Some(v) => self.push(v),
            None => {
                let offset = self.push(&vec![0.0; self.dim])?;
                self.absent.set(offset);
                Ok(offset)
            }
        }
    }

    /// Replaces row `offset` with `v`, or with a zero row marked absent (RAM storage only).
    pub fn set_opt(&mut self, offset: u32, v: Option<&[f32]>) -> Result<()> {
        match v {
            Some(v) => {
                self.set(offset, v)?;
                self.absent.clear(offset);
            }
            None => {
                self.set(offset, &vec![0.0; self.dim])?;
                self.absent.set(offset);
            }
        }
        Ok(())
    }

    /// Appends a row (RAM storage only), converting it to the element type.
    pub fn push(&mut self, v: &[f32]) -> Result<u32> {
        debug_assert_eq!(v.len(), self.dim);
        let offset = self.len() as u32;
        match &mut self.rows {
            Rows::F32(data) => data.extend_from_slice(v),
            Rows::F16(data) => data.extend(v.iter().map(|&x| f16::from_f32(x))),
            Rows::U8(data) => data.extend(v.iter().map(|&x| to_u8(x))),
            Rows::Mmap { .. } => return Err(Error::Internal("push into a read-only vector storage".into())),
        }
        Ok(offset)
    }

    /// Replaces row `offset` (RAM storage only).
    pub fn set(&mut self, offset: u32, v: &[f32]) -> Result<()> {
        let range = offset as usize * self.dim..(offset as usize + 1) * self.dim;
        match &mut self.rows {
            Rows::F32(data) => data[range].copy_from_slice(v),
            Rows::F16(data) => data[range].iter_mut().zip(v).for_each(|(d, &x)| *d = f16::from_f32(x)),
            Rows::U8(data) => data[range].iter_mut().zip(v).for_each(|(d, &x)| *d = to_u8(x)),
            Rows::Mmap { .. } => return Err(Error::Internal("write into a read-only vector storage".into())),
        }
        Ok(())
    }

    /// Whether the rows are memory-mapped from the segment file (`on_disk`).
    pub fn is_mapped(&self) -> bool {
        matches!(self.rows, Rows::Mmap { .. })
    }

    pub fn ram_bytes(&self) -> usize {
        match &self.rows {
            Rows::F32(v) => v.capacity() * 4,
            Rows::F16(v) => v.capacity() * 2,
            Rows::U8(v) => v.capacity(),
            Rows::Mmap { .. } => 0,
        }
    }

    /// Bytes of stored elements (Qdrant's size thresholds count these).
    pub fn data_bytes(&self) -> usize {
        self.elements() * elem_size(self.datatype)
    }

    /// Writes rows `offsets` (in that order) as a vector file.
    pub fn write_rows(&self, path: &Path, offsets: impl Iterator<Item = u32>) -> Result<()> {
        write_file(path, self.datatype, offsets.map(|o| self.row(o)))
    }

    /// Opens a vector file: into RAM (verifying the checksum) or memory-mapped (`on_disk`).
    pub fn open(
        path: &Path,
        dim: usize,
        distance: Distance,
        datatype: Datatype,
        on_disk: bool,
    ) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        // SAFETY: segment files are immutable once written and referenced by the manifest; Grape never
        // modifies or truncates them while mapped (they are deleted only after every reader is gone).
        let map =
            unsafe { Mmap::map(&file) }.map_err(|e| Error::io(format!("mmap {}", path.display()), e))?;
        let header = FileHeader::decode(&map, path, magic(datatype), VERSION)?;
        let body = &map[HEADER_LEN..];
        if body.len() as u64 != header.body_len || body.len() % (elem_size(datatype) * dim.max(1)) != 0 {
            return Err(Error::Corruption(format!(
                "{}: body length does not match the dimension",
                path.display()
            )));
        }
        let rows = if on_disk {
            Rows::Mmap { map, file }
        } else {
            files::verify_body(body, &header, path)?;
            match datatype {
                Datatype::Float32 => {
                    let mut rows = grape_index::mem::huge_page_vec(body.len() / 4);
                    rows.extend(body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
                    Rows::F32(rows)
                }
                Datatype::Float16 => {
                    Rows::F16(body.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]])).collect())
                }
                Datatype::Uint8 => Rows::U8(body.to_vec()),
            }
        };
        Ok(Self::with_rows(dim, distance, datatype, rows))
    }

    /// Scores `points` against `query` (preprocessed) for re-scoring quantized candidates. Rows kept in
    /// RAM are scored in place. Memory-mapped rows (`on_disk`) are read with positional reads into a
    /// buffer instead of through the mapping: a mapped page touched by a search stays in the process's
    /// resident set, so re-scoring through the mapping would let the resident memory of a collection
    /// whose originals are on disk and whose codes are in RAM grow towards the whole vector file under
    /// load. Read through the page cache, the originals stay out of the resident set and the process is
    /// bounded by codes + graph (docs/format.md, "Vector files"). A failed read falls back to the mapping.
    pub fn rescore(&self, query: &[f32], points: &[u32], out: &mut [f32]) {
        let Rows::Mmap { file, .. } = &self.rows else {
            return self.query_scorer(query).score_many(points, out);
        };
        let size = elem_size(self.datatype);
        let row_bytes = self.dim * size;
        RESCORE_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            // f32 words, so a float32 row read into it is aligned for its type.
            buf.resize(row_bytes.div_ceil(4), 0.0);
            for (o, &p) in out.iter_mut().zip(points) {
                let bytes = &mut bytemuck_bytes(&mut buf)[..row_bytes];
                let at = (HEADER_LEN + p as usize * row_bytes) as u64;
                *o = match read_at(file, bytes, at) {
                    Ok(()) => {
                        let row = match self.datatype {
                            Datatype::Float32 => Row::F32(&buf[..self.dim]),
                            Datatype::Float16 => Row::F16(bytemuck_f16(bytes)),
                            Datatype::Uint8 => Row::U8(bytes),
                        };
                        self.score_row(query, row)
                    }
                    Err(_) => self.score_row(query, self.row(p)),
                };
            }
        });
    }

    /// A scorer of stored rows against `query` (already preprocessed: unit length for cosine).
    pub fn query_scorer<'a>(&'a self, query: &'a [f32]) -> DenseQueryScorer<'a> {
        DenseQueryScorer { store: self, query }
    }

    /// Internal score of a float32 `query` (unit length for cosine) against a stored row.
    #[inline]
    fn score_row(&self, query: &[f32], row: Row<'_>) -> f32 {
        match row {
            Row::F32(r) => self.kernel.score(query, r),
            Row::F16(r) => distance::score_f16(self.distance, query, r),
            Row::U8(r) => {
                let s = distance::score_u8(self.distance, query, r);
                if self.distance == Distance::Cosine {
                    // uint8 rows cannot be stored normalised, so cosine divides by their norm here.
                    let norm = (r.iter().map(|&x| u64::from(x) * u64::from(x)).sum::<u64>() as f32).sqrt();
                    if norm > 0.0 {
                        s / norm
                    } else {
                        0.0
                    }
                } else {
                    s
                }
            }
        }
    }

    /// Row `a` as a query: float32 rows are used as they are, others are decoded (and, for uint8 cosine,
    /// normalised) into `buf`.
    fn with_row_as_query<R>(&self, a: u32, f: impl FnOnce(&[f32]) -> R) -> R {
        match self.row(a) {
            Row::F32(r) => f(r),
            other => SCRATCH.with(|buf| {
                let mut buf = buf.borrow_mut();
                buf.clear();
                buf.extend(other.to_f32());
                if self.distance == Distance::Cosine && self.datatype == Datatype::Uint8 {
                    distance::normalize(&mut buf);
                }
                f(&buf)
            }),
        }
    }
}

/// The bytes of an f32 buffer (rows are read into it).
fn bytemuck_bytes(buf: &mut [f32]) -> &mut [u8] {
    // SAFETY: any byte pattern is a valid f32 and u8 has alignment 1; the length is the buffer's size.
    unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), buf.len() * 4) }
}

/// A float16 row read into an f32-aligned buffer.
fn bytemuck_f16(bytes: &[u8]) -> &[f16] {
    // SAFETY: the bytes start at an f32-aligned address (hence 2-aligned), `len / 2` halves fit in them
    // and every bit pattern is a valid f16. As with mapped rows (`row`), the file's little-endian order
    // is taken as the memory order.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f16>(), bytes.len() / 2) }
}

/// Fills `buf` from `file` at byte `at`.
#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, at)
}

/// Positional reads are used on Unix only; elsewhere re-scoring reads through the mapping.
#[cfg(not(unix))]
fn read_at(_file: &File, _buf: &mut [u8], _at: u64) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

thread_local! {
    /// A row read for re-scoring (`DenseVectors::rescore`).
    static RESCORE_BUF: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// Decoded row for pair scoring of float16 and uint8 storages.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Writes rows into a vector file: checked header, then little-endian elements. One pass: the header
/// is written last, once the checksum is known.
pub fn write_file<'a>(path: &Path, datatype: Datatype, rows: impl Iterator<Item = Row<'a>>) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let err = |e| Error::io(format!("write {}", path.display()), e);
    let tmp = path.with_extension("tmp");
    let mut hasher = crc32fast::Hasher::new();
    let mut len = 0u64;
    {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(err)?);
        w.write_all(&[0u8; HEADER_LEN]).map_err(err)?;
        for row in rows {
            let bytes = row_bytes(row);
            hasher.update(&bytes);
            w.write_all(&bytes).map_err(err)?;
            len += bytes.len() as u64;
        }
        let mut f = w.into_inner().map_err(|e| err(e.into_error()))?;
        let header = FileHeader {
            magic: *magic(datatype),
            version: VERSION,
            body_len: len,
            body_crc: hasher.finalize(),
        };
        f.seek(SeekFrom::Start(0)).map_err(err)?;
        f.write_all(&header.encode()).map_err(err)?;
        f.sync_data().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)?;
    Ok(())
}

fn row_bytes(row: Row<'_>) -> Cow<'_, [u8]> {
    match row {
        Row::F32(r) => f32_bytes(r),
        Row::F16(r) => Cow::Owned(r.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Row::U8(r) => Cow::Borrowed(r),
    }
}

/// Little-endian bytes of a row, borrowed on little-endian targets.
fn f32_bytes(row: &[f32]) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: f32 has no padding and any byte view of it is valid; u8 has alignment 1; the length is
        // the row's byte size. On little-endian targets the in-memory bytes are the file's byte order.
        std::borrow::Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(row.as_ptr().cast::<u8>(), row.len() * 4)
        })
    }
    #[cfg(not(target_endian = "little"))]
    {
        std::borrow::Cow::Owned(row.iter().flat_map(|x| x.to_le_bytes()).collect())
    }
}

impl PointScorer for DenseVectors {
    fn num_points(&self) -> usize {
        self.len()
    }

    #[inline]
    fn score_pair(&self, a: u32, b: u32) -> f32 {
        self.with_row_as_query(a, |q| self.score_row(q, self.row(b)))
    }

    fn score_pair_many(&self, a: u32, points: &[u32], out: &mut [f32]) {
        if let Some(data) = self.f32_data() {
            let dim = self.dim;
            let row = |p: u32| &data[p as usize * dim..(p as usize + 1) * dim];
            score_rows_f32(&self.kernel, row(a), points, out, row);
            return;
        }
        // Start every row's load before scoring the first: the graph cannot prefetch vectors itself.
        for &p in points {
            self.row(p).prefetch();
        }
        self.with_row_as_query(a, |q| {
            for (o, &p) in out.iter_mut().zip(points) {
                *o = self.score_row(q, self.row(p));
            }
        });
    }
}

/// Scores float32 rows against `query`. The graph cannot prefetch vectors itself, so this does: every
/// row starts loading into L2 at once, and each is pulled into L1 about `AHEAD_BYTES` before it is
/// scored, so the kernel rarely waits on memory.
#[inline]
fn score_rows_f32<'a>(
    kernel: &MetricKernel,
    query: &[f32],
    points: &[u32],
    out: &mut [f32],
    row: impl Fn(u32) -> &'a [f32],
) {
    for &p in points {
        distance::prefetch_l2(row(p));
    }
    let ahead = AHEAD_BYTES.div_ceil(std::mem::size_of_val(query).max(1));
    for (i, (o, &p)) in out.iter_mut().zip(points).enumerate() {
        if let Some(&next) = points.get(i + ahead) {
            distance::prefetch_all(row(next));
        }
        *o = kernel.score(query, row(p));
    }
}

/// How far ahead (in bytes of rows) `score_rows_f32` moves rows into L1: two 384-d rows, four 128-d
/// ones (1, 2 and 4 rows measured on 384-d, 3 to 8 on 128-d; benches/README.md).
const AHEAD_BYTES: usize = 2048;

pub struct DenseQueryScorer<'a> {
    store: &'a DenseVectors,
    query: &'a [f32],
}

impl QueryScorer for DenseQueryScorer<'_> {
    #[inline]
    fn score(&self, point: u32) -> f32 {
        self.store.score_row(self.query, self.store.row(point))
    }

    fn score_many(&self, points: &[u32], out: &mut [f32]) {
        if let Some(data) = self.store.f32_data() {
            let dim = self.store.dim;
            let row = |p: u32| &data[p as usize * dim..(p as usize + 1) * dim];
            score_rows_f32(&self.store.kernel, self.query, points, out, row);
            return;
        }
        for &p in points {
            self.store.row(p).prefetch();
        }
        for (o, &p) in out.iter_mut().zip(points) {
            *o = self.score(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Re-scoring an on-disk store gives the scores of the same rows in RAM, for every element type.
    #[test]
    fn rescore_of_mapped_rows_equals_ram_scores() {
        let dir = tempfile::tempdir().unwrap();
        let dim = 37;
        for datatype in [Datatype::Float32, Datatype::Float16, Datatype::Uint8] {
            for distance in [Distance::Cosine, Distance::Dot, Distance::Euclid, Distance::Manhattan] {
                let mut v = DenseVectors::new(dim, distance, datatype);
                for i in 0..50u32 {
                    let row: Vec<f32> = (0..dim).map(|j| ((i as usize * 7 + j * 3) % 11) as f32).collect();
                    v.push(&row).unwrap();
                }
                let p = dir.path().join(format!("{datatype:?}-{distance:?}.bin"));
                v.write_rows(&p, 0..50).unwrap();
                let ram = DenseVectors::open(&p, dim, distance, datatype, false).unwrap();
                let disk = DenseVectors::open(&p, dim, distance, datatype, true).unwrap();
                let query: Vec<f32> = (0..dim).map(|j| (j % 5) as f32 * 0.5 - 1.0).collect();
                let points: Vec<u32> = vec![49, 0, 17, 17, 3, 42];
                let (mut a, mut b) = (vec![0f32; points.len()], vec![0f32; points.len()]);
                ram.rescore(&query, &points, &mut a);
                disk.rescore(&query, &points, &mut b);
                assert_eq!(a, b, "{datatype:?} {distance:?}");
                let mut c = vec![0f32; points.len()];
                ram.query_scorer(&query).score_many(&points, &mut c);
                assert_eq!(a, c, "{datatype:?} {distance:?}");
            }
        }
    }

    /// Re-scoring reads on-disk rows without touching the mapping, so they do not become part of the
    /// process's resident memory (the mapping's `Rss` in /proc/self/smaps stays near the header's page).
    #[cfg(target_os = "linux")]
    #[test]
    fn rescore_of_mapped_rows_leaves_the_mapping_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let (dim, n) = (256, 4096u32);
        let mut v = DenseVectors::new(dim, Distance::Dot, Datatype::Float32);
        for i in 0..n {
            v.push(&vec![i as f32 / n as f32; dim]).unwrap();
        }
        let p = dir.path().join("mapped-rows.bin");
        v.write_rows(&p, 0..n).unwrap();
        let disk = DenseVectors::open(&p, dim, Distance::Dot, Datatype::Float32, true).unwrap();
        let mapping_rss_kb = || -> u64 {
            let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
            let mut lines = smaps.lines().skip_while(|l| !l.ends_with("mapped-rows.bin"));
            lines.next().expect("the vector file is mapped");
            let rss = lines.find(|l| l.starts_with("Rss:")).unwrap();
            rss.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        // Opening read the header through the mapping; the kernel may have mapped more with it (fault
        // around, large page-cache folios): that is the baseline.
        let opened = mapping_rss_kb();
        let points: Vec<u32> = (0..n).collect();
        let mut out = vec![0f32; points.len()];
        disk.rescore(&vec![1.0; dim], &points, &mut out);
        assert!((out[n as usize - 1] - (n - 1) as f32 / n as f32 * dim as f32).abs() < 1e-3);
        assert!(
            mapping_rss_kb() <= opened,
            "re-scoring touched the mapping: {} kB resident",
            mapping_rss_kb()
        );
        // Scoring through the mapping (as graph traversal over on-disk originals does) makes it resident
        // (4 MiB of rows): the check above can fail.
        disk.query_scorer(&vec![1.0; dim]).score_many(&points, &mut out);
        assert!(mapping_rss_kb() >= opened + 2048, "{} kB after {opened} kB", mapping_rss_kb());
    }

    #[test]
    fn file_roundtrip_ram_and_mmap() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = DenseVectors::new(3, Distance::Dot, Datatype::Float32);
        for i in 0..10 {
            v.push(&[i as f32, 1.0, -2.5]).unwrap();
        }
        let p = dir.path().join("v.bin");
        v.write_rows(&p, (0..10).rev()).unwrap();
        for on_disk in [false, true] {
            let r = DenseVectors::open(&p, 3, Distance::Dot, Datatype::Float32, on_disk).unwrap();
            assert_eq!(r.len(), 10);
            assert_eq!(&*r.get_f32(0), &[9.0, 1.0, -2.5]);
            assert_eq!(&*r.get_f32(9), &[0.0, 1.0, -2.5]);
        }
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[HEADER_LEN + 5] ^= 0x40;
        std::fs::write(&p, bytes).unwrap();
        assert!(DenseVectors::open(&p, 3, Distance::Dot, Datatype::Float32, false).is_err());
    }
}
