//! What a shard's optimizer is doing and has done: the running optimization, the last finished ones and
//! the next one planned (Qdrant's `GET /collections/{c}/optimizations` reports them).

use std::collections::VecDeque;
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::engine::ShardEngine;
use crate::segment::SegmentId;

/// Finished optimizations kept per shard.
pub const COMPLETED_KEPT: usize = 64;

/// How an optimization ended (or that it has not yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptimizationStatus {
    Optimizing,
    Done,
    /// Stopped before its result was swapped in (shutdown, or vectors added or dropped meanwhile).
    Cancelled(String),
    Error(String),
}

/// One optimization: the segment it builds from its sources.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedOptimization {
    /// The segment the optimization writes (its id once swapped in).
    pub output: SegmentId,
    /// The optimizer that planned it: `vacuum`, `indexing`, `merge`, `config_mismatch`, `drop_vectors`.
    pub optimizer: &'static str,
    /// Source segments with their live points when it started.
    pub sources: Vec<(SegmentId, usize)>,
    pub started: SystemTime,
    pub finished: Option<SystemTime>,
    pub status: OptimizationStatus,
}

/// An optimization the optimizer would start next.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedOptimization {
    pub optimizer: &'static str,
    pub sources: Vec<(SegmentId, usize)>,
}

/// The optimizer's state of one shard.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizationsReport {
    pub running: Option<TrackedOptimization>,
    /// Newest first.
    pub completed: Vec<TrackedOptimization>,
    /// The next optimization the optimizer plans, unless it is the running one.
    pub queued: Option<PlannedOptimization>,
    /// Every segment (sealed and appendable) with its live points.
    pub segments: Vec<(SegmentId, usize)>,
}

#[derive(Default)]
pub(crate) struct Tracker {
    running: Mutex<Option<TrackedOptimization>>,
    completed: Mutex<VecDeque<TrackedOptimization>>,
}

impl Tracker {
    pub(crate) fn start(&self, output: SegmentId, optimizer: &'static str, sources: Vec<(SegmentId, usize)>) {
        *self.running.lock() = Some(TrackedOptimization {
            output,
            optimizer,
            sources,
            started: SystemTime::now(),
            finished: None,
            status: OptimizationStatus::Optimizing,
        });
    }

    pub(crate) fn finish(&self, status: OptimizationStatus) {
        let Some(mut done) = self.running.lock().take() else { return };
        done.finished = Some(SystemTime::now());
        done.status = status;
        let mut completed = self.completed.lock();
        completed.push_front(done);
        completed.truncate(COMPLETED_KEPT);
    }
}

/// Qdrant's name of the optimizer behind a plan.
pub(crate) fn optimizer_name(reason: &str) -> &'static str {
    match reason {
        "index" => "indexing",
        "merge" => "merge",
        "quantize" => "config_mismatch",
        "drop vectors" => "drop_vectors",
        _ => "vacuum",
    }
}

impl ShardEngine {
    /// What the optimizer is doing, did lately, and would do next.
    pub fn optimizations(&self) -> OptimizationsReport {
        let running = self.tracker.running.lock().clone();
        let completed = self.tracker.completed.lock().iter().cloned().collect();
        let segments: Vec<(SegmentId, usize)> =
            self.with_segments(|set| set.all().map(|s| (s.id, s.data.read().live_count())).collect());
        let live = |id: SegmentId| segments.iter().find(|s| s.0 == id).map_or(0, |s| s.1);
        let busy = |id: &SegmentId| running.as_ref().is_some_and(|r| r.sources.iter().any(|s| s.0 == *id));
        let queued =
            self.plan_optimization(false).filter(|plan| !plan.sources.iter().any(busy)).map(|plan| {
                PlannedOptimization {
                    optimizer: optimizer_name(plan.reason),
                    sources: plan.sources.iter().map(|&id| (id, live(id))).collect(),
                }
            });
        OptimizationsReport { running, completed, queued, segments }
    }
}
