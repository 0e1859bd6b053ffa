//! The optimizer: rebuilds sealed segments in the background. It vacuums deleted points, merges small
//! segments and builds HNSW graphs (and quantized codes, when configured) over segments that are large
//! enough, then swaps the result in while searches go on. An indexed segment whose codes do not match
//! the configured quantization (after a collection update) is copied with new codes ("quantize").
//! One optimization runs at a time per process (builds use their own thread pool).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use grape_index::hnsw::{HnswGraph, HnswParams};
use grape_index::quantization::QuantizedVectors;
use grape_types::{CollectionConfig, Error, Result};
use parking_lot::Mutex;

use crate::engine::{empty_segment, segments_dir, ShardEngine};
use crate::segment::{open_segment, write_segment_with, BitSet, DenseVectors, Segment, SegmentId};

/// Bounds optimizations to one at a time in this process.
static OPTIMIZATION_SLOT: Mutex<()> = Mutex::new(());

/// Seconds without writes before the optimizer starts index builds (unless forced or the backlog is large).
const INDEX_DEBOUNCE_SECS: f64 = 1.0;

/// What one optimization will do.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub sources: Vec<SegmentId>,
    pub build_index: bool,
    /// Copy the one source as it is, with codes of the configured quantization (no vacuum, same graphs).
    pub requantize: bool,
    pub reason: &'static str,
}

#[derive(Debug, Clone)]
struct Stats {
    id: SegmentId,
    live: usize,
    deleted: usize,
    live_kb: usize,
    indexed: bool,
    /// Indexed, but its quantized codes differ from the configured quantization.
    stale_codes: bool,
}

fn stats(seg: &Arc<Segment>, config: &CollectionConfig) -> Stats {
    let d = seg.data.read();
    let stale_codes = d.is_indexed()
        && d.vectors
            .keys()
            .any(|name| d.quantized.get(name).map(|q| q.config()) != config.quantization_for(name));
    let len = d.len().max(1);
    Stats {
        id: seg.id,
        live: d.live_count(),
        deleted: d.deleted_count(),
        live_kb: d.vector_bytes() * d.live_count() / len / 1024,
        indexed: d.is_indexed(),
        stale_codes,
    }
}

impl ShardEngine {
    /// Decides the next optimization, if any. `force` ignores the write debounce.
    pub fn plan_optimization(&self, force: bool) -> Option<Plan> {
        let config = self.config();
        let opt = &config.optimizer_config;
        let index_kb = opt.indexing_threshold.unwrap_or(10_000);
        let max_kb = opt.max_segment_size.unwrap_or(crate::engine::DEFAULT_MAX_SEGMENT_KB).max(1);
        let target = match opt.default_segment_number {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()).max(2),
            n => n,
        };
        let wants_index = |kb: usize| index_kb > 0 && kb >= index_kb;
        let settled = force || self.idle_secs() >= INDEX_DEBOUNCE_SECS;
        let mut segs: Vec<Stats> = self.snapshot_set().iter().map(|s| stats(s, &config)).collect();

        // Segments that lost their last point are dropped outright.
        if let Some(s) = segs.iter().find(|s| s.live == 0) {
            return Some(Plan {
                sources: vec![s.id],
                build_index: false,
                requantize: false,
                reason: "empty",
            });
        }
        // Vacuum: many deleted points.
        for s in &segs {
            let ratio = s.deleted as f64 / (s.live + s.deleted).max(1) as f64;
            if s.deleted >= opt.vacuum_min_vector_number && ratio >= opt.deleted_threshold {
                let build_index = wants_index(s.live_kb);
                if !build_index || settled {
                    return Some(Plan {
                        sources: vec![s.id],
                        build_index,
                        requantize: false,
                        reason: "vacuum",
                    });
                }
            }
        }
        // Quantize: an indexed segment whose codes predate a quantization change.
        if let Some(s) = segs.iter().find(|s| s.stale_codes) {
            return Some(Plan {
                sources: vec![s.id],
                build_index: false,
                requantize: true,
                reason: "quantize",
            });
        }
        // Index: gather unindexed segments into one indexed segment of at most max_kb.
        segs.sort_by_key(|s| (s.live_kb, s.id));
        let plain: Vec<&Stats> = segs.iter().filter(|s| !s.indexed).collect();
        let plain_kb: usize = plain.iter().map(|s| s.live_kb).sum();
        if wants_index(plain_kb) && (settled || plain_kb >= max_kb) {
            let mut group = Vec::new();
            let mut kb = 0;
            for s in &plain {
                if !group.is_empty() && kb + s.live_kb > max_kb {
                    break;
                }
                kb += s.live_kb;
                group.push(s.id);
            }
            if wants_index(kb) {
                return Some(Plan { sources: group, build_index: true, requantize: false, reason: "index" });
            }
        }
        // Merge: too many segments; combine the smallest.
        if segs.len() > target {
            let mut group = Vec::new();
            let mut kb = 0;
            for s in &segs {
                if group.len() >= 2 && kb + s.live_kb > max_kb {
                    break;
                }
                kb += s.live_kb;
                group.push(s.id);
                if group.len() > segs.len() - target && group.len() >= 2 {
                    break;
                }
            }
            let build_index = wants_index(kb);
            if group.len() >= 2 && (!build_index || settled) {
                return Some(Plan { sources: group, build_index, requantize: false, reason: "merge" });
            }
        }
        None
    }

    /// Runs one optimization if there is one to do; returns whether it did anything.
    pub fn optimize_once(&self, force: bool, stop: &AtomicBool) -> Result<bool> {
        let _slot = OPTIMIZATION_SLOT.lock();
        let Some(plan) = self.plan_optimization(force) else { return Ok(false) };
        if stop.load(Ordering::Acquire) {
            return Ok(false);
        }
        tracing::debug!(shard = %self.dir().display(), ?plan, "optimizing");
        let id = self.allocate_segment_id();
        let result = self.run_plan(&plan, id, stop);
        if result.is_err() {
            self.pending_segments.lock().remove(&id);
            let _ = std::fs::remove_dir_all(segments_dir(self.dir()).join(id.to_string()));
        }
        result.map(|()| true)
    }

    fn run_plan(&self, plan: &Plan, id: SegmentId, stop: &AtomicBool) -> Result<()> {
        if plan.requantize {
            return self.requantize(plan.sources[0], id, stop);
        }
        let config = self.config();
        let all = self.snapshot_set();
        let sources: Vec<Arc<Segment>> =
            plan.sources.iter().filter_map(|sid| all.iter().find(|s| s.id == *sid).cloned()).collect();
        let mut data = empty_segment(&config);
        let mut origin = Vec::new();
        for (si, seg) in sources.iter().enumerate() {
            let src = seg.data.read();
            for offset in 0..src.len() as u32 {
                if src.deleted.get(offset) {
                    continue;
                }
                let payload = src.payload(offset)?;
                data.append(
                    src.ids[offset as usize],
                    src.versions[offset as usize],
                    &src.vectors_of(offset),
                    payload,
                )?;
                origin.push((si, offset));
            }
        }
        data.appendable = false;
        if data.is_empty() {
            // Nothing live is left: drop the sources instead of writing an empty segment (which the
            // next plan would pick up as "empty" again, forever).
            return self.swap_segments(&plan.sources, None, id, &origin);
        }
        if plan.build_index {
            let mut graphs = BTreeMap::new();
            for (name, store) in &data.vectors {
                if stop.load(Ordering::Acquire) {
                    return Err(grape_types::Error::Internal("optimizer stopped".into()));
                }
                let hnsw = config.hnsw_for(name);
                let params = HnswParams {
                    m: hnsw.m,
                    ef_construct: hnsw.ef_construct,
                    max_threads: hnsw.max_indexing_threads,
                    seed: id,
                };
                let stopped = || grape_types::Error::Internal("optimizer stopped".into());
                let mut graph = HnswGraph::build_cancellable(store, &|o| store.has(o), &params, stop)
                    .ok_or_else(stopped)?;
                let linked =
                    data.build_payload_links(&config, name, &mut graph, id, stop).ok_or_else(stopped)?;
                graphs.insert(name.clone(), (graph, linked));
            }
            for (name, (graph, linked)) in graphs {
                data.graphs.insert(name.clone(), graph);
                if !linked.is_empty() {
                    data.linked_fields.insert(name, linked);
                }
            }
            data.quantized = quantize(&config, &data.vectors, id, stop)?;
        }
        let dir = segments_dir(self.dir()).join(id.to_string());
        let all_offsets: Vec<u32> = (0..data.len() as u32).collect();
        crate::segment::write_segment(&dir, &data, &all_offsets)?;
        self.open_and_swap(&plan.sources, &dir, BitSet::default(), id, &origin)
    }

    /// Opens a written optimizer output, builds its payload indexes and swaps it in for `sources`.
    fn open_and_swap(
        &self,
        sources: &[SegmentId],
        dir: &std::path::Path,
        deleted: BitSet,
        id: SegmentId,
        origin: &[(usize, u32)],
    ) -> Result<()> {
        let config = self.config();
        let on_disk = |name: &str| config.params.vectors.get(name).is_some_and(|p| p.on_disk());
        let reopened = open_segment(dir, &on_disk, deleted)?;
        // Build the declared payload indexes before the segment serves, so no query waits for them.
        for (key, schema) in &config.payload_schema {
            reopened.field_index_for(key, schema);
        }
        self.swap_segments(sources, Some(reopened), id, origin)
    }

    /// Copies segment `source` (every offset, so its graphs stay valid) with codes of the configured
    /// quantization into segment `id`. The vectors are copied to RAM first so the source's lock is not
    /// held while quantizers train.
    fn requantize(&self, source: SegmentId, id: SegmentId, stop: &AtomicBool) -> Result<()> {
        let config = self.config();
        let seg = self
            .snapshot_set()
            .into_iter()
            .find(|s| s.id == source)
            .ok_or_else(|| Error::Internal("optimizer source vanished".into()))?;
        let copies: BTreeMap<String, DenseVectors> = {
            let src = seg.data.read();
            src.vectors
                .iter()
                .filter(|(name, _)| config.quantization_for(name).is_some())
                .map(|(name, store)| {
                    let mut copy = DenseVectors::new(store.dim(), store.distance(), store.datatype());
                    for o in 0..store.len() as u32 {
                        copy.push(&store.get_f32(o))?;
                    }
                    copy.set_absent(store.absent().clone());
                    Ok((name.clone(), copy))
                })
                .collect::<Result<_>>()?
        };
        let codes = quantize(&config, &copies, id, stop)?;
        drop(copies);
        let dir = segments_dir(self.dir()).join(id.to_string());
        let (deleted, origin) = {
            let src = seg.data.read();
            let all: Vec<u32> = (0..src.len() as u32).collect();
            write_segment_with(&dir, &src, &all, &codes)?;
            (src.deleted.clone(), all.iter().map(|&o| (0, o)).collect::<Vec<_>>())
        };
        self.open_and_swap(&[source], &dir, deleted, id, &origin)
    }
}

/// Quantized codes of every vector whose effective config asks for them.
fn quantize(
    config: &CollectionConfig,
    vectors: &BTreeMap<String, DenseVectors>,
    seed: u64,
    stop: &AtomicBool,
) -> Result<BTreeMap<String, QuantizedVectors>> {
    let mut out = BTreeMap::new();
    for (name, store) in vectors {
        let Some(q) = config.quantization_for(name) else { continue };
        if stop.load(Ordering::Acquire) {
            return Err(Error::Internal("optimizer stopped".into()));
        }
        out.insert(name.clone(), QuantizedVectors::build(q, store.distance(), store, seed)?);
    }
    Ok(out)
}
