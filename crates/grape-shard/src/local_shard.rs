//! A shard with its own write-ahead log: the storage of a collection in embedded and single-server mode.
//!
//! Write path: encode the operation, append it to the WAL (durable per the sync policy), then apply it to
//! the engine under the same lock, so WAL order is application order. A background worker flushes on an
//! interval (or when the appendable segment is full), truncates the WAL, and runs the optimizer.
//!
//! A *replica* (cluster mode, [`LocalShard::open_replica`]) has no WAL: the shard's Raft log is its
//! operation log, the replica only applies committed entries ([`LocalShard::apply`]) under their log
//! index, and recovery replays the Raft log from [`ShardEngine::persisted_op`] on.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
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

    fn wake(&self) {
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

    pub fn is_optimizing(&self) -> bool {
        self.optimizing.load(Ordering::Acquire)
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
        let stop2 = Arc::clone(&stop);
        let name = format!("grape-shard-{}", engine.dir().display());
        let handle = std::thread::Builder::new()
            .name(name.chars().rev().take(15).collect::<String>().chars().rev().collect())
            .spawn(move || worker_loop(&engine, wal.as_deref(), &rx, &stop2, &status, &optimizing));
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

fn worker_loop(
    engine: &ShardEngine,
    wal: Option<&Wal>,
    rx: &Receiver<Command>,
    stop: &AtomicBool,
    status: &Mutex<OptimizerStatus>,
    optimizing: &AtomicBool,
) {
    let mut last_flush = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Command::Wake) | Err(RecvTimeoutError::Timeout) => {}
        }
        if stop.load(Ordering::Acquire) {
            return;
        }
        let interval = Duration::from_secs(engine.config().optimizer_config.flush_interval_sec);
        let step = (|| -> Result<()> {
            if engine.take_seal_request() || last_flush.elapsed() >= interval {
                flush(engine, wal)?;
                last_flush = Instant::now();
            }
            optimizing.store(true, Ordering::Release);
            let r = (|| {
                while !stop.load(Ordering::Acquire) && engine.optimize_once(false, stop)? {
                    if let Some(wal) = wal {
                        wal.truncate_prefix(engine.persisted_op())?;
                    }
                }
                Ok(())
            })();
            optimizing.store(false, Ordering::Release);
            r
        })();
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
