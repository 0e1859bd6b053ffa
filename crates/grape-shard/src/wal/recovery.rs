//! Opening a log directory: validate every segment, drop a torn tail of the newest one, refuse anything
//! else that is damaged. See docs/format.md, "Write-ahead log", for what recovery may assume (I1..).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{
    decode_header, fsync_dir, parse_record, parse_segment_file_name, parse_spare_file_name, Parsed,
    HEADER_LEN,
};
use super::writer::{create_segment, SegmentInfo, Writer};
use super::{WalError, WalOptions};

type Result<T, E = WalError> = std::result::Result<T, E>;

/// A segment file as found on disk.
struct Scanned {
    info: SegmentInfo,
    /// Length of the file; larger than `info.bytes` when the records end in an invalid one.
    file_len: u64,
    /// Offset and description of the first invalid record, if any.
    invalid: Option<(u64, String)>,
}

/// Opens or creates the log in `dir` and returns its writer positioned after the last valid record.
pub(super) fn recover(dir: &Path, options: &WalOptions) -> Result<Writer> {
    let created = !dir.exists();
    fs::create_dir_all(dir).map_err(|e| WalError::io(format!("creating {}", dir.display()), e))?;
    if created {
        if let Some(parent) = dir.parent() {
            let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
            fsync_dir(parent).map_err(|e| WalError::io(format!("fsync of {}", parent.display()), e))?;
        }
    }
    let listing = list_dir(dir)?;
    let mut dir_changed = listing.removed_tmp;

    let mut scanned = Vec::with_capacity(listing.segments.len());
    for (first, path) in &listing.segments {
        scanned.push(scan_segment(path, *first)?);
    }
    // Empty segments before the newest one are left by an interrupted reset_next_index (I9).
    let newest = scanned.len().saturating_sub(1);
    let mut kept = Vec::with_capacity(scanned.len());
    for (i, s) in scanned.into_iter().enumerate() {
        if i < newest && s.info.count == 0 && s.file_len == HEADER_LEN {
            tracing::info!(segment = %s.info.path.display(), "removing stale empty WAL segment");
            remove(&s.info.path)?;
            dir_changed = true;
        } else {
            kept.push(s);
        }
    }
    check_segments(&kept)?;

    let mut spares = Vec::new();
    let next_spare = listing.spares.iter().map(|(n, _)| n + 1).max().unwrap_or(0);
    for (_, path) in listing.spares {
        if spares.len() < options.segments_ahead && is_valid_spare(&path) {
            spares.push(path);
        } else {
            remove(&path)?;
            dir_changed = true;
        }
    }

    let newest = kept.pop();
    let sealed: VecDeque<SegmentInfo> = kept.into_iter().map(|s| s.info).collect();
    let (active, file) = match newest {
        Some(s) => {
            let file = open_active(&s)?;
            (s.info, file)
        }
        None => create_segment(dir, &mut spares, 1)?,
    };
    let synced = active.end() - 1;
    let mut writer = Writer {
        dir: dir.to_path_buf(),
        capacity: options.segment_capacity,
        sealed,
        active,
        file: Arc::new(file),
        spares,
        next_spare,
        synced,
        failure: None,
        closed: false,
    };
    writer.replenish_spares(options.segments_ahead)?;
    if dir_changed {
        fsync_dir(dir).map_err(|e| WalError::io(format!("fsync of {}", dir.display()), e))?;
    }
    tracing::debug!(
        dir = %dir.display(),
        first = ?writer.first_index(),
        next = writer.next_index(),
        segments = writer.sealed.len() + 1,
        "WAL opened"
    );
    Ok(writer)
}

struct Listing {
    /// Segment files by first index, ascending.
    segments: Vec<(u64, PathBuf)>,
    spares: Vec<(u64, PathBuf)>,
    removed_tmp: bool,
}

fn list_dir(dir: &Path) -> Result<Listing> {
    let io = |e| WalError::io(format!("listing {}", dir.display()), e);
    let mut listing = Listing { segments: Vec::new(), spares: Vec::new(), removed_tmp: false };
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if let Some(first) = parse_segment_file_name(name) {
            listing.segments.push((first, path));
        } else if let Some(n) = parse_spare_file_name(name) {
            listing.spares.push((n, path));
        } else if name.starts_with("wal-") && name.ends_with(".tmp") {
            // A file whose creation was interrupted before its rename (I3).
            remove(&path)?;
            listing.removed_tmp = true;
        }
    }
    listing.segments.sort_unstable_by_key(|(first, _)| *first);
    listing.spares.sort_unstable_by_key(|(n, _)| *n);
    Ok(listing)
}

/// Reads a whole segment and validates its header and records.
fn scan_segment(path: &Path, name_first: u64) -> Result<Scanned> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let corrupt = |offset: u64, reason: String| WalError::Corrupt { segment: name.clone(), offset, reason };
    let data = fs::read(path).map_err(|e| WalError::io(format!("reading {}", path.display()), e))?;
    let first = decode_header(&data).map_err(|reason| corrupt(0, reason))?;
    if first != name_first {
        return Err(corrupt(0, format!("header says first index {first}, the file name {name_first}")));
    }
    if first == 0 {
        return Err(corrupt(0, "first index 0 (indexes start at 1)".into()));
    }
    let mut pos = HEADER_LEN as usize;
    let mut count = 0u64;
    let invalid = loop {
        match parse_record(&data, pos, first.saturating_add(count)) {
            Parsed::Record { next, .. } => {
                pos = next;
                count += 1;
            }
            Parsed::End => break None,
            Parsed::Invalid(reason) => break Some((pos as u64, reason)),
        }
    };
    Ok(Scanned {
        info: SegmentInfo { first, count, bytes: pos as u64, path: path.to_path_buf() },
        file_len: data.len() as u64,
        invalid,
    })
}

/// Refuses damage outside the tail of the newest segment (I5) and gaps between segments (I7).
fn check_segments(segments: &[Scanned]) -> Result<()> {
    let newest = segments.len().saturating_sub(1);
    for (i, s) in segments.iter().enumerate() {
        if let (true, Some((offset, reason))) = (i < newest, &s.invalid) {
            return Err(WalError::Corrupt {
                segment: s.info.name(),
                offset: *offset,
                reason: reason.clone(),
            });
        }
        if i < newest && s.info.count == 0 {
            return Err(WalError::Corrupt {
                segment: s.info.name(),
                offset: HEADER_LEN,
                reason: "a segment other than the newest holds no records".into(),
            });
        }
    }
    for pair in segments.windows(2) {
        let (a, b) = (&pair[0].info, &pair[1].info);
        if a.first.checked_add(a.count) != Some(b.first) {
            return Err(WalError::Corrupt {
                segment: b.name(),
                offset: 0,
                reason: format!(
                    "first index {} does not follow {}, whose records end at {}: records are missing",
                    b.first,
                    a.name(),
                    a.end().saturating_sub(1)
                ),
            });
        }
    }
    Ok(())
}

/// Opens the newest segment for appending, cutting off a torn or corrupt tail first (I4).
fn open_active(s: &Scanned) -> Result<File> {
    let path = &s.info.path;
    let io = |what: &str| {
        let context = format!("{what} {}", path.display());
        move |e| WalError::io(context, e)
    };
    let mut file = OpenOptions::new().write(true).open(path).map_err(io("opening"))?;
    if s.file_len > s.info.bytes {
        let (offset, reason) = s.invalid.clone().unwrap_or((s.info.bytes, String::new()));
        tracing::warn!(
            segment = %path.display(),
            offset,
            dropped_bytes = s.file_len - s.info.bytes,
            "truncating the WAL after its last valid record ({reason})"
        );
        file.set_len(s.info.bytes).map_err(io("truncating"))?;
    }
    // What recovery returns must be durable before new records are written after it: the previous process
    // may have died with these bytes only in the page cache.
    file.sync_all().map_err(io("fsync of"))?;
    file.seek(SeekFrom::End(0)).map_err(io("seeking in"))?;
    Ok(file)
}

fn is_valid_spare(path: &Path) -> bool {
    let mut header = Vec::new();
    let read = File::open(path).and_then(|f| f.take(HEADER_LEN + 1).read_to_end(&mut header));
    matches!(read, Ok(n) if n as u64 == HEADER_LEN) && decode_header(&header).is_ok()
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WalError::io(format!("deleting {}", path.display()), e)),
    }
}
