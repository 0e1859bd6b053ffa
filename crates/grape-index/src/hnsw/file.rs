//! The HNSW graph file: a checked-file header (magic `GRPHNSW\0`, format version 2, body length, body
//! CRC32, header CRC32) and a little-endian body of parameters, levels, neighbour lists and payload
//! links. Version 1 files (no payload links section) are still read. The layout and its invariants are
//! in docs/format.md, "HNSW graph file"; the `H<n>` labels below refer to them.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::graph::HnswGraph;
use super::links::{GraphLinks, ABSENT, MAX_LEVEL};
use super::payload_links::PayloadLinks;
use super::HnswParams;
use crate::error::{IndexError, Result};

const MAGIC: &[u8; 8] = b"GRPHNSW\0";
/// Version written; version 1 (without the payload links section) is read too.
const VERSION: u32 = 2;
const HEADER_LEN: usize = 64;
/// Fixed part of the body before the levels.
const FIXED_LEN: usize = 56;
const NO_ENTRY: u32 = u32::MAX;

/// Body length of the version 1 part for the given shape (H3).
fn body_len(m: usize, m0: usize, capacity: usize, upper_blocks: usize) -> u64 {
    let levels = capacity.div_ceil(4) * 4;
    (FIXED_LEN + levels) as u64
        + 4 * (capacity as u64 * (1 + m0) as u64 + upper_blocks as u64 * (1 + m) as u64)
}

/// Length of the payload links section of version 2 (H8): the link count, then, when links exist,
/// `capacity + 1` row starts and the links.
fn payload_section_len(capacity: usize, links: u64) -> u64 {
    8 + if links == 0 { 0 } else { 4 * (capacity as u64 + 1 + links) }
}

fn encode_header(body_len: u64, body_crc: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&body_len.to_le_bytes());
    h[20..24].copy_from_slice(&body_crc.to_le_bytes());
    let crc = crc32fast::hash(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Writer that checksums and counts the body as it goes.
struct BodyWriter {
    out: BufWriter<File>,
    crc: crc32fast::Hasher,
    len: u64,
}

impl BodyWriter {
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.crc.update(b);
        self.len += b.len() as u64;
        self.out.write_all(b)
    }

    fn u32s(&mut self, values: impl Iterator<Item = u32>, buf: &mut Vec<u8>) -> std::io::Result<()> {
        buf.clear();
        buf.extend(values.flat_map(u32::to_le_bytes));
        let bytes = std::mem::take(buf);
        let result = self.bytes(&bytes);
        *buf = bytes;
        result
    }
}

impl HnswGraph {
    /// Writes the graph to `path` atomically: a temporary file beside it, fsync, rename, directory fsync.
    pub fn save(&self, path: &Path) -> Result<()> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = path.with_file_name(format!("{name}.tmp"));
        let ctx = |what: &str, p: &Path| format!("{what} {}", p.display());
        let file = File::create(&tmp).map_err(|e| IndexError::io(ctx("create", &tmp), e))?;
        self.write_to(file).map_err(|e| IndexError::io(ctx("write", &tmp), e))?;
        std::fs::rename(&tmp, path).map_err(|e| IndexError::io(ctx("rename into", path), e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| IndexError::io(ctx("fsync", dir), e))?;
        }
        Ok(())
    }

    fn write_to(&self, file: File) -> std::io::Result<()> {
        let links = &self.links;
        let (m, m0, capacity) = (links.m(), links.m0(), links.capacity());
        let (entry, top) = self.entry().map_or((NO_ENTRY, 0), |(e, t)| (e, t as u32));
        let mut w = BodyWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            crc: crc32fast::Hasher::new(),
            len: 0,
        };
        w.out.write_all(&[0u8; HEADER_LEN])?;
        let mut fixed = Vec::with_capacity(FIXED_LEN);
        fixed.extend((m as u32).to_le_bytes());
        fixed.extend((m0 as u32).to_le_bytes());
        fixed.extend((self.params.ef_construct as u32).to_le_bytes());
        fixed.extend(0u32.to_le_bytes());
        fixed.extend(self.params.seed.to_le_bytes());
        fixed.extend((capacity as u64).to_le_bytes());
        fixed.extend((self.len as u64).to_le_bytes());
        fixed.extend(entry.to_le_bytes());
        fixed.extend(top.to_le_bytes());
        fixed.extend((links.upper_blocks() as u64).to_le_bytes());
        w.bytes(&fixed)?;
        w.bytes(links.levels())?;
        w.bytes(&[0u8; 3][..capacity.div_ceil(4) * 4 - capacity])?;
        let mut list = Vec::with_capacity(1 + m0);
        let mut buf = Vec::new();
        let mut write_list = |w: &mut BodyWriter, offset: u32, level: usize, cap: usize| {
            list.clear();
            if links.level(offset) != ABSENT {
                links.neighbours_into(offset, level, &mut list);
            }
            let count = list.len() as u32;
            // Unused slots are written as zero so equal graphs give equal files.
            let values = std::iter::once(count).chain(list.iter().copied()).chain(std::iter::repeat(0));
            w.u32s(values.take(1 + cap), &mut buf)
        };
        for offset in 0..capacity as u32 {
            write_list(&mut w, offset, 0, m0)?;
        }
        for offset in 0..capacity as u32 {
            let level = links.level(offset);
            if level != ABSENT {
                for l in 1..=usize::from(level) {
                    write_list(&mut w, offset, l, m)?;
                }
            }
        }
        debug_assert_eq!(w.len, body_len(m, m0, capacity, links.upper_blocks()));
        let payload = &self.payload;
        w.bytes(&(payload.links().len() as u64).to_le_bytes())?;
        if !payload.is_empty() {
            // Rows of offsets the links were built beyond (none today) are written as empty.
            let end = *payload.starts().last().unwrap_or(&0);
            let starts = payload.starts().iter().copied().chain(std::iter::repeat(end));
            w.u32s(starts.take(capacity + 1), &mut buf)?;
            w.u32s(payload.links().iter().copied(), &mut buf)?;
        }
        debug_assert_eq!(
            w.len,
            body_len(m, m0, capacity, links.upper_blocks())
                + payload_section_len(capacity, payload.links().len() as u64)
        );
        let header = encode_header(w.len, w.crc.finalize());
        let mut file = w.out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.sync_all()
    }

    /// Reads a graph written by [`HnswGraph::save`], checking the header, the checksum and every
    /// structural invariant search relies on; any mismatch is [`IndexError::Corruption`].
    pub fn load(path: &Path) -> Result<HnswGraph> {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| IndexError::io(format!("read {}", path.display()), e))?;
        decode(&bytes).map_err(|reason| IndexError::corruption(path.display().to_string(), reason))
    }
}

/// Little-endian cursor over the body; running past the end is an error.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err("body is truncated".into());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from(self.u32()?) | u64::from(self.u32()?) << 32)
    }

    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, String> {
        let b = self.take(n.checked_mul(4).ok_or("size overflow")?)?;
        Ok(b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

fn decode(bytes: &[u8]) -> Result<HnswGraph, String> {
    // H1: header.
    if bytes.len() < HEADER_LEN {
        return Err("file shorter than its header".into());
    }
    let (header, body) = bytes.split_at(HEADER_LEN);
    let field =
        |r: std::ops::Range<usize>| header[r].iter().rev().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    if crc32fast::hash(&header[0..24]) != field(24..28) as u32 {
        return Err("header checksum mismatch".into());
    }
    if header[28..].iter().any(|&b| b != 0) {
        return Err("nonzero reserved header bytes".into());
    }
    if &header[0..8] != MAGIC {
        return Err("wrong file type (magic)".into());
    }
    let version = field(8..12);
    if version != 1 && version != u64::from(VERSION) {
        return Err(format!("unsupported format version {version} (expected 1 or {VERSION})"));
    }
    // H2: body length and checksum.
    if body.len() as u64 != field(12..20) {
        return Err(format!("body is {} bytes, header says {}", body.len(), field(12..20)));
    }
    if crc32fast::hash(body) != field(20..24) as u32 {
        return Err("body checksum mismatch".into());
    }
    // H3: parameters and shape.
    let mut c = Cursor { bytes: body };
    let (m, m0, ef_construct, _reserved) =
        (c.u32()? as usize, c.u32()? as usize, c.u32()? as usize, c.u32()?);
    let seed = c.u64()?;
    let (capacity, len, entry, top, upper_blocks) = (c.u64()?, c.u64()?, c.u32()?, c.u32()?, c.u64()?);
    if !(2..=HnswParams::MAX_M).contains(&m) || m0 != 2 * m || ef_construct < m {
        return Err(format!("bad parameters m={m} m0={m0} ef_construct={ef_construct}"));
    }
    if capacity > 1 << 32 || len > capacity || upper_blocks > capacity * u64::from(MAX_LEVEL) {
        return Err("bad counts".into());
    }
    let (capacity, len, upper_blocks) = (capacity as usize, len as usize, upper_blocks as usize);
    let main_len = body_len(m, m0, capacity, upper_blocks);
    let payload_len = if version == 1 {
        0
    } else {
        let at = usize::try_from(main_len).map_err(|_| "bad counts")?;
        let count = body.get(at..at + 8).ok_or("body length does not match its counts")?;
        let links = u64::from_le_bytes(count.try_into().map_err(|_| "bad counts")?);
        if links > u64::from(u32::MAX) {
            return Err("bad payload link count".into());
        }
        payload_section_len(capacity, links)
    };
    if body.len() as u64 != main_len + payload_len {
        return Err("body length does not match its counts".into());
    }
    // H4: levels.
    let levels = c.take(capacity)?.to_vec();
    if c.take(capacity.div_ceil(4) * 4 - capacity)?.iter().any(|&b| b != 0) {
        return Err("nonzero padding".into());
    }
    let present = levels.iter().filter(|&&l| l != ABSENT).count();
    let blocks: usize = levels.iter().filter(|&&l| l != ABSENT).map(|&l| usize::from(l)).sum();
    if levels.iter().any(|&l| l != ABSENT && l > MAX_LEVEL) || present != len || blocks != upper_blocks {
        return Err("levels do not match the counts".into());
    }
    // H5: entry point.
    let max_level = levels.iter().filter(|&&l| l != ABSENT).max().copied();
    let entry = match max_level {
        None if entry == NO_ENTRY && top == 0 => None,
        Some(max)
            if (entry as usize) < capacity && levels[entry as usize] == max && top == u32::from(max) =>
        {
            Some((entry, top as usize))
        }
        _ => return Err("entry point is not a node of the top level".into()),
    };
    // H6: neighbour lists.
    let level0 = c.u32s(capacity * (1 + m0))?;
    let upper = c.u32s(upper_blocks * (1 + m))?;
    let check = |owner: usize, level: usize, list: &[u32]| -> Result<(), String> {
        let count = list[0] as usize;
        let node_level = levels[owner];
        if count > list.len() - 1 || (node_level == ABSENT && count > 0) {
            return Err(format!("offset {owner}: bad neighbour count {count} at level {level}"));
        }
        for &n in &list[1..=count] {
            let ok = (n as usize) < capacity
                && n as usize != owner
                && levels[n as usize] != ABSENT
                && usize::from(levels[n as usize]) >= level;
            if !ok {
                return Err(format!(
                    "offset {owner}: neighbour {n} at level {level} is not a node of that level"
                ));
            }
        }
        Ok(())
    };
    for (owner, list) in level0.chunks_exact(1 + m0).enumerate() {
        check(owner, 0, list)?;
    }
    let mut blocks = upper.chunks_exact(1 + m);
    for (owner, &level) in levels.iter().enumerate().filter(|(_, &l)| l != ABSENT) {
        for l in 1..=usize::from(level) {
            let list = blocks.next().ok_or("missing upper lists")?;
            check(owner, l, list)?;
        }
    }
    // H8: payload links.
    let payload = if version == 1 {
        PayloadLinks::default()
    } else {
        let count = c.u64()? as usize;
        if count == 0 {
            PayloadLinks::default()
        } else {
            let starts = c.u32s(capacity + 1)?;
            let links = c.u32s(count)?;
            if starts[0] != 0 || starts[capacity] as usize != count || starts.windows(2).any(|w| w[0] > w[1])
            {
                return Err("payload link rows are not increasing from 0 to the link count".into());
            }
            for (owner, row) in starts.windows(2).enumerate() {
                let row = &links[row[0] as usize..row[1] as usize];
                let ok =
                    |&n: &u32| (n as usize) < capacity && n as usize != owner && levels[n as usize] != ABSENT;
                if !row.is_empty() && (levels[owner] == ABSENT || !row.iter().all(ok)) {
                    return Err(format!("offset {owner}: a payload link is not a node"));
                }
            }
            PayloadLinks::from_parts(starts, links)
        }
    };
    let params = HnswParams { m, ef_construct, max_threads: 0, seed };
    let links = GraphLinks::from_parts(m, m0, levels, level0, upper);
    Ok(HnswGraph::from_parts(params, links, payload, entry, len))
}
