//! Byte layout of WAL segment files and their names. See docs/format.md, "Write-ahead log".

use std::fs::File;
use std::io;
use std::path::Path;

/// Magic bytes at the start of every segment file.
pub(super) const MAGIC: &[u8; 8] = b"GRPWAL\0\0";
/// Format version written in segment headers; a reader refuses any other.
pub(super) const VERSION: u32 = 1;
/// Segment header: magic (8), version (4), first index (8), CRC32 of bytes 0..20 (4).
pub(super) const HEADER_LEN: u64 = 24;
/// Record header: payload length (4), CRC32 of index ++ payload (4), index (8).
pub(super) const RECORD_HEADER_LEN: usize = 16;
/// Largest payload a record may carry.
pub const MAX_RECORD_SIZE: usize = 1 << 30;

/// First index written into the header of a spare (preallocated, not yet used) segment file.
pub(super) const SPARE_FIRST_INDEX: u64 = 0;

pub(super) fn encode_header(first_index: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&first_index.to_le_bytes());
    let crc = crc32fast::hash(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decodes a segment header, returning its first index, or why it is invalid.
pub(super) fn decode_header(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() < HEADER_LEN as usize {
        return Err(format!("file is {} bytes, shorter than the {HEADER_LEN}-byte header", bytes.len()));
    }
    if crc32fast::hash(&bytes[0..20]) != read_u32(bytes, 20) {
        return Err("header checksum mismatch".into());
    }
    if &bytes[0..8] != MAGIC {
        return Err("not a WAL segment (wrong magic)".into());
    }
    let version = read_u32(bytes, 8);
    if version != VERSION {
        return Err(format!("unsupported WAL format version {version} (expected {VERSION})"));
    }
    Ok(read_u64(bytes, 12))
}

/// CRC32 stored in a record header: over the index (u64 LE) followed by the payload.
pub(super) fn record_crc(index: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Bytes a record with a payload of `payload_len` bytes occupies in a segment.
pub(super) fn frame_len(payload_len: usize) -> u64 {
    (RECORD_HEADER_LEN + payload_len) as u64
}

/// Appends the framed record to `buf`. The payload length must be at most [`MAX_RECORD_SIZE`].
pub(super) fn encode_record(buf: &mut Vec<u8>, index: u64, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_RECORD_SIZE);
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&record_crc(index, payload).to_le_bytes());
    buf.extend_from_slice(&index.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Outcome of reading the record at some position of a segment body.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Parsed<'a> {
    /// A valid record; the next one starts at `next`.
    Record { payload: &'a [u8], next: usize },
    /// The position is exactly the end of the data.
    End,
    /// The bytes at the position are not a valid record with the expected index.
    Invalid(String),
}

/// Parses the record at `pos` of `data` (the bytes of a segment file), expecting index `expected`.
pub(super) fn parse_record(data: &[u8], pos: usize, expected: u64) -> Parsed<'_> {
    let rest = &data[pos.min(data.len())..];
    if rest.is_empty() {
        return Parsed::End;
    }
    if rest.len() < RECORD_HEADER_LEN {
        return Parsed::Invalid(format!("{} trailing bytes, shorter than a record header", rest.len()));
    }
    let len = read_u32(rest, 0) as usize;
    if len > MAX_RECORD_SIZE {
        return Parsed::Invalid(format!("record length {len} exceeds the maximum {MAX_RECORD_SIZE}"));
    }
    let end = RECORD_HEADER_LEN + len;
    if rest.len() < end {
        return Parsed::Invalid(format!(
            "record of {len} bytes extends past the end of the data ({} bytes left)",
            rest.len() - RECORD_HEADER_LEN
        ));
    }
    let crc = read_u32(rest, 4);
    let index = read_u64(rest, 8);
    let payload = &rest[RECORD_HEADER_LEN..end];
    if record_crc(index, payload) != crc {
        return Parsed::Invalid("record checksum mismatch".into());
    }
    if index != expected {
        return Parsed::Invalid(format!("record has index {index}, expected {expected}"));
    }
    Parsed::Record { payload, next: pos + end }
}

/// File name of the segment whose first record has index `first_index`.
pub(super) fn segment_file_name(first_index: u64) -> String {
    format!("wal-{first_index:020}.log")
}

/// First index encoded in a segment file name, or `None` if `name` is not a segment name.
pub(super) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// File name of the `n`-th spare segment file.
pub(super) fn spare_file_name(n: u64) -> String {
    format!("wal-spare-{n}.log")
}

/// Number of a spare segment file name, or `None` if `name` is not one.
pub(super) fn parse_spare_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-spare-")?.strip_suffix(".log")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Temporary name under which a file is written before it is renamed to `name`.
pub(super) fn tmp_file_name(name: &str) -> String {
    format!("{name}.tmp")
}

/// Makes the directory entries of `dir` (creations, renames, deletions) durable.
pub(super) fn fsync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened for syncing on this platform; metadata is journaled by the OS.
        let _ = dir;
        Ok(())
    }
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_header_roundtrip_and_rejects_damage() {
        let h = encode_header(42);
        assert_eq!(decode_header(&h), Ok(42));
        for i in 0..h.len() {
            let mut bad = h;
            bad[i] ^= 0x10;
            assert!(decode_header(&bad).is_err(), "flip at byte {i} accepted");
        }
        assert!(decode_header(&h[..10]).is_err());
    }

    #[test]
    fn wal_record_roundtrip() {
        let mut buf = vec![0u8; 3];
        encode_record(&mut buf, 7, b"hello");
        encode_record(&mut buf, 8, b"");
        let Parsed::Record { payload, next } = parse_record(&buf, 3, 7) else { panic!("first record") };
        assert_eq!(payload, b"hello");
        let Parsed::Record { payload, next } = parse_record(&buf, next, 8) else { panic!("second record") };
        assert!(payload.is_empty());
        assert_eq!(parse_record(&buf, next, 9), Parsed::End);
        assert!(matches!(parse_record(&buf, 3, 8), Parsed::Invalid(_)));
        assert!(matches!(parse_record(&buf[..buf.len() - 1], next - 16, 8), Parsed::Invalid(_)));
    }

    #[test]
    fn wal_file_names() {
        assert_eq!(segment_file_name(1), "wal-00000000000000000001.log");
        assert_eq!(parse_segment_file_name(&segment_file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_file_name("wal-1.log"), None);
        assert_eq!(parse_segment_file_name("wal-spare-1.log"), None);
        assert_eq!(parse_spare_file_name(&spare_file_name(3)), Some(3));
        assert_eq!(parse_spare_file_name(&segment_file_name(3)), None);
    }
}
