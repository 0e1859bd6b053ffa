//! The optimizer: rebuilds sealed segments in the background. It vacuums deleted points, merges small
//! segments and builds HNSW graphs (and quantized codes, when configured) over segments that are large
//! enough, then swaps the result in while searches go on. An indexed segment whose codes do not match
//! the configured quantization (after a collection update) is copied with new codes ("quantize"), one
//! whose payload links do not match the declared payload indexes with new links ("links").
//! One optimization runs at a time per process (builds use their own thread pool).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use grape_index::hnsw::{HnswGraph, HnswParams};
use grape_index::quantization::QuantizedVectors;
use grape_types::{CollectionConfig, Error, Result};
use parking_lot::Mutex;

use crate::engine::{empty_segment, segments_dir, ShardEngine};
use crate::segment::{
    open_segment, write_segment_with, BitSet, DenseVectors, Segment, SegmentData, SegmentId,
};
use crate::tracker::{optimizer_name, OptimizationStatus};

/// Bounds optimizations to one at a time in this process.
static OPTIMIZATION_SLOT: Mutex<()> = Mutex::new(());

/// Seconds without writes before the optimizer starts index builds (unless forced or the backlog is large).
pub(crate) const INDEX_DEBOUNCE_SECS: f64 = 1.0;

/// What one optimization will do.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub sources: Vec<SegmentId>,
    pub build_index: bool,
    /// Copy the one source as it is, with codes of the configured quantization (no vacuum, same graphs).
    pub requantize: bool,
    /// Copy the one source as it is, with payload links rebuilt for the declared indexes (same main
    /// graphs and codes).
    pub relink: bool,
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
    /// Its files hold vectors the collection dropped.
    holds_dropped: bool,
    /// Indexed, but its payload links do not match the declared indexes (see `relink`).
    stale_links: bool,
}

/// Whether the codes of vector `name` in a segment differ from the configured quantization.
fn stale_codes(d: &SegmentData, config: &CollectionConfig, name: &str) -> bool {
    d.quantized.get(name).map(|q| q.config()) != config.quantization_for(name)
}

fn stats(seg: &Arc<Segment>, config: &CollectionConfig) -> Stats {
    let d = seg.data.read();
    let stale_codes = d.is_indexed() && d.vectors.keys().any(|name| stale_codes(&d, config, name));
    let len = d.len().max(1);
    Stats {
        id: seg.id,
        live: d.live_count(),
        deleted: d.deleted_count(),
        live_kb: d.vector_bytes() * d.live_count() / len / 1024,
        indexed: d.is_indexed(),
        stale_codes,
        holds_dropped: !d.dropped.is_empty(),
        stale_links: d.is_indexed() && d.links_out_of_date(config),
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
            0 => cpu_count(),
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
                relink: false,
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
                        relink: false,
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
                relink: false,
                reason: "quantize",
            });
        }
        // Drop vectors: rewrite a segment whose files still hold dropped vectors, so their data goes.
        if let Some(s) = segs.iter().find(|s| s.holds_dropped) {
            return Some(Plan {
                sources: vec![s.id],
                build_index: false,
                requantize: true,
                relink: false,
                reason: "drop vectors",
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
                return Some(Plan {
                    sources: group,
                    build_index: true,
                    requantize: false,
                    relink: false,
                    reason: "index",
                });
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
                return Some(Plan {
                    sources: group,
                    build_index,
                    requantize: false,
                    relink: false,
                    reason: "merge",
                });
            }
        }
        // Links: an indexed segment whose payload links predate an index change (declared after its
        // graph was built, dropped, or `enable_hnsw` / `payload_m` changed). Waits for writes to settle,
        // like index builds.
        if let Some(s) = segs.iter().find(|s| s.stale_links).filter(|_| settled) {
            return Some(Plan {
                sources: vec![s.id],
                build_index: false,
                requantize: false,
                relink: true,
                reason: "links",
            });
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
        let epoch = self.schema_epoch.load(Ordering::Acquire);
        let sources = self.with_segments(|set| {
            set.sealed
                .iter()
                .filter(|s| plan.sources.contains(&s.id))
                .map(|s| (s.id, s.data.read().live_count()))
                .collect()
        });
        self.tracker.start(id, optimizer_name(plan.reason), sources);
        let result = self.run_plan(&plan, id, stop, epoch);
        self.tracker.finish(match &result {
            Ok(true) => OptimizationStatus::Done,
            Ok(false) => OptimizationStatus::Cancelled("vectors were added or dropped meanwhile".into()),
            Err(_) if stop.load(Ordering::Acquire) => OptimizationStatus::Cancelled("stopped".into()),
            Err(e) => OptimizationStatus::Error(e.to_string()),
        });
        if !matches!(result, Ok(true)) {
            // Failed, or outdated by a vector added or dropped meanwhile (the next plan starts over).
            self.pending_segments.lock().remove(&id);
            let _ = std::fs::remove_dir_all(segments_dir(self.dir()).join(id.to_string()));
        }
        result.map(|_| true)
    }

    /// Runs a plan; false when its result was discarded (see [`ShardEngine::swap_segments`]).
    fn run_plan(&self, plan: &Plan, id: SegmentId, stop: &AtomicBool, epoch: u64) -> Result<bool> {
        if plan.requantize {
            return self.requantize(plan.sources[0], id, stop, epoch);
        }
        if plan.relink {
            return self.relink(plan.sources[0], id, stop, epoch);
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
            return self.swap_segments(&plan.sources, None, id, &origin, epoch);
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
        self.open_and_swap(&plan.sources, &dir, BitSet::default(), id, &origin, epoch)
    }

    /// Opens a written optimizer output, builds its payload indexes and swaps it in for `sources`.
    fn open_and_swap(
        &self,
        sources: &[SegmentId],
        dir: &std::path::Path,
        deleted: BitSet,
        id: SegmentId,
        origin: &[(usize, u32)],
        epoch: u64,
    ) -> Result<bool> {
        let config = self.config();
        let on_disk = |name: &str| config.params.vectors.get(name).is_some_and(|p| p.on_disk());
        let reopened = open_segment(dir, &on_disk, deleted)?;
        // Build the declared payload indexes before the segment serves, so no query waits for them.
        for (key, schema) in &config.payload_schema {
            reopened.field_index_for(key, schema);
        }
        self.swap_segments(sources, Some(reopened), id, origin, epoch)
    }

    /// Copies segment `source` (every offset, so its graphs stay valid) into segment `id`, without the
    /// vectors it dropped and with codes of the configured quantization (codes that still match are
    /// kept). The vectors to re-quantize are copied to RAM first so the source's lock is not held while
    /// quantizers train.
    fn requantize(&self, source: SegmentId, id: SegmentId, stop: &AtomicBool, epoch: u64) -> Result<bool> {
        let config = self.config();
        let seg = self.source_segment(source)?;
        let copies: BTreeMap<String, DenseVectors> = {
            let src = seg.data.read();
            src.vectors
                .iter()
                .filter(|(name, _)| {
                    stale_codes(&src, &config, name) && config.quantization_for(name).is_some()
                })
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
            let codes_of = |name: &str| match stale_codes(&src, &config, name) {
                true => codes.get(name),
                false => src.quantized.get(name),
            };
            write_segment_with(&dir, &src, &all, &codes_of)?;
            (src.deleted.clone(), all.iter().map(|&o| (0, o)).collect::<Vec<_>>())
        };
        self.open_and_swap(&[source], &dir, deleted, id, &origin, epoch)
    }

    /// The sealed segment `id`, the source of a copy.
    fn source_segment(&self, id: SegmentId) -> Result<Arc<Segment>> {
        self.snapshot_set()
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| Error::Internal("optimizer source vanished".into()))
    }

    /// Copies segment `source` (every offset, so its graphs and codes stay valid) into segment `id`
    /// with payload links rebuilt for the declared indexes. The copy is opened from the source's files
    /// (sealed segment files never change; vectors memory-mapped), so the live segment is not locked
    /// while the links are built.
    fn relink(&self, source: SegmentId, id: SegmentId, stop: &AtomicBool, epoch: u64) -> Result<bool> {
        let config = self.config();
        let seg = self.source_segment(source)?;
        let mut copy =
            open_segment(&segments_dir(self.dir()).join(source.to_string()), &|_| true, BitSet::default())?;
        let mut graphs = std::mem::take(&mut copy.graphs);
        copy.linked_fields.clear();
        for (name, graph) in &mut graphs {
            let linked = copy
                .build_payload_links(&config, name, graph, id, stop)
                .ok_or_else(|| Error::Internal("optimizer stopped".into()))?;
            if !linked.is_empty() {
                copy.linked_fields.insert(name.clone(), linked);
            }
        }
        copy.graphs = graphs;
        let dir = segments_dir(self.dir()).join(id.to_string());
        let all: Vec<u32> = (0..copy.len() as u32).collect();
        crate::segment::write_segment(&dir, &copy, &all)?;
        drop(copy);
        let deleted = seg.data.read().deleted.clone();
        let origin: Vec<(usize, u32)> = all.iter().map(|&o| (0, o)).collect();
        self.open_and_swap(&[source], &dir, deleted, id, &origin, epoch)
    }
}

/// The machine's parallelism, at least 2, read once: `available_parallelism` reads cgroup files on each
/// call, and every shard plans an optimization each time its worker wakes.
fn cpu_count() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()).max(2))
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use grape_types::operation::PointWrite;
    use grape_types::{
        CollectionConfig, CreateCollection, Distance, Filter, HnswConfigDiff, Operation,
        OptimizersConfigDiff, PointId, SearchRequest, VectorParams, VectorsConfig,
    };
    use serde_json::json;

    use crate::segment::LinkedField;
    use crate::ShardEngine;

    const N: usize = 2000;
    /// 16-d f32 rows: a 1 KB `full_scan_threshold` is 16 points, the least points of a linked value.
    const DIM: usize = 16;

    fn config(indexes: &[(&str, serde_json::Value)]) -> CollectionConfig {
        let mut c = CreateCollection::new(VectorsConfig::Single(VectorParams::new(DIM, Distance::Euclid)));
        c.hnsw_config =
            Some(HnswConfigDiff { m: Some(8), full_scan_threshold: Some(1), ..Default::default() });
        c.optimizers_config =
            Some(OptimizersConfigDiff { indexing_threshold: Some(1), ..Default::default() });
        let mut config = c.into_config().unwrap();
        for (key, schema) in indexes {
            config.payload_schema.insert(key.to_string(), serde_json::from_value(schema.clone()).unwrap());
        }
        config
    }

    /// Point `i`: a pseudo-random vector, `g` = i mod 4 (500 points each) and `tag` one of five letters
    /// (400 each, `c` 390), except ten points tagged `z` (too few for links).
    fn points() -> Operation {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        Operation::Upsert(
            (0..N)
                .map(|i| {
                    let vector: Vec<f32> = (0..DIM).map(|_| next()).collect();
                    let tag = if i % 200 == 7 {
                        "z".to_string()
                    } else {
                        ["a", "b", "c", "d", "e"][i % 5].to_string()
                    };
                    PointWrite {
                        id: PointId::Num(i as u64),
                        vectors: [(String::new(), grape_types::Vector::Dense(vector))].into(),
                        payload: json!({"g": i % 4, "tag": tag}).as_object().cloned(),
                    }
                })
                .collect(),
        )
    }

    fn optimize(engine: &ShardEngine) -> Vec<&'static str> {
        let never = AtomicBool::new(false);
        engine.flush().unwrap();
        let mut reasons = Vec::new();
        while let Some(plan) = engine.plan_optimization(true) {
            reasons.push(plan.reason);
            assert!(engine.optimize_once(true, &never).unwrap());
        }
        reasons
    }

    /// Linked fields of the one sealed segment, and the sizes of the traversal sets of `filters`.
    fn links(engine: &ShardEngine, filters: &[&str]) -> (Vec<LinkedField>, Vec<Option<usize>>) {
        let segments = engine.snapshot_set();
        assert_eq!(segments.len(), 1);
        let data = segments[0].data.read();
        assert!(data.is_indexed());
        let schema = engine.config().payload_schema;
        let covers = filters
            .iter()
            .map(|f| data.linked_cover(&Filter::from_expression(f).unwrap(), &schema, "").map(|c| c.len()))
            .collect();
        (data.linked_fields.get("").cloned().unwrap_or_default(), covers)
    }

    fn field(key: &str, kind: &str) -> LinkedField {
        LinkedField { key: key.into(), kind: serde_json::from_value(json!(kind)).unwrap(), min_points: 16 }
    }

    /// Filtered searches return only passing points, and agree with the exact search on most.
    fn check_search(engine: &ShardEngine, filter: &str) {
        let filter = Filter::from_expression(filter).unwrap();
        let (mut found, mut total) = (0, 0);
        for q in 0..20 {
            let query: Vec<f32> = (0..DIM).map(|d| ((q * 31 + d * 7) % 17) as f32 / 17.0).collect();
            let mut req = SearchRequest::new(query, 10);
            req.filter = Some(filter.clone());
            req.params.hnsw_ef = Some(64);
            let hits = engine.search(&req).unwrap();
            req.params.exact = true;
            let truth = engine.search(&req).unwrap();
            assert_eq!(truth.len(), 10);
            total += truth.len();
            found += truth.iter().filter(|t| hits.iter().any(|h| h.id == t.id)).count();
        }
        assert!(found as f64 / total as f64 >= 0.9, "recall {found} / {total}");
    }

    const FILTERS: [&str; 4] = ["g = 1", "tag = \"b\"", "tag = \"z\"", "tag IN [\"a\", \"c\"]"];

    /// Two indexes declared before the build (integer and keyword): the values of both get payload
    /// links, and a filter on either is searched through them; a value with fewer than
    /// `full_scan_threshold` points has none (exact plan). The links survive a reopen.
    #[test]
    fn two_indexes_both_get_links() {
        let dir = tempfile::tempdir().unwrap();
        let indexes = [("g", json!("integer")), ("tag", json!("keyword"))];
        let engine = ShardEngine::open(dir.path(), config(&indexes)).unwrap();
        engine.apply(1, &points()).unwrap();
        assert_eq!(optimize(&engine), ["index"]);
        let expected = (
            vec![field("g", "integer"), field("tag", "keyword")],
            vec![Some(500), Some(400), None, Some(790)],
        );
        assert_eq!(links(&engine, &FILTERS), expected);
        for f in FILTERS {
            check_search(&engine, f);
        }
        drop(engine);
        let engine = ShardEngine::open(dir.path(), config(&indexes)).unwrap();
        assert_eq!(links(&engine, &FILTERS), expected);
        assert!(optimize(&engine).is_empty());
    }

    /// An index declared after the graph was built gets its links from the optimizer's "links" plan
    /// (the main graph is kept); dropping an index or setting `enable_hnsw: false` drops its links.
    #[test]
    fn index_declared_later_gets_links() {
        let dir = tempfile::tempdir().unwrap();
        let engine = ShardEngine::open(dir.path(), config(&[("g", json!("integer"))])).unwrap();
        engine.apply(1, &points()).unwrap();
        assert_eq!(optimize(&engine), ["index"]);
        assert_eq!(
            links(&engine, &FILTERS),
            (vec![field("g", "integer")], vec![Some(500), None, None, None])
        );

        engine.set_config(config(&[("g", json!("integer")), ("tag", json!("keyword"))]));
        engine.apply(2, &Operation::Delete(vec![PointId::Num(1)])).unwrap();
        assert_eq!(optimize(&engine), ["links"]);
        let both = vec![field("g", "integer"), field("tag", "keyword")];
        assert_eq!(links(&engine, &FILTERS), (both.clone(), vec![Some(500), Some(400), None, Some(790)]));
        for f in FILTERS {
            check_search(&engine, f);
        }
        // The source's deletion carries over to the copy.
        let gone = engine.retrieve(&[PointId::Num(1)], &Default::default(), &Default::default()).unwrap();
        assert!(gone.is_empty());

        engine.set_config(config(&[
            ("g", json!("integer")),
            ("tag", json!({"type": "keyword", "enable_hnsw": false})),
        ]));
        assert_eq!(optimize(&engine), ["links"]);
        assert_eq!(
            links(&engine, &FILTERS),
            (vec![field("g", "integer")], vec![Some(500), None, None, None])
        );
        engine.set_config(config(&[("tag", json!("keyword"))]));
        assert_eq!(optimize(&engine), ["links"]);
        assert_eq!(links(&engine, &FILTERS).0, vec![field("tag", "keyword")]);
    }
}
