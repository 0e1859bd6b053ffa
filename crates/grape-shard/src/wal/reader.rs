//! Reading records back. A read works on file handles opened under the state lock, so it sees the log as
//! it was when the read started, while appends and prefix truncation continue.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::format::{parse_record, Parsed, HEADER_LEN};
use super::writer::{SegmentInfo, Writer};
use super::WalError;

type Result<T, E = WalError> = std::result::Result<T, E>;

/// A segment to read: an open handle (which keeps the data readable even if the segment is deleted by a
/// concurrent prefix truncation) and the extent of its valid records when the read started.
pub(super) struct SegmentRead {
    info: SegmentInfo,
    file: File,
}

/// Under the state lock: opens every segment that may hold records with index >= `from`.
pub(super) fn open_segments(writer: &Writer, from: u64) -> Result<Vec<SegmentRead>> {
    let mut out = Vec::new();
    for info in writer.sealed.iter().chain(std::iter::once(&writer.active)) {
        if info.count == 0 || info.end() <= from {
            continue;
        }
        let file = File::open(&info.path)
            .map_err(|e| WalError::io(format!("opening {}", info.path.display()), e))?;
        out.push(SegmentRead { info: info.clone(), file });
    }
    Ok(out)
}

/// Without the lock: reads the records with index >= `from` from `segments`, checking every checksum.
pub(super) fn read_records(segments: Vec<SegmentRead>, from: u64) -> Result<Vec<(u64, Vec<u8>)>> {
    let mut out = Vec::new();
    for SegmentRead { info, mut file } in segments {
        let io = |e| WalError::io(format!("reading {}", info.path.display()), e);
        // Offsets in `data` are file offsets minus the header, so parse with a header-sized gap in front.
        let mut data = vec![0u8; info.bytes as usize];
        file.seek(SeekFrom::Start(HEADER_LEN)).map_err(io)?;
        file.read_exact(&mut data[HEADER_LEN as usize..]).map_err(io)?;
        let mut pos = HEADER_LEN as usize;
        for index in info.first..info.end() {
            match parse_record(&data, pos, index) {
                Parsed::Record { payload, next } => {
                    if index >= from {
                        out.push((index, payload.to_vec()));
                    }
                    pos = next;
                }
                Parsed::End => {
                    return Err(corrupt(&info, pos, format!("data ends before record {index}")));
                }
                Parsed::Invalid(reason) => return Err(corrupt(&info, pos, reason)),
            }
        }
    }
    Ok(out)
}

fn corrupt(info: &SegmentInfo, pos: usize, reason: String) -> WalError {
    WalError::Corrupt { segment: info.name(), offset: pos as u64, reason }
}
