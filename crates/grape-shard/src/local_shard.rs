//! A shard with its own write-ahead log: the storage of a collection in embedded and single-server mode.
//!
//! Write path: encode the operation, append it to the WAL (durable per the sync policy), then apply it to
//! the engine under the same lock, so WAL order is application order. A background worker flushes on an
//! interval (or when the appendable segment is full), truncates the WAL, and runs the optimizer. It sleeps
//! until a write or a change wakes it, or until time makes work due (writes settled for the optimizer,
//! the flush interval over with something unflushed): an idle shard uses no CPU.
//!
//! A *replica* (cluster mode, [`LocalShard::open_replica`]) has no WAL: the shard's Raft log is its
//! operation log, the replica only applies committed entries ([`LocalShard::apply`]) under their log
//! index, and recovery replays the Raft log from [`ShardEngine::persisted_op`] on.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use grape_types::{CollectionConfig, Error, OpNum, Operation, Result};
use parking_lot::Mutex;

use crate::engine::ShardEngine;
use crate::op_codec::{decode_operation, encode_operation};
use crate::wal::{SyncPolicy, Wal, WalOptions};

/// Options of a local shard that are not part of the collection config.
#[derive(Debug, Clone)]
pub struct ShardOptions {
    pub wal_sync: SyncPolicy,
    /// Run the background flush/optimizer worker.
    pub background: bool,
}

impl Default for ShardOptions {
    fn default() -> Self {
        ShardOptions { wal_sync: SyncPolicy::Always, background: true }
    }
}

enum Command {
    Wake,
    Stop,
}

struct Worker {
    tx: Sender<Command>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// Optimizer state as reported by health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptimizerStatus {
    Ok,
    Error(String),
}

pub struct LocalShard {
    engine: Arc<ShardEngine>,
    /// `None` for a replica, whose operation log is its Raft log.
    wal: Option<Arc<Wal>>,
    /// Orders WAL appends with their application; held by writers and by close.
    write: Mutex<bool>,
    worker: Mutex<Option<Worker>>,
    status: Arc<Mutex<OptimizerStatus>>,
    optimizing: Arc<AtomicBool>,
    /// Times the background worker woke up (for a write, a change, or a deadline).
    wakeups: Arc<AtomicU64>,
}

impl LocalShard {
    /// Opens or creates a shard in `dir` and recovers it: segments from the manifest, then every WAL
    /// record after the persisted op_num is applied again.
    pub fn open(dir: &Path, config: CollectionConfig, options: ShardOptions) -> Result<LocalShard> {
        let engine = Arc::new(ShardEngine::open(dir, config.clone())?);
        let wal_options = WalOptions {
            segment_capacity: (config.wal_config.wal_capacity_mb as u64).max(1) << 20,
            segments_ahead: config.wal_config.wal_segments_ahead,
            sync: options.wal_sync.clone(),
        };
        let wal = Arc::new(Wal::open(&dir.join("wal"), wal_options)?);
        let persisted = engine.persisted_op();
        if wal.first_index().is_none() && wal.last_index().unwrap_or(0) < persisted {
            wal.reset_next_index(persisted + 1)?;
        }
        let mut replayed = 0usize;
        for (op_num, bytes) in wal.read_from(persisted + 1)? {
            engine.apply(op_num, &decode_operation(&bytes)?)?;
            replayed += 1;
        }
        tracing::debug!(shard = %dir.display(), persisted, replayed, "shard recovered");
        Ok(Self::start(engine, Some(wal), options))
    }

    /// Opens or creates a replica in `dir`: segments only, no WAL. The caller replays its log from
    /// `engine().persisted_op() + 1` on.
    pub fn open_replica(dir: &Path, config: CollectionConfig, options: ShardOptions) -> Result<LocalShard> {
        let engine = Arc::new(ShardEngine::open(dir, config)?);
        Ok(Self::start(engine, None, options))
    }

    fn start(engine: Arc<ShardEngine>, wal: Option<Arc<Wal>>, options: ShardOptions) -> LocalShard {
        let shard = LocalShard {
            engine,
            wal,
            write: Mutex::new(false),
            worker: Mutex::new(None),
            status: Arc::new(Mutex::new(OptimizerStatus::Ok)),
            optimizing: Arc::new(AtomicBool::new(false)),
            wakeups: Arc::new(AtomicU64::new(0)),
        };
        if options.background {
            shard.start_worker();
        }
        shard
    }

    pub fn engine(&self) -> &Arc<ShardEngine> {
        &self.engine
    }

    /// Logs and applies one operation; returns its op_num. Durable when this returns (per sync policy).
    pub fn update(&self, op: &Operation) -> Result<OpNum> {
        let Some(wal) = &self.wal else {
            return Err(Error::Internal("a replica takes writes through its replica group".into()));
        };
        let bytes = encode_operation(op)?;
        let closed = self.write.lock();
        if *closed {
            return Err(Error::Closed);
        }
        let op_num = wal.append(&bytes)?;
        self.engine.apply(op_num, op)?;
        drop(closed);
        self.wake();
        Ok(op_num)
    }

    /// Applies an operation that is durable elsewhere (a replica's committed Raft entry) under its
    /// log index. Replaying an index at or below the last applied one changes nothing.
    pub fn apply(&self, op_num: OpNum, op: &Operation) -> Result<()> {
        let closed = self.write.lock();
        if *closed {
            return Err(Error::Closed);
        }
        self.engine.apply(op_num, op)?;
        drop(closed);
        self.wake();
        Ok(())
    }

    /// Changes the shard's parameters and lets its worker plan with them.
    pub fn set_config(&self, config: CollectionConfig) {
        self.engine.set_config(config);
        self.wake();
    }

    /// Asks the background worker to look for work now (after a change that did not come through
    /// [`LocalShard::update`] or [`LocalShard::apply`], e.g. payload indexes synced with a configuration).
    pub fn wake(&self) {
        if let Some(w) = self.worker.lock().as_ref() {
            let _ = w.tx.try_send(Command::Wake);
        }
    }

    /// Persists all applied operations into segments and truncates the WAL behind them.
    pub fn flush(&self) -> Result<OpNum> {
        flush(&self.engine, self.wal.as_deref())
    }

    /// Runs optimizations in the calling thread until none is left (ignores the write debounce).
    pub fn optimize_now(&self) -> Result<()> {
        self.flush()?;
        let never = AtomicBool::new(false);
        self.optimizing.store(true, Ordering::Release);
        let result = (|| {
            while self.engine.optimize_once(true, &never)? {}
            Ok(())
        })();
        self.optimizing.store(false, Ordering::Release);
        self.flush()?;
        result
    }

    pub fn optimizer_status(&self) -> OptimizerStatus {
        self.status.lock().clone()
    }

    /// How often the background worker has woken up since the shard was opened.
    pub fn worker_wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }

    /// Whether optimizations run now or are due: a seal of the appendable segment (requested once it
    /// holds an indexing threshold's worth of vectors) or an optimization waiting for writes to settle
    /// (the optimizer's debounce) counts when this shard's worker will run it, so a collection is not
    /// reported ready (green) between an upload and the end of its index build.
    pub fn is_optimizing(&self) -> bool {
        self.optimizing.load(Ordering::Acquire)
            || (self.worker.lock().is_some()
                && (self.engine.seal_requested.load(Ordering::Acquire)
                    || self.engine.plan_optimization(true).is_some()))
    }

    pub fn wal_bytes(&self) -> u64 {
        self.wal.as_ref().map_or(0, |w| w.disk_bytes())
    }

    /// Waits for in-flight writes, stops the worker, flushes. Further writes fail with `Error::Closed`.
    pub fn close(&self) -> Result<()> {
        {
            let mut closed = self.write.lock();
            if *closed {
                return Ok(());
            }
            *closed = true;
        }
        if let Some(w) = self.worker.lock().take() {
            w.stop.store(true, Ordering::Release);
            let _ = w.tx.send(Command::Stop);
            let _ = w.handle.join();
        }
        self.flush()?;
        match &self.wal {
            Some(wal) => wal.sync().map_err(Error::from),
            None => Ok(()),
        }
    }

    fn start_worker(&self) {
        let (tx, rx) = crossbeam_channel::bounded(16);
        let stop = Arc::new(AtomicBool::new(false));
        let engine = Arc::clone(&self.engine);
        let wal = self.wal.clone();
        let status = Arc::clone(&self.status);
        let optimizing = Arc::clone(&self.optimizing);
        let wakeups = Arc::clone(&self.wakeups);
        let stop2 = Arc::clone(&stop);
        let name = format!("grape-shard-{}", engine.dir().display());
        let handle = std::thread::Builder::new()
            .name(name.chars().rev().take(15).collect::<String>().chars().rev().collect())
            .spawn(move || {
                let state = WorkerState { status: &status, optimizing: &optimizing, wakeups: &wakeups };
                worker_loop(&engine, wal.as_deref(), &rx, &stop2, &state)
            });
        match handle {
            Ok(handle) => *self.worker.lock() = Some(Worker { tx, stop, handle }),
            Err(e) => *self.status.lock() = OptimizerStatus::Error(format!("cannot start worker: {e}")),
        }
    }
}

fn flush(engine: &ShardEngine, wal: Option<&Wal>) -> Result<OpNum> {
    let persisted = engine.flush()?;
    if let Some(wal) = wal {
        wal.truncate_prefix(persisted)?;
    }
    Ok(persisted)
}

/// How long a worker whose last step failed waits before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// How long the worker may sleep before time alone gives it work: until writes have settled for the
/// optimizer's debounce, else until the flush interval ends when something is unflushed. `None`: nothing
/// is due until a write, a configuration change or close wakes it, so an idle shard costs no CPU.
fn next_wake(engine: &ShardEngine, since_flush: Duration, failed: bool) -> Option<Duration> {
    if failed {
        return Some(RETRY_AFTER);
    }
    let unsettled = crate::optimizer::INDEX_DEBOUNCE_SECS - engine.idle_secs();
    if unsettled > 0.0 {
        return Some(Duration::from_secs_f64(unsettled) + Duration::from_millis(10));
    }
    let interval = Duration::from_secs(engine.config().optimizer_config.flush_interval_sec);
    engine.needs_flush().then(|| interval.saturating_sub(since_flush))
}

/// What the worker reports to its shard.
struct WorkerState<'a> {
    status: &'a Mutex<OptimizerStatus>,
    optimizing: &'a AtomicBool,
    wakeups: &'a AtomicU64,
}

fn worker_loop(
    engine: &ShardEngine,
    wal: Option<&Wal>,
    rx: &Receiver<Command>,
    stop: &AtomicBool,
    state: &WorkerState,
) {
    let WorkerState { status, optimizing, wakeups } = state;
    let mut last_flush = Instant::now();
    let mut failed = false;
    loop {
        let command = match next_wake(engine, last_flush.elapsed(), failed) {
            Some(wait) => rx.recv_timeout(wait),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match command {
            Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Command::Wake) | Err(RecvTimeoutError::Timeout) => {}
        }
        if stop.load(Ordering::Acquire) {
            return;
        }
        wakeups.fetch_add(1, Ordering::Relaxed);
        let interval = Duration::from_secs(engine.config().optimizer_config.flush_interval_sec);
        // Set before the seal request is taken, so that a seal in progress still counts as work due.
        optimizing.store(true, Ordering::Release);
        let step = (|| -> Result<()> {
            if engine.take_seal_request() || last_flush.elapsed() >= interval {
                flush(engine, wal)?;
                last_flush = Instant::now();
            }
            while !stop.load(Ordering::Acquire) && engine.optimize_once(false, stop)? {
                if let Some(wal) = wal {
                    wal.truncate_prefix(engine.persisted_op())?;
                }
            }
            Ok(())
        })();
        optimizing.store(false, Ordering::Release);
        failed = step.is_err();
        match step {
            Ok(()) => *status.lock() = OptimizerStatus::Ok,
            Err(e) if stop.load(Ordering::Acquire) => tracing::debug!("optimizer stopped: {e}"),
            Err(e) => {
                tracing::error!(shard = %engine.dir().display(), "background work failed: {e}");
                *status.lock() = OptimizerStatus::Error(e.to_string());
            }
        }
    }
}

impl Drop for LocalShard {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!("closing shard on drop failed: {e}");
        }
    }
}
