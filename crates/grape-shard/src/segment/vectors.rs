//! Dense vector storage of one named vector inside a segment: float32 rows in RAM or memory-mapped.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use grape_index::distance;
use grape_index::{PointScorer, QueryScorer};
use grape_types::{Distance, Error, Result};
use memmap2::Mmap;

use crate::files::{self, FileHeader, HEADER_LEN};

const MAGIC: &[u8; 8] = b"GRPVEC\0\0";
const VERSION: u32 = 1;

enum Rows {
    Ram(Vec<f32>),
    Mmap(Mmap),
}

/// Row-major float32 vectors of one dimension; offset `i` is row `i`.
pub struct DenseVectors {
    dim: usize,
    distance: Distance,
    rows: Rows,
}

impl DenseVectors {
    pub fn new(dim: usize, distance: Distance) -> Self {
        DenseVectors { dim, distance, rows: Rows::Ram(Vec::new()) }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn distance(&self) -> Distance {
        self.distance
    }

    pub fn len(&self) -> usize {
        self.data().len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn data(&self) -> &[f32] {
        match &self.rows {
            Rows::Ram(v) => v,
            Rows::Mmap(m) => {
                let body = &m[HEADER_LEN..];
                // SAFETY: the body starts at a 64-byte aligned file offset of a page-aligned mapping, its
                // length was checked to be a multiple of 4 at open, and every bit pattern is a valid f32.
                unsafe { std::slice::from_raw_parts(body.as_ptr().cast::<f32>(), body.len() / 4) }
            }
        }
    }

    /// Row `offset`. Panics if out of range: offsets come from the segment's own id tracker.
    #[inline]
    pub fn get(&self, offset: u32) -> &[f32] {
        let start = offset as usize * self.dim;
        &self.data()[start..start + self.dim]
    }

    /// Appends a row (RAM storage only).
    pub fn push(&mut self, v: &[f32]) -> Result<u32> {
        debug_assert_eq!(v.len(), self.dim);
        let offset = self.len() as u32;
        match &mut self.rows {
            Rows::Ram(data) => data.extend_from_slice(v),
            Rows::Mmap(_) => return Err(Error::Internal("push into a read-only vector storage".into())),
        }
        Ok(offset)
    }

    /// Replaces row `offset` (RAM storage only).
    pub fn set(&mut self, offset: u32, v: &[f32]) -> Result<()> {
        let dim = self.dim;
        match &mut self.rows {
            Rows::Ram(data) => {
                let start = offset as usize * dim;
                data[start..start + dim].copy_from_slice(v);
                Ok(())
            }
            Rows::Mmap(_) => Err(Error::Internal("write into a read-only vector storage".into())),
        }
    }

    pub fn ram_bytes(&self) -> usize {
        match &self.rows {
            Rows::Ram(v) => v.capacity() * 4,
            Rows::Mmap(_) => 0,
        }
    }

    pub fn data_bytes(&self) -> usize {
        self.data().len() * 4
    }

    /// Writes rows `offsets` (in that order) as a vector file.
    pub fn write_rows(&self, path: &Path, offsets: impl Iterator<Item = u32>) -> Result<()> {
        write_file(path, self.dim, offsets.map(|o| self.get(o)))
    }

    /// Opens a vector file: into RAM (verifying the checksum) or memory-mapped (`on_disk`).
    pub fn open(path: &Path, dim: usize, distance: Distance, on_disk: bool) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        // SAFETY: segment files are immutable once written and referenced by the manifest; Grape never
        // modifies or truncates them while mapped (they are deleted only after every reader is gone).
        let map =
            unsafe { Mmap::map(&file) }.map_err(|e| Error::io(format!("mmap {}", path.display()), e))?;
        let header = FileHeader::decode(&map, path, MAGIC, VERSION)?;
        let body = &map[HEADER_LEN..];
        if body.len() as u64 != header.body_len || body.len() % (4 * dim.max(1)) != 0 {
            return Err(Error::Corruption(format!(
                "{}: body length does not match the dimension",
                path.display()
            )));
        }
        let rows = if on_disk {
            Rows::Mmap(map)
        } else {
            files::verify_body(body, &header, path)?;
            let data: Vec<f32> =
                body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            Rows::Ram(data)
        };
        Ok(DenseVectors { dim, distance, rows })
    }

    /// A scorer of stored rows against `query` (already preprocessed, e.g. normalised for cosine).
    pub fn query_scorer<'a>(&'a self, query: &'a [f32]) -> DenseQueryScorer<'a> {
        DenseQueryScorer { store: self, query }
    }
}

/// Writes rows into a vector file: checked header, then little-endian f32 rows. One pass: the header is
/// written last, once the checksum is known.
pub fn write_file<'a>(path: &Path, dim: usize, rows: impl Iterator<Item = &'a [f32]>) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let err = |e| Error::io(format!("write {}", path.display()), e);
    let tmp = path.with_extension("tmp");
    let mut hasher = crc32fast::Hasher::new();
    let mut len = 0u64;
    {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(err)?);
        w.write_all(&[0u8; HEADER_LEN]).map_err(err)?;
        for row in rows {
            debug_assert_eq!(row.len(), dim);
            let bytes = f32_bytes(row);
            hasher.update(&bytes);
            w.write_all(&bytes).map_err(err)?;
            len += bytes.len() as u64;
        }
        let mut f = w.into_inner().map_err(|e| err(e.into_error()))?;
        let header =
            FileHeader { magic: *MAGIC, version: VERSION, body_len: len, body_crc: hasher.finalize() };
        f.seek(SeekFrom::Start(0)).map_err(err)?;
        f.write_all(&header.encode()).map_err(err)?;
        f.sync_data().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)?;
    Ok(())
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
        distance::score(self.distance, self.get(a), self.get(b))
    }
}

pub struct DenseQueryScorer<'a> {
    store: &'a DenseVectors,
    query: &'a [f32],
}

impl QueryScorer for DenseQueryScorer<'_> {
    #[inline]
    fn score(&self, point: u32) -> f32 {
        distance::score(self.store.distance, self.query, self.store.get(point))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_roundtrip_ram_and_mmap() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = DenseVectors::new(3, Distance::Dot);
        for i in 0..10 {
            v.push(&[i as f32, 1.0, -2.5]).unwrap();
        }
        let p = dir.path().join("v.bin");
        v.write_rows(&p, (0..10).rev()).unwrap();
        for on_disk in [false, true] {
            let r = DenseVectors::open(&p, 3, Distance::Dot, on_disk).unwrap();
            assert_eq!(r.len(), 10);
            assert_eq!(r.get(0), &[9.0, 1.0, -2.5]);
            assert_eq!(r.get(9), &[0.0, 1.0, -2.5]);
        }
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[HEADER_LEN + 5] ^= 0x40;
        std::fs::write(&p, bytes).unwrap();
        assert!(DenseVectors::open(&p, 3, Distance::Dot, false).is_err());
    }
}
