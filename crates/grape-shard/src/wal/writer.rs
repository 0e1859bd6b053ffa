//! The mutable state of an open log: the sealed segments, the active segment appends go to, and the spare
//! files. Every method runs under the log's state mutex; see docs/format.md, "Write-ahead log", for the
//! invariants (I1..) that the order of file operations here maintains.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{
    encode_header, encode_record, frame_len, fsync_dir, segment_file_name, spare_file_name, tmp_file_name,
    HEADER_LEN, SPARE_FIRST_INDEX,
};
use super::WalError;

type Result<T, E = WalError> = std::result::Result<T, E>;

/// One segment file as the writer knows it.
#[derive(Debug, Clone)]
pub(super) struct SegmentInfo {
    /// Index of the first record (also in the file name and header).
    pub first: u64,
    /// Number of valid records.
    pub count: u64,
    /// Length of the valid part of the file: header plus records.
    pub bytes: u64,
    pub path: PathBuf,
}

impl SegmentInfo {
    /// Index the record after the last one of this segment gets.
    pub fn end(&self) -> u64 {
        self.first + self.count
    }

    pub fn name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

/// State of an open log.
#[derive(Debug)]
pub(super) struct Writer {
    pub dir: PathBuf,
    pub capacity: u64,
    /// Full segments, oldest first. Each holds at least one record (I6).
    pub sealed: VecDeque<SegmentInfo>,
    /// The segment appends go to; the newest one.
    pub active: SegmentInfo,
    /// Open handle of the active segment, positioned at its end. Shared with fsyncs done outside the lock.
    pub file: Arc<File>,
    /// Spare segment files, ready to be renamed into the next segment.
    pub spares: Vec<PathBuf>,
    pub next_spare: u64,
    /// Every record with an index <= this is durable.
    pub synced: u64,
    /// Set after a failed write or fsync: the file's contents are unknown, so the log takes no more writes.
    pub failure: Option<String>,
    pub closed: bool,
}

impl Writer {
    /// Fails if the log was closed or broken by an earlier I/O failure.
    pub fn check_usable(&self) -> Result<()> {
        if self.closed {
            return Err(WalError::Closed);
        }
        if let Some(reason) = &self.failure {
            return Err(WalError::io(
                format!(
                    "log in {} is unusable after an earlier failure; reopen it to recover",
                    self.dir.display()
                ),
                std::io::Error::other(reason.clone()),
            ));
        }
        Ok(())
    }

    /// Records that the log is broken and builds the error to return.
    pub fn fail(&mut self, context: String, source: std::io::Error) -> WalError {
        tracing::error!(dir = %self.dir.display(), "{context}: {source}; the WAL takes no more writes");
        self.failure = Some(format!("{context}: {source}"));
        WalError::io(context, source)
    }

    pub fn next_index(&self) -> u64 {
        self.active.end()
    }

    pub fn first_index(&self) -> Option<u64> {
        self.sealed.iter().chain(std::iter::once(&self.active)).find(|s| s.count > 0).map(|s| s.first)
    }

    pub fn last_index(&self) -> Option<u64> {
        self.next_index().checked_sub(1).filter(|&i| i > 0)
    }

    pub fn disk_bytes(&self) -> u64 {
        let segments: u64 = self.sealed.iter().map(|s| s.bytes).sum::<u64>() + self.active.bytes;
        segments + self.spares.len() as u64 * HEADER_LEN
    }

    /// Writes `records` with consecutive indexes, rotating to a new segment whenever the next record would
    /// overflow the active one (a record never spans segments). Returns the first and last index written.
    /// Sizes must have been checked by the caller. Does not fsync, except the segments it seals.
    ///
    /// Any failure breaks the log: part of the batch may be in the file, and later records must not be
    /// written after records the caller was told failed.
    pub fn append(&mut self, records: &[&[u8]]) -> Result<(u64, u64)> {
        let next = self.next_index();
        if next.checked_add(records.len() as u64).is_none() {
            return Err(WalError::InvalidRequest(format!("record indexes after {next} overflow u64")));
        }
        let result = self.append_inner(records);
        if let (Err(e), None) = (&result, &self.failure) {
            tracing::error!(dir = %self.dir.display(), "WAL append failed: {e}; the WAL takes no more writes");
            self.failure = Some(e.to_string());
        }
        result
    }

    fn append_inner(&mut self, records: &[&[u8]]) -> Result<(u64, u64)> {
        let first = self.next_index();
        let mut buf = Vec::new();
        let mut pending = 0u64;
        for record in records {
            let frame = frame_len(record.len());
            let used = self.active.bytes + buf.len() as u64;
            if self.active.count + pending > 0 && used + frame > self.capacity {
                self.write_pending(&mut buf, &mut pending)?;
                self.rotate()?;
            }
            encode_record(&mut buf, self.next_index() + pending, record);
            pending += 1;
        }
        self.write_pending(&mut buf, &mut pending)?;
        Ok((first, self.next_index() - 1))
    }

    fn write_pending(&mut self, buf: &mut Vec<u8>, pending: &mut u64) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = (&*self.file).write_all(buf) {
            return Err(self.fail(format!("writing to {}", self.active.path.display()), e));
        }
        self.active.bytes += buf.len() as u64;
        self.active.count += *pending;
        buf.clear();
        *pending = 0;
        Ok(())
    }

    /// Seals the active segment (which must hold records) and starts a new, empty one after it. The sealed
    /// segment is fsynced first, whatever the sync policy, so that only the newest segment can ever have a
    /// torn tail (I5).
    pub fn rotate(&mut self) -> Result<()> {
        debug_assert!(self.active.count > 0, "rotating an empty segment");
        if let Err(e) = self.file.sync_data() {
            return Err(self.fail(format!("fsync of {}", self.active.path.display()), e));
        }
        self.synced = self.synced.max(self.next_index() - 1);
        let (info, file) = self.create_segment(self.next_index())?;
        let sealed = std::mem::replace(&mut self.active, info);
        self.sealed.push_back(sealed);
        self.file = Arc::new(file);
        Ok(())
    }

    /// Creates the empty segment `wal-<first>.log`; see [`create_segment`].
    pub fn create_segment(&mut self, first: u64) -> Result<(SegmentInfo, File)> {
        create_segment(&self.dir, &mut self.spares, first)
    }

    /// Creates spare files until there are `want`.
    pub fn replenish_spares(&mut self, want: usize) -> Result<()> {
        while self.spares.len() < want {
            let path = self.dir.join(spare_file_name(self.next_spare));
            self.next_spare += 1;
            write_new_file(&self.dir, &path, &encode_header(SPARE_FIRST_INDEX))?;
            self.spares.push(path);
        }
        Ok(())
    }

    /// Removes from the log every segment whose records all have index <= `up_to`, sealing the active
    /// segment first if it is such a segment. Returns the removed segments, oldest first; the caller deletes
    /// their files in that order (I8).
    pub fn truncate_prefix(&mut self, up_to: u64) -> Result<Vec<SegmentInfo>> {
        if self.active.count > 0 && self.next_index() - 1 <= up_to {
            self.rotate()?;
        }
        let mut removed = Vec::new();
        while let Some(oldest) = self.sealed.front() {
            if oldest.end() - 1 > up_to {
                break;
            }
            removed.extend(self.sealed.pop_front());
        }
        Ok(removed)
    }

    /// Makes `next` the index of the next record of an empty log: a new empty segment `wal-<next>.log` is
    /// made durable, then the old empty one is deleted (I9).
    pub fn reset_next_index(&mut self, next: u64) -> Result<()> {
        if next == 0 {
            return Err(WalError::InvalidRequest("record indexes start at 1; cannot reset to 0".into()));
        }
        if next == self.next_index() {
            return Ok(());
        }
        if let Some(first) = self.first_index() {
            return Err(WalError::InvalidRequest(format!(
                "cannot reset the next index to {next}: the log holds records {first}..={}",
                self.next_index() - 1
            )));
        }
        debug_assert!(self.sealed.is_empty());
        let (info, file) = self.create_segment(next)?;
        let old = std::mem::replace(&mut self.active, info);
        self.file = Arc::new(file);
        self.synced = next - 1;
        // Until the old segment is gone, a restart may still see it (I9); the in-memory state must not
        // run ahead of what a restart would see, so a failure here breaks the log.
        if let Err(e) = fs::remove_file(&old.path) {
            return Err(self.fail(format!("deleting {}", old.path.display()), e));
        }
        if let Err(e) = fsync_dir(&self.dir) {
            return Err(self.fail(format!("fsync of {}", self.dir.display()), e));
        }
        Ok(())
    }
}

/// Creates the empty segment `wal-<first>.log` in `dir`, durable (header and directory entry) before this
/// returns (I3). Uses one of `spares` when there is one. Returns the segment and a handle at its end.
pub(super) fn create_segment(
    dir: &Path,
    spares: &mut Vec<PathBuf>,
    first: u64,
) -> Result<(SegmentInfo, File)> {
    let path = dir.join(segment_file_name(first));
    let header = encode_header(first);
    while let Some(spare) = spares.pop() {
        match reuse_spare(dir, &spare, &path, &header) {
            Ok(file) => return Ok((SegmentInfo { first, count: 0, bytes: HEADER_LEN, path }, file)),
            Err(e) => {
                tracing::warn!(spare = %spare.display(), "cannot use spare WAL segment: {e}");
                if let Err(e) = fs::remove_file(&spare) {
                    tracing::warn!(spare = %spare.display(), "cannot remove spare WAL segment: {e}");
                }
            }
        }
    }
    let file = write_new_file(dir, &path, &header)?;
    Ok((SegmentInfo { first, count: 0, bytes: HEADER_LEN, path }, file))
}

/// Writes `header` to `<path>.tmp`, fsyncs it, renames it to `path` and fsyncs the directory, so the file
/// appears under its name only complete. Returns a write handle positioned at the end.
fn write_new_file(dir: &Path, path: &Path, header: &[u8]) -> Result<File> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(tmp_file_name(&name));
    let io = |what: &str, p: &Path| {
        let context = format!("{what} {}", p.display());
        move |e| WalError::io(context, e)
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io("creating", &tmp))?;
    file.write_all(header).map_err(io("writing", &tmp))?;
    file.sync_data().map_err(io("fsync of", &tmp))?;
    fs::rename(&tmp, path).map_err(io("renaming to", path))?;
    fsync_dir(dir).map_err(io("fsync of", dir))?;
    Ok(file)
}

/// Turns a spare file into the segment at `path`: header rewritten and fsynced, then renamed.
fn reuse_spare(dir: &Path, spare: &Path, path: &Path, header: &[u8]) -> Result<File> {
    let io = |what: &str, p: &Path| {
        let context = format!("{what} {}", p.display());
        move |e| WalError::io(context, e)
    };
    let mut file = OpenOptions::new().write(true).open(spare).map_err(io("opening", spare))?;
    file.set_len(HEADER_LEN).map_err(io("truncating", spare))?;
    file.seek(SeekFrom::Start(0)).map_err(io("seeking in", spare))?;
    file.write_all(header).map_err(io("writing", spare))?;
    file.sync_data().map_err(io("fsync of", spare))?;
    fs::rename(spare, path).map_err(io("renaming to", path))?;
    fsync_dir(dir).map_err(io("fsync of", dir))?;
    Ok(file)
}
