//! Checked files: every small on-disk file of a shard is a fixed header (magic, format version, body length,
//! CRC32 of the body) followed by the body, written to a temporary name, fsynced and renamed into place.
//! See docs/format.md, "Checked files".

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use grape_types::{Error, Result};

/// Header length in bytes. Large files place their body right after it, so bodies start 64-byte aligned.
pub const HEADER_LEN: usize = 64;

/// Header of a checked file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub magic: [u8; 8],
    pub version: u32,
    pub body_len: u64,
    pub body_crc: u32,
}

impl FileHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&self.magic);
        h[8..12].copy_from_slice(&self.version.to_le_bytes());
        h[12..20].copy_from_slice(&self.body_len.to_le_bytes());
        h[20..24].copy_from_slice(&self.body_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[0..24]);
        h[24..28].copy_from_slice(&crc.to_le_bytes());
        h
    }

    pub fn decode(bytes: &[u8], path: &Path, magic: &[u8; 8], version: u32) -> Result<FileHeader> {
        let corrupt = |why: &str| Error::Corruption(format!("{}: {why}", path.display()));
        if bytes.len() < HEADER_LEN {
            return Err(corrupt("file shorter than its header"));
        }
        let stored_crc = u32::from_le_bytes(bytes[24..28].try_into().map_err(|_| corrupt("header"))?);
        if crc32fast::hash(&bytes[0..24]) != stored_crc {
            return Err(corrupt("header checksum mismatch"));
        }
        if &bytes[0..8] != magic {
            return Err(corrupt("wrong file type (magic)"));
        }
        let header = FileHeader {
            magic: *magic,
            version: u32::from_le_bytes(bytes[8..12].try_into().map_err(|_| corrupt("header"))?),
            body_len: u64::from_le_bytes(bytes[12..20].try_into().map_err(|_| corrupt("header"))?),
            body_crc: u32::from_le_bytes(bytes[20..24].try_into().map_err(|_| corrupt("header"))?),
        };
        if header.version != version {
            return Err(corrupt(&format!(
                "unsupported format version {} (expected {version})",
                header.version
            )));
        }
        Ok(header)
    }
}

fn io(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

/// Writes `body` as a checked file at `path` atomically: temp file, fsync, rename, directory fsync.
pub fn write_checked(path: &Path, magic: &[u8; 8], version: u32, body: &[u8]) -> Result<()> {
    write_checked_parts(path, magic, version, &[body])
}

/// Like [`write_checked`] with the body given in pieces (no concatenation copy).
pub fn write_checked_parts(path: &Path, magic: &[u8; 8], version: u32, parts: &[&[u8]]) -> Result<()> {
    let mut hasher = crc32fast::Hasher::new();
    let mut len = 0u64;
    for p in parts {
        hasher.update(p);
        len += p.len() as u64;
    }
    let header = FileHeader { magic: *magic, version, body_len: len, body_crc: hasher.finalize() };
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(io(&tmp, "create"))?;
        f.write_all(&header.encode()).map_err(io(&tmp, "write"))?;
        for p in parts {
            f.write_all(p).map_err(io(&tmp, "write"))?;
        }
        f.sync_data().map_err(io(&tmp, "fsync"))?;
    }
    fs::rename(&tmp, path).map_err(io(path, "rename into"))?;
    if let Some(dir) = path.parent() {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// Reads a checked file fully and verifies header and body checksum.
pub fn read_checked(path: &Path, magic: &[u8; 8], version: u32) -> Result<Vec<u8>> {
    read_checked_any(path, magic, &[version]).map(|(_, body)| body)
}

/// [`read_checked`] for a file that may be in any of the `accepted` format versions (the last one is
/// the current); returns the file's version with its body.
pub fn read_checked_any(path: &Path, magic: &[u8; 8], accepted: &[u32]) -> Result<(u32, Vec<u8>)> {
    let mut bytes = Vec::new();
    File::open(path).map_err(io(path, "open"))?.read_to_end(&mut bytes).map_err(io(path, "read"))?;
    let stored = bytes.get(8..12).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    // An unaccepted version is checked against the current one, which reports it.
    let version = accepted.iter().copied().find(|v| Some(*v) == stored).or(accepted.last().copied());
    let header = FileHeader::decode(&bytes, path, magic, version.unwrap_or_default())?;
    verify_body(&bytes[HEADER_LEN..], &header, path)?;
    bytes.drain(..HEADER_LEN);
    Ok((header.version, bytes))
}

/// Checks a body against its header's length and checksum.
pub fn verify_body(body: &[u8], header: &FileHeader, path: &Path) -> Result<()> {
    if body.len() as u64 != header.body_len {
        return Err(Error::Corruption(format!(
            "{}: body is {} bytes, header says {}",
            path.display(),
            body.len(),
            header.body_len
        )));
    }
    if crc32fast::hash(body) != header.body_crc {
        return Err(Error::Corruption(format!("{}: body checksum mismatch", path.display())));
    }
    Ok(())
}

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    let f = OpenOptions::new().read(true).open(dir).map_err(io(dir, "open directory"))?;
    f.sync_all().map_err(io(dir, "fsync directory"))
}

/// Creates a directory and its parents, fsyncing the parent.
pub fn create_dir_durable(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(io(dir, "create directory"))?;
    if let Some(parent) = dir.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        write_checked(&p, b"GRPTEST\0", 1, b"hello").unwrap();
        assert_eq!(read_checked(&p, b"GRPTEST\0", 1).unwrap(), b"hello");
        assert!(read_checked(&p, b"GRPOTHR\0", 1).is_err());
        assert!(read_checked(&p, b"GRPTEST\0", 2).is_err());
        let mut bytes = fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&p, bytes).unwrap();
        assert!(matches!(read_checked(&p, b"GRPTEST\0", 1), Err(Error::Corruption(_))));
    }
}
