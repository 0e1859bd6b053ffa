//! Nearest-neighbour search within one segment: through the HNSW graph, or exactly. A vector with
//! quantized codes is searched on the codes (graph or scan, as planned) for `top × oversampling`
//! candidates, which are then re-scored with the original vectors (unless the request says otherwise);
//! `params.exact` searches the original vectors only.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use grape_index::{QueryScorer, ScoredOffset};
use grape_types::QuantizationSearchParams;

use super::{DenseVectors, FilterCheck, SegmentData};

/// Entry points a search restricted to a covering set takes from the set (besides the greedy descent's
/// result): evenly spread, so every part of the set is reachable.
const ENTRIES: usize = 16;

/// Up to `n` elements of `set`, evenly spread.
fn spread(set: &[u32], n: usize) -> Vec<u32> {
    if set.len() <= n {
        return set.to_vec();
    }
    (0..n).map(|i| set[i * set.len() / n]).collect()
}

/// How to search one segment.
#[derive(Debug, Clone, Copy)]
pub struct SegmentSearch<'a> {
    pub vector: &'a str,
    /// Preprocessed query (normalised for cosine).
    pub query: &'a [f32],
    pub top: usize,
    pub ef: usize,
    pub exact: bool,
    /// Segments with less vector data than this many kilobytes are searched exactly.
    pub full_scan_threshold_kb: usize,
    /// Only points passing this filter (checked during graph traversal and the exact scan).
    pub filter: Option<&'a FilterCheck<'a>>,
    /// Use of quantized codes, when the vector has them (validated: oversampling >= 1).
    pub quantization: QuantizationSearchParams,
}

impl SegmentData {
    /// Top `top` live points by internal score, best first (ties: smaller offset first).
    pub fn search(&self, req: &SegmentSearch<'_>) -> Vec<ScoredOffset> {
        let Some(store) = self.vectors.get(req.vector) else { return Vec::new() };
        if req.top == 0 || self.live_count() == 0 {
            return Vec::new();
        }
        // `exact` means the original vectors, as in Qdrant; small or filtered segments are still scanned
        // on their codes.
        let Some(codes) = self.quantized.get(req.vector).filter(|_| !req.quantization.ignore && !req.exact)
        else {
            return self.search_scored(req, store, &store.query_scorer(req.query), req.top);
        };
        let oversampling = req.quantization.oversampling.unwrap_or(1.0).max(1.0);
        // Bounded by the points there are (a huge factor must not size buffers by it).
        let wanted = ((req.top as f64 * oversampling).ceil() as usize).min(self.len()).max(req.top);
        let mut found = self.search_scored(req, store, &*codes.query_scorer(req.query), wanted);
        if req.quantization.rescore.unwrap_or_else(|| codes.default_rescore()) {
            let offsets: Vec<u32> = found.iter().map(|f| f.offset).collect();
            let mut scores = vec![0f32; offsets.len()];
            store.rescore(req.query, &offsets, &mut scores);
            found.iter_mut().zip(scores).for_each(|(f, s)| f.score = s);
            found.sort_by(|a, b| b.cmp(a));
        }
        found.truncate(req.top);
        found
    }

    /// Top `top` live points by the scores of `scorer` (original or quantized vectors of `store`).
    fn search_scored(
        &self,
        req: &SegmentSearch<'_>,
        store: &DenseVectors,
        scorer: &dyn QueryScorer,
        top: usize,
    ) -> Vec<ScoredOffset> {
        let ef = req.ef.max(top);
        let small = store.data_bytes() / 1024 < req.full_scan_threshold_kb;
        // A filter that few points pass makes graph traversal wander (the graph's links mostly lead to
        // rejected points), so such searches scan the passing points exactly, as Qdrant plans them.
        let scan_points = super::scan_points(store, req.full_scan_threshold_kb);
        // Payload indexes give a superset of the passing points; when it is small, score just those.
        let candidates = req.filter.and_then(|f| self.candidates(f));
        let check = if candidates.as_ref().is_some_and(|c| c.exact) { None } else { req.filter };
        if let Some(c) = candidates.as_ref().filter(|c| c.offsets.len() < scan_points || req.exact || small) {
            return self.exact_search_among(scorer, store, top, check, &c.offsets);
        }
        if let (Some(c), Some(graph)) = (&candidates, self.graphs.get(req.vector)) {
            // Many candidates: non-candidates are rejected by a bit test before any payload is read.
            let mut allowed = super::BitSet::default();
            c.offsets.iter().for_each(|&o| allowed.set(o));
            let accept = |o| allowed.get(o) && store.has(o) && self.passes(o, check);
            // Covered by payload links: expand only the covering value's points. Not when the cover is
            // more than half the graph: an expansion there scores most of its main neighbours plus its
            // payload links (about twice an unfiltered expansion), while the whole-graph traversal
            // needs at most about twice the expansions of an unfiltered search to fill its beam.
            // (A cover holds every candidate, so many candidates rule it out before it is looked up.)
            let half = graph.num_points() / 2;
            let cover = req
                .filter
                .filter(|_| c.offsets.len() <= half)
                .and_then(|f| f.schema.and_then(|schema| self.linked_cover(f.filter, schema, req.vector)))
                .filter(|cover| cover.len() <= half);
            if let Some(cover) = cover {
                let entries = spread(&cover, ENTRIES);
                if cover.len() == c.offsets.len() {
                    // Nothing deleted in the set: the candidates are the set.
                    return graph.search_within(scorer, top, ef, &|o| allowed.get(o), &accept, &entries);
                }
                let mut within = super::BitSet::default();
                cover.iter().for_each(|&o| within.set(o));
                return graph.search_within(scorer, top, ef, &|o| within.get(o), &accept, &entries);
            }
            // Otherwise traverse the whole graph, keeping the candidates that pass.
            return graph.search(scorer, top, ef, &accept);
        }
        let selective =
            candidates.is_none() && req.filter.is_some_and(|f| self.estimate_passing(f) < scan_points);
        match self.graphs.get(req.vector) {
            Some(graph) if !req.exact && !small && !selective => {
                let deleted = &self.deleted;
                graph.search(scorer, top, ef, &|o| {
                    !deleted.get(o) && store.has(o) && self.passes(o, req.filter)
                })
            }
            _ => self.exact_search(scorer, store, top, req.filter),
        }
    }

    /// Estimated number of live points passing `filter`, from an evenly spread sample of offsets.
    /// (Payload indexes will give exact cardinalities; until then a sample of a few hundred points.)
    fn estimate_passing(&self, filter: &FilterCheck<'_>) -> usize {
        const SAMPLE: usize = 512;
        let (len, live) = (self.len(), self.live_count());
        if live <= SAMPLE {
            return self.lookup.values().filter(|&&o| self.passes(o, Some(filter))).count();
        }
        let (mut seen, mut passed) = (0usize, 0usize);
        for k in 0..SAMPLE {
            let offset = (k * len / SAMPLE) as u32;
            if self.deleted.get(offset) {
                continue;
            }
            seen += 1;
            passed += usize::from(self.passes(offset, Some(filter)));
        }
        if seen == 0 {
            return live;
        }
        passed * live / seen
    }

    /// Exact search among `offsets` (sorted live candidates).
    fn exact_search_among(
        &self,
        scorer: &dyn QueryScorer,
        store: &DenseVectors,
        top: usize,
        filter: Option<&FilterCheck<'_>>,
        offsets: &[u32],
    ) -> Vec<ScoredOffset> {
        let passing: Vec<u32> =
            offsets.iter().copied().filter(|&o| store.has(o) && self.passes(o, filter)).collect();
        let mut scores = vec![0f32; passing.len()];
        scorer.score_many(&passing, &mut scores);
        let mut all: Vec<ScoredOffset> =
            passing.iter().zip(&scores).map(|(&offset, &score)| ScoredOffset { offset, score }).collect();
        all.sort_by(|a, b| b.cmp(a));
        all.truncate(top);
        all
    }

    fn exact_search(
        &self,
        scorer: &dyn QueryScorer,
        store: &DenseVectors,
        top: usize,
        filter: Option<&FilterCheck<'_>>,
    ) -> Vec<ScoredOffset> {
        let mut heap: BinaryHeap<Reverse<ScoredOffset>> = BinaryHeap::with_capacity(top + 1);
        const CHUNK: usize = 256;
        let mut ids = Vec::with_capacity(CHUNK);
        let mut scores = vec![0f32; CHUNK];
        let n = self.len() as u32;
        // Every offset counts: no per-point checks (a scan of quantized codes is bound by them).
        let every = filter.is_none() && self.deleted.count() == 0 && store.absent().count() == 0;
        // The heap's worst score once full; offsets rise, so a tie with it never enters.
        let mut worst = f32::NEG_INFINITY;
        let mut start = 0u32;
        while start < n {
            let end = n.min(start + CHUNK as u32);
            ids.clear();
            if every {
                ids.extend(start..end);
            } else {
                ids.extend(
                    (start..end).filter(|&o| !self.deleted.get(o) && store.has(o) && self.passes(o, filter)),
                );
            }
            start = end;
            scorer.score_many(&ids, &mut scores[..ids.len()]);
            for (&offset, &score) in ids.iter().zip(&scores) {
                if heap.len() == top && score <= worst {
                    continue;
                }
                let cand = ScoredOffset { offset, score };
                if heap.len() < top {
                    heap.push(Reverse(cand));
                } else if heap.peek().is_some_and(|Reverse(w)| cand > *w) {
                    heap.pop();
                    heap.push(Reverse(cand));
                }
                if heap.len() == top {
                    worst = heap.peek().map_or(f32::NEG_INFINITY, |Reverse(w)| w.score);
                }
            }
        }
        let mut out: Vec<ScoredOffset> = heap.into_iter().map(|Reverse(s)| s).collect();
        out.sort_by(|a, b| b.cmp(a));
        out
    }
}
