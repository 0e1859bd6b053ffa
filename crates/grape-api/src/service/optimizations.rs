//! `GET /collections/{c}/optimizations`: the optimizer's running, planned and finished work over the
//! shards held here, in Qdrant's shape. A segment is named by a UUID made of its shard index and
//! segment id, and an optimization by the UUID of the segment it writes.

use std::time::SystemTime;

use grape::tracker::{OptimizationStatus, OptimizationsReport, PlannedOptimization, TrackedOptimization};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::Service;

/// Finished optimizations reported when `completed_limit` is not given.
pub const DEFAULT_COMPLETED_LIMIT: usize = 16;

/// Query parameters: `with` = comma-separated `queued`, `completed`, `idle_segments`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct OptimizationsParams {
    #[serde(default)]
    pub with: Option<String>,
    #[serde(default)]
    pub completed_limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct OptimizationsResponse {
    pub summary: OptimizationsSummary,
    pub running: Vec<Optimization>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<Vec<PendingOptimization>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<Vec<Optimization>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_segments: Option<Vec<SegmentInfo>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct OptimizationsSummary {
    pub queued_optimizations: usize,
    pub queued_segments: usize,
    pub queued_points: usize,
    pub idle_segments: usize,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Optimization {
    #[schemars(with = "String")]
    pub uuid: uuid::Uuid,
    pub optimizer: String,
    pub status: TrackerStatus,
    pub segments: Vec<SegmentInfo>,
    pub progress: ProgressTree,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrackerStatus {
    Optimizing,
    Done,
    Cancelled(String),
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SegmentInfo {
    #[schemars(with = "String")]
    pub uuid: uuid::Uuid,
    pub points_count: usize,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PendingOptimization {
    pub optimizer: String,
    pub segments: Vec<SegmentInfo>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ProgressTree {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_sec: Option<f64>,
}

/// What `with` asked for.
#[derive(Debug, Clone, Copy, Default)]
struct Wanted {
    queued: bool,
    completed: bool,
    idle_segments: bool,
}

fn wanted(with: Option<&str>) -> Result<Wanted, ApiError> {
    let mut w = Wanted::default();
    for field in with.unwrap_or("").split(',').map(str::trim) {
        match field {
            "" => {}
            "queued" => w.queued = true,
            "completed" => w.completed = true,
            "idle_segments" => w.idle_segments = true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "Bad request: Unknown field in 'with' parameter: {other}"
                )))
            }
        }
    }
    Ok(w)
}

fn segment(shard: u32, (id, points): (u64, usize)) -> SegmentInfo {
    SegmentInfo { uuid: uuid::Uuid::from_u64_pair(u64::from(shard), id), points_count: points }
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn optimization(shard: u32, t: &TrackedOptimization) -> Optimization {
    let duration = t.finished.and_then(|f| f.duration_since(t.started).ok()).map(|d| d.as_secs_f64());
    Optimization {
        uuid: uuid::Uuid::from_u64_pair(u64::from(shard), t.output),
        optimizer: t.optimizer.to_string(),
        status: match &t.status {
            OptimizationStatus::Optimizing => TrackerStatus::Optimizing,
            OptimizationStatus::Done => TrackerStatus::Done,
            OptimizationStatus::Cancelled(why) => TrackerStatus::Cancelled(why.clone()),
            OptimizationStatus::Error(e) => TrackerStatus::Error(e.clone()),
        },
        segments: t.sources.iter().map(|&s| segment(shard, s)).collect(),
        progress: ProgressTree {
            name: t.optimizer.to_string(),
            started_at: Some(rfc3339(t.started)),
            finished_at: t.finished.map(rfc3339),
            duration_sec: duration,
        },
    }
}

/// Qdrant's answer from the reports of each shard (by shard index).
fn response(
    reports: &[(u32, OptimizationsReport)],
    w: Wanted,
    completed_limit: usize,
) -> OptimizationsResponse {
    let mut summary = OptimizationsSummary::default();
    let mut running = Vec::new();
    let mut queued = Vec::new();
    let mut completed = Vec::new();
    let mut idle = Vec::new();
    for (shard, r) in reports {
        let shard = *shard;
        running.extend(r.running.iter().map(|t| optimization(shard, t)));
        completed.extend(r.completed.iter().map(|t| (t.finished, optimization(shard, t))));
        if let Some(PlannedOptimization { optimizer, sources }) = &r.queued {
            summary.queued_optimizations += 1;
            summary.queued_segments += sources.len();
            summary.queued_points += sources.iter().map(|s| s.1).sum::<usize>();
            queued.push(PendingOptimization {
                optimizer: optimizer.to_string(),
                segments: sources.iter().map(|&s| segment(shard, s)).collect(),
            });
        }
        let busy = |id: u64| {
            r.running.iter().any(|t| t.sources.iter().any(|s| s.0 == id))
                || r.queued.as_ref().is_some_and(|q| q.sources.iter().any(|s| s.0 == id))
        };
        for &s in r.segments.iter().filter(|s| !busy(s.0)) {
            summary.idle_segments += 1;
            idle.push(segment(shard, s));
        }
    }
    // Newest first across shards.
    completed.sort_by_key(|c| std::cmp::Reverse(c.0));
    OptimizationsResponse {
        summary,
        running,
        queued: w.queued.then_some(queued),
        completed: w.completed.then(|| completed.into_iter().take(completed_limit).map(|(_, o)| o).collect()),
        idle_segments: w.idle_segments.then_some(idle),
    }
}

impl Service {
    /// The optimizer's work on a collection's shards held here.
    pub async fn optimizations(
        &self,
        collection: String,
        params: OptimizationsParams,
    ) -> Result<OptimizationsResponse, ApiError> {
        let w = wanted(params.with.as_deref())?;
        let limit = params.completed_limit.unwrap_or(DEFAULT_COMPLETED_LIMIT);
        let reports = self.with_collection(collection, |_, c| Ok(c.optimizations())).await?;
        Ok(response(&reports, w, limit))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn tracked(
        output: u64,
        sources: Vec<(u64, usize)>,
        status: OptimizationStatus,
        at: u64,
    ) -> TrackedOptimization {
        let started = SystemTime::UNIX_EPOCH + Duration::from_secs(at);
        let finished = (status != OptimizationStatus::Optimizing).then_some(started + Duration::from_secs(2));
        TrackedOptimization { output, optimizer: "indexing", sources, started, finished, status }
    }

    #[test]
    fn summary_and_selections() {
        let report = OptimizationsReport {
            running: Some(tracked(9, vec![(3, 100)], OptimizationStatus::Optimizing, 50)),
            completed: vec![
                tracked(8, vec![(1, 5), (2, 6)], OptimizationStatus::Done, 40),
                tracked(7, vec![(0, 1)], OptimizationStatus::Error("boom".into()), 30),
            ],
            queued: Some(PlannedOptimization { optimizer: "merge", sources: vec![(4, 10), (5, 20)] }),
            segments: vec![(3, 100), (4, 10), (5, 20), (6, 7), (10, 0)],
        };
        let all = Wanted { queued: true, completed: true, idle_segments: true };
        let r = response(&[(0, report.clone())], all, 1);
        assert_eq!(
            r.summary,
            OptimizationsSummary {
                queued_optimizations: 1,
                queued_segments: 2,
                queued_points: 30,
                idle_segments: 2
            }
        );
        assert_eq!(r.running.len(), 1);
        assert_eq!(r.running[0].status, TrackerStatus::Optimizing);
        assert_eq!(r.running[0].uuid, uuid::Uuid::from_u64_pair(0, 9));
        let completed = r.completed.unwrap();
        assert_eq!(completed.len(), 1, "completed_limit");
        assert_eq!(completed[0].progress.duration_sec, Some(2.0));
        assert_eq!(r.idle_segments.unwrap().iter().map(|s| s.points_count).collect::<Vec<_>>(), vec![7, 0]);
        let json = serde_json::to_value(response(&[(0, report)], Wanted::default(), 5)).unwrap();
        assert!(json.get("queued").is_none() && json.get("completed").is_none());
        assert_eq!(
            serde_json::to_value(TrackerStatus::Error("x".into())).unwrap(),
            serde_json::json!({"error": "x"})
        );
        assert_eq!(serde_json::to_value(TrackerStatus::Done).unwrap(), serde_json::json!("done"));
        assert!(wanted(Some("queued,bogus")).is_err());
    }
}
