//! The shard's write-ahead log: opaque byte records, each with a monotonically increasing index (the
//! op_num), stored in segment files with a CRC per record.
//!
//! The byte layout, the durability guarantees of each [`SyncPolicy`] and what recovery repairs or refuses
//! are specified in docs/format.md, "Write-ahead log"; the invariants cited as I1.. are numbered there.
//!
//! ```no_run
//! # fn main() -> Result<(), grape_shard::wal::WalError> {
//! use grape_shard::wal::{Wal, WalOptions};
//! let wal = Wal::open(std::path::Path::new("/tmp/shard/wal"), WalOptions::default())?;
//! let first = wal.append(b"operation 1")?; // durable when this returns (SyncPolicy::Always)
//! assert_eq!(wal.read_from(first)?, vec![(first, b"operation 1".to_vec())]);
//! wal.truncate_prefix(first)?; // operation 1 is persisted elsewhere now
//! # Ok(())
//! # }
//! ```

mod error;
mod format;
mod reader;
mod recovery;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

pub use error::WalError;
pub use format::MAX_RECORD_SIZE;

use format::fsync_dir;
use writer::Writer;

type Result<T, E = WalError> = std::result::Result<T, E>;

/// When appended records are made durable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// fsync (fdatasync) before append returns. Concurrent appenders share fsyncs (group commit).
    #[default]
    Always,
    /// A background thread fsyncs every N ms (at least 1); append returns after write(2) only, so a machine
    /// crash may lose the last N ms of acknowledged records (a process crash loses nothing).
    IntervalMs(u64),
    /// Never fsync (tests, bulk loads); the OS decides. Segments are still fsynced when sealed (I5).
    Never,
}

/// Configuration of a [`Wal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// Size in bytes at which a segment is sealed and a new one started. A record larger than this gets a
    /// segment of its own. Default 32 MiB.
    pub segment_capacity: u64,
    /// Number of spare (empty, header-only) segment files kept ready; the next segment is made by renaming
    /// one. Spares are replenished on open and by [`Wal::truncate_prefix`], not on the append path.
    /// Default 0.
    pub segments_ahead: usize,
    pub sync: SyncPolicy,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_capacity: 32 << 20, segments_ahead: 0, sync: SyncPolicy::Always }
    }
}

/// State shared by the log's handle and its background fsync thread.
struct Shared {
    dir: PathBuf,
    options: WalOptions,
    state: Mutex<Writer>,
    /// Serialises fsyncs, so that appenders waiting for durability share one (group commit). Lock order:
    /// `truncate_lock`, then `sync_lock`, then `state`.
    sync_lock: Mutex<()>,
    /// Serialises prefix truncations and resets, so segment files are deleted oldest first (I8).
    truncate_lock: Mutex<()>,
}

impl Shared {
    /// Makes every record with index <= `target` durable; `None` means every record written so far.
    fn sync_through(&self, target: Option<u64>) -> Result<()> {
        let _serial = self.sync_lock.lock();
        let (file, written, path) = {
            let state = self.state.lock();
            state.check_usable()?;
            let written = state.next_index() - 1;
            if state.synced >= target.unwrap_or(written) {
                return Ok(());
            }
            (Arc::clone(&state.file), written, state.active.path.clone())
        };
        // Every record <= `written` is in this file or in a sealed segment, which was fsynced when sealed.
        if let Err(e) = file.sync_data() {
            return Err(self.state.lock().fail(format!("fsync of {}", path.display()), e));
        }
        let mut state = self.state.lock();
        state.synced = state.synced.max(written);
        Ok(())
    }
}

/// Stop signal and handle of the [`SyncPolicy::IntervalMs`] thread.
struct Syncer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: JoinHandle<()>,
}

impl Syncer {
    fn start(shared: Arc<Shared>, interval: Duration) -> Result<Syncer> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("grape-wal-sync".into())
            .spawn(move || run_syncer(&shared, interval, &signal))
            .map_err(|e| WalError::io("starting the WAL fsync thread", e))?;
        Ok(Syncer { stop, handle })
    }

    fn stop(self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock() = true;
        cvar.notify_all();
        if self.handle.join().is_err() {
            tracing::error!("the WAL fsync thread panicked");
        }
    }
}

fn run_syncer(shared: &Shared, interval: Duration, stop: &(Mutex<bool>, Condvar)) {
    let (lock, cvar) = stop;
    let mut stopped = lock.lock();
    loop {
        let deadline = Instant::now() + interval;
        while !*stopped && Instant::now() < deadline {
            cvar.wait_until(&mut stopped, deadline);
        }
        if *stopped {
            return;
        }
        if let Err(e) = MutexGuard::unlocked(&mut stopped, || shared.sync_through(None)) {
            tracing::error!(dir = %shared.dir.display(), "background WAL fsync failed, stopping: {e}");
            return;
        }
    }
}

/// A segmented write-ahead log of opaque records. `Send + Sync`: appends are serialised by an internal
/// mutex; reads and fsyncs run outside it.
pub struct Wal {
    shared: Arc<Shared>,
    syncer: Mutex<Option<Syncer>>,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir)
            .field("first_index", &state.first_index())
            .field("next_index", &state.next_index())
            .field("sync", &self.shared.options.sync)
            .finish()
    }
}

impl Wal {
    /// Opens or creates the log in `dir`. Recovery scans the segments in order and validates each record's
    /// length, index and CRC; a torn or corrupt tail of the newest segment is cut off (that write was never
    /// acknowledged, I4); damage anywhere else, or a missing segment, is [`WalError::Corrupt`]. The log is
    /// positioned to append after the last valid record.
    pub fn open(dir: &Path, options: WalOptions) -> Result<Wal> {
        let writer = recovery::recover(dir, &options)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            options,
            state: Mutex::new(writer),
            sync_lock: Mutex::new(()),
            truncate_lock: Mutex::new(()),
        });
        let syncer = match shared.options.sync {
            SyncPolicy::IntervalMs(ms) => {
                Some(Syncer::start(Arc::clone(&shared), Duration::from_millis(ms.max(1)))?)
            }
            SyncPolicy::Always | SyncPolicy::Never => None,
        };
        Ok(Wal { shared, syncer: Mutex::new(syncer) })
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Appends one record and returns its index. With [`SyncPolicy::Always`] the record is durable when
    /// this returns.
    pub fn append(&self, record: &[u8]) -> Result<u64> {
        self.append_batch(&[record])
    }

    /// Appends several records with one fsync and returns the index of the first; the others follow
    /// consecutively. An empty batch appends nothing and returns the index the next record will get.
    /// A batch is not atomic across a crash: recovery may keep any prefix of an unacknowledged batch.
    /// After an error the log takes no more writes (the file's contents are unknown); reopen it.
    pub fn append_batch(&self, records: &[&[u8]]) -> Result<u64> {
        if let Some(r) = records.iter().find(|r| r.len() > MAX_RECORD_SIZE) {
            return Err(WalError::RecordTooLarge { size: r.len(), max: MAX_RECORD_SIZE });
        }
        let (first, last) = {
            let mut state = self.shared.state.lock();
            state.check_usable()?;
            if records.is_empty() {
                return Ok(state.next_index());
            }
            state.append(records)?
        };
        if self.shared.options.sync == SyncPolicy::Always {
            self.shared.sync_through(Some(last))?;
        }
        Ok(first)
    }

    /// Makes everything appended so far durable, whatever the policy.
    pub fn sync(&self) -> Result<()> {
        self.shared.sync_through(None)
    }

    /// Index of the first record still stored; `None` if the log holds no record.
    pub fn first_index(&self) -> Option<u64> {
        self.shared.state.lock().first_index()
    }

    /// Index of the last record appended, even if it was truncated since; `None` if nothing was ever
    /// appended. After [`Wal::reset_next_index`]`(n)` this is `n - 1`.
    pub fn last_index(&self) -> Option<u64> {
        self.shared.state.lock().last_index()
    }

    /// The records with index >= `from`, in order, read through the files (the log's mutex is held only
    /// to open them). Works while appends continue: records appended after the call started may or may
    /// not appear. Records below [`Wal::first_index`] were truncated and are not returned. Every record
    /// is loaded into memory; the log holds only what has not been flushed, so this is bounded by the
    /// flush interval.
    pub fn read_from(&self, from: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let segments = {
            let state = self.shared.state.lock();
            if state.closed {
                return Err(WalError::Closed);
            }
            reader::open_segments(&state, from)?
        };
        reader::read_records(segments, from)
    }

    /// Declares that every record with index <= `up_to` is persisted elsewhere: deletes the segment files
    /// that hold only such records, oldest first. The segment being written is never deleted; if all its
    /// records are covered it is sealed first and a new empty segment started, so that truncating
    /// everything leaves no records. The next index never goes backwards, even across restarts (I10).
    pub fn truncate_prefix(&self, up_to: u64) -> Result<()> {
        let _serial = self.shared.truncate_lock.lock();
        let removed = {
            let mut state = self.shared.state.lock();
            state.check_usable()?;
            let removed = state.truncate_prefix(up_to)?;
            // Off the append path: a good time to prepare the next segment files.
            if let Err(e) = state.replenish_spares(self.shared.options.segments_ahead) {
                tracing::warn!(dir = %self.shared.dir.display(), "cannot create spare WAL segment: {e}");
            }
            removed
        };
        let dir = &self.shared.dir;
        for (i, segment) in removed.iter().enumerate() {
            // One directory fsync per deletion keeps the deleted set a prefix after a crash (I8).
            let deleted = match fs::remove_file(&segment.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => fsync_dir(dir),
            };
            if let Err(e) = deleted {
                // The rest stay on disk; give them back so a later call deletes them in order.
                let mut state = self.shared.state.lock();
                for s in removed[i..].iter().rev() {
                    state.sealed.push_front(s.clone());
                }
                return Err(WalError::io(format!("deleting {}", segment.path.display()), e));
            }
            tracing::debug!(segment = %segment.path.display(), "WAL segment deleted");
        }
        Ok(())
    }

    /// Sets the index the next append gets. Only for a log that holds no records (used when restoring a
    /// shard snapshot at op N: next = N + 1); otherwise [`WalError::InvalidRequest`], unless `next` already
    /// is the next index. May lower the next index: the caller replaces the state the old indexes belonged
    /// to. Crash-atomic: after a crash the log continues either at the old or at the new index (I9).
    pub fn reset_next_index(&self, next: u64) -> Result<()> {
        let _truncating = self.shared.truncate_lock.lock();
        let _syncing = self.shared.sync_lock.lock();
        let mut state = self.shared.state.lock();
        state.check_usable()?;
        state.reset_next_index(next)
    }

    /// Bytes the log's files occupy on disk (segments up to their last valid record, and spares).
    pub fn disk_bytes(&self) -> u64 {
        self.shared.state.lock().disk_bytes()
    }

    /// Stops the fsync thread, makes everything durable (unless the policy is [`SyncPolicy::Never`]) and
    /// closes the log; later calls return [`WalError::Closed`]. Closing twice is fine.
    pub fn close(&self) -> Result<()> {
        if let Some(syncer) = self.syncer.lock().take() {
            syncer.stop();
        }
        if self.shared.state.lock().closed {
            return Ok(());
        }
        let synced = if self.shared.options.sync == SyncPolicy::Never {
            Ok(())
        } else {
            self.shared.sync_through(None)
        };
        self.shared.state.lock().closed = true;
        synced
    }
}

#[cfg(test)]
impl Wal {
    /// Every record with an index <= this is durable.
    fn synced_index(&self) -> u64 {
        self.shared.state.lock().synced
    }

    /// Lets a test observe that the fsync thread released the shared state.
    fn shared_weak(&self) -> std::sync::Weak<Shared> {
        Arc::downgrade(&self.shared)
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Some(syncer) = self.syncer.get_mut().take() {
            syncer.stop();
            if let Err(e) = self.shared.sync_through(None) {
                if !matches!(e, WalError::Closed) {
                    tracing::error!(dir = %self.shared.dir.display(), "final WAL fsync failed: {e}");
                }
            }
        }
    }
}
