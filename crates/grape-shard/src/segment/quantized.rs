//! The quantized codes file of one vector of a segment (`quant-<i>.bin`). Layout in docs/format.md,
//! "Quantized codes file": a checked header, then a fixed part, the quantization config (JSON), the
//! trained parameters, and the code rows from a 64-byte aligned body offset.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use grape_index::quantization::{Codes, QuantizedVectors, Quantizer, VectorRows};
use grape_types::{Distance, Error, QuantizationConfig, Result};
use memmap2::Mmap;

use super::DenseVectors;
use crate::files::{self, FileHeader, HEADER_LEN};

const MAGIC: &[u8; 8] = b"GRPQUAN\0";
const VERSION: u32 = 1;
/// Fixed part of the body: kind, dim, count, code length, config length, params length.
const FIXED_LEN: usize = 32;

/// Body offset of the code rows: after the fixed part, config and parameters, rounded up to 64.
fn codes_start(config_len: usize, params_len: usize) -> usize {
    FIXED_LEN.saturating_add(config_len).saturating_add(params_len).div_ceil(64).saturating_mul(64)
}

impl VectorRows for DenseVectors {
    fn len(&self) -> usize {
        DenseVectors::len(self)
    }

    fn dim(&self) -> usize {
        DenseVectors::dim(self)
    }

    fn has(&self, offset: u32) -> bool {
        DenseVectors::has(self, offset)
    }

    fn row(&self, offset: u32, buf: &mut Vec<f32>) {
        buf.clear();
        buf.extend_from_slice(&self.get_f32(offset));
    }
}

/// Writes `q` as a codes file: temp file, fsync, rename (the caller fsyncs the directory).
pub fn write_quantized(path: &Path, q: &QuantizedVectors) -> Result<()> {
    let err = |e| Error::io(format!("write {}", path.display()), e);
    let config =
        serde_json::to_vec(q.config()).map_err(|e| Error::Internal(format!("quantization config: {e}")))?;
    let params = q.quantizer().to_bytes();
    let mut fixed = Vec::with_capacity(FIXED_LEN);
    fixed.extend(q.quantizer().kind().to_le_bytes());
    fixed.extend((q.dim() as u32).to_le_bytes());
    fixed.extend((q.len() as u64).to_le_bytes());
    fixed.extend((q.code_len() as u32).to_le_bytes());
    fixed.extend((config.len() as u32).to_le_bytes());
    fixed.extend((params.len() as u64).to_le_bytes());
    let pad = vec![0u8; codes_start(config.len(), params.len()) - FIXED_LEN - config.len() - params.len()];
    let parts: [&[u8]; 5] = [&fixed, &config, &params, &pad, q.codes().bytes()];
    let mut hasher = crc32fast::Hasher::new();
    parts.iter().for_each(|p| hasher.update(p));
    let header = FileHeader {
        magic: *MAGIC,
        version: VERSION,
        body_len: parts.iter().map(|p| p.len() as u64).sum(),
        body_crc: hasher.finalize(),
    };
    let tmp = path.with_extension("tmp");
    {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(err)?);
        w.write_all(&header.encode()).map_err(err)?;
        for p in parts {
            w.write_all(p).map_err(err)?;
        }
        let f = w.into_inner().map_err(|e| err(e.into_error()))?;
        f.sync_data().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

/// Opens a codes file of a vector of dimension `dim` with `points` rows: into RAM (checksum verified)
/// when its config says `always_ram`, else memory-mapped.
pub fn open_quantized(
    path: &Path,
    dim: usize,
    distance: Distance,
    points: usize,
) -> Result<QuantizedVectors> {
    let corrupt = |why: &str| Error::Corruption(format!("{}: {why}", path.display()));
    let file = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    // SAFETY: segment files are immutable once written and referenced by the manifest; Grape never
    // modifies or truncates them while mapped (they are deleted only after every reader is gone).
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(format!("mmap {}", path.display()), e))?;
    let header = FileHeader::decode(&map, path, MAGIC, VERSION)?;
    let body = &map[HEADER_LEN..];
    if body.len() as u64 != header.body_len || body.len() < FIXED_LEN {
        return Err(corrupt("body length does not match the header"));
    }
    let u32_at =
        |at: usize| u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().unwrap_or_default()) as usize;
    let (kind, file_dim, count, code_len, config_len, params_len) =
        (u32_at(0) as u32, u32_at(4), u64_at(8), u32_at(16), u32_at(20), u64_at(24));
    if file_dim != dim || count != points {
        return Err(corrupt("dimension or point count differs from the segment"));
    }
    let start = codes_start(config_len, params_len);
    if start.checked_add(count.saturating_mul(code_len)) != Some(body.len()) {
        return Err(corrupt("body length does not match the codes"));
    }
    let config: QuantizationConfig = serde_json::from_slice(&body[FIXED_LEN..FIXED_LEN + config_len])
        .map_err(|e| corrupt(&format!("quantization config: {e}")))?;
    let quantizer =
        Quantizer::from_bytes(kind, &body[FIXED_LEN + config_len..FIXED_LEN + config_len + params_len], dim)?;
    if quantizer.code_len(dim) != code_len {
        return Err(corrupt("code length does not match the parameters"));
    }
    let codes = if config.always_ram() {
        files::verify_body(body, &header, path)?;
        Codes::Ram(body[start..].to_vec())
    } else {
        Codes::Mapped { start: HEADER_LEN + start, len: count * code_len, map }
    };
    Ok(QuantizedVectors::from_parts(config, distance, dim, quantizer, codes)?)
}

#[cfg(test)]
mod tests {
    use grape_types::Datatype;

    use super::*;

    #[test]
    fn roundtrip_ram_and_mmap_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = DenseVectors::new(8, Distance::Dot, Datatype::Float32);
        for i in 0..50 {
            v.push(&(0..8).map(|d| ((i * 7 + d * 3) % 11) as f32 - 5.0).collect::<Vec<_>>()).unwrap();
        }
        let path = dir.path().join("quant-0.bin");
        for json in [
            r#"{"scalar": {"type": "int8", "always_ram": true}}"#,
            r#"{"binary": {"encoding": "two_bits"}}"#,
            r#"{"product": {"compression": "x8"}}"#,
        ] {
            let config: QuantizationConfig = serde_json::from_str(json).unwrap();
            let q = QuantizedVectors::build(&config, Distance::Dot, &v, 1).unwrap();
            write_quantized(&path, &q).unwrap();
            let back = open_quantized(&path, 8, Distance::Dot, 50).unwrap();
            assert_eq!(back.codes().in_ram(), config.always_ram());
            assert_eq!(back.codes().bytes(), q.codes().bytes());
            assert_eq!(back.quantizer(), q.quantizer());
            assert_eq!(back.config(), &config);
            assert!(open_quantized(&path, 8, Distance::Dot, 49).is_err());
        }
        // A flipped code bit is caught when the codes are loaded into RAM.
        let config: QuantizationConfig = serde_json::from_str(r#"{"binary": {"always_ram": true}}"#).unwrap();
        write_quantized(&path, &QuantizedVectors::build(&config, Distance::Dot, &v, 1).unwrap()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(open_quantized(&path, 8, Distance::Dot, 50), Err(Error::Corruption(_))));
    }
}
