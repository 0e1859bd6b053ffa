//! [`HnswGraph`]: the navigable small-world graph of one vector of a segment, and its search.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::links::{GraphLinks, ABSENT};
use super::payload_links::PayloadLinks;
use super::search::{greedy, search_layer, search_level0_within, Scratch, ScratchPool};
use super::HnswParams;
use crate::scorer::{QueryScorer, ScoredOffset};

/// `entry` of a graph without nodes.
const NO_ENTRY: u64 = u64::MAX;

/// A hierarchical navigable small-world graph (Malkov & Yashunin) over point offsets `0..capacity`.
///
/// The graph stores only adjacency: every score comes from a [`crate::PointScorer`] (build, insert) or a
/// [`QueryScorer`] (search), so it works unchanged over raw or quantized vectors. Searches take `&self` and
/// run concurrently; [`HnswGraph::insert`] takes `&mut self`.
pub struct HnswGraph {
    /// Effective parameters (see [`HnswParams::effective`]).
    pub(super) params: HnswParams,
    pub(super) links: GraphLinks,
    /// Payload links (a second level-0 list per node; empty unless built), read only by
    /// [`HnswGraph::search_within`].
    pub(super) payload: PayloadLinks,
    /// Entry point and top level, packed as `level << 32 | offset`, or `NO_ENTRY`.
    entry: AtomicU64,
    /// Held by an insertion that raises the top level, for its whole duration (as in hnswlib), so two
    /// insertions never race to become the entry point.
    pub(super) entry_lock: Mutex<()>,
    /// Number of nodes in the graph.
    pub(super) len: usize,
    pub(super) scratch: ScratchPool,
}

impl HnswGraph {
    /// An empty graph addressing offsets `0..capacity`.
    pub(super) fn empty(params: &HnswParams, capacity: usize) -> HnswGraph {
        let params = params.effective();
        HnswGraph {
            links: GraphLinks::new(params.m, 2 * params.m, capacity),
            payload: PayloadLinks::default(),
            params,
            entry: AtomicU64::new(NO_ENTRY),
            entry_lock: Mutex::new(()),
            len: 0,
            scratch: ScratchPool::default(),
        }
    }

    /// A graph from validated parts (see `file`).
    pub(super) fn from_parts(
        params: HnswParams,
        links: GraphLinks,
        payload: PayloadLinks,
        entry: Option<(u32, usize)>,
        len: usize,
    ) -> Self {
        let graph = HnswGraph {
            params,
            links,
            payload,
            entry: AtomicU64::new(NO_ENTRY),
            entry_lock: Mutex::new(()),
            len,
            scratch: ScratchPool::default(),
        };
        if let Some((offset, level)) = entry {
            graph.set_entry(offset, level);
        }
        graph
    }

    /// Entry point and top level, if the graph has nodes.
    #[inline]
    pub(super) fn entry(&self) -> Option<(u32, usize)> {
        let packed = self.entry.load(Ordering::Acquire);
        (packed != NO_ENTRY).then_some((packed as u32, (packed >> 32) as usize))
    }

    pub(super) fn set_entry(&self, offset: u32, level: usize) {
        self.entry.store(((level as u64) << 32) | u64::from(offset), Ordering::Release);
    }

    /// The parameters the graph was built with (after [`HnswParams::effective`]).
    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// Top-k by score (larger is better), sorted best first (ties: smaller offset first). Points for which
    /// `accept(offset)` is false are traversed but never returned (deleted points); while fewer than `ef`
    /// accepted points are found the search keeps widening, so `k` results come back whenever `k`
    /// accepted points are reachable. `ef` is raised to at least `k`.
    pub fn search(
        &self,
        query: &dyn QueryScorer,
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<ScoredOffset> {
        let Some((entry, top)) = self.entry() else { return Vec::new() };
        if k == 0 {
            return Vec::new();
        }
        let mut scratch = self.scratch.get(self.links.capacity());
        let current = self.descend(&mut scratch, query, entry, top);
        search_layer(&self.links, &mut scratch, query, current, 0, ef.max(k), accept);
        let mut found = Vec::with_capacity(ef.max(k));
        scratch.take_best(k, &mut found);
        self.scratch.put(scratch);
        found
    }

    /// The greedy walk from the entry point down the upper levels: the level-0 search starts here.
    fn descend(
        &self,
        scratch: &mut Scratch,
        query: &dyn QueryScorer,
        entry: u32,
        top: usize,
    ) -> ScoredOffset {
        let mut current = ScoredOffset { offset: entry, score: query.score(entry) };
        for level in (1..=top).rev() {
            current = greedy(&self.links, scratch, query, current, level);
        }
        current
    }

    /// Top-k among the points `within` a traversal set, for which `accept` also holds, sorted best first:
    /// the level-0 search expands only points within the set, following main and payload links, so
    /// its cost is that of a search over a graph of the set alone (when payload links cover the set;
    /// see [`HnswGraph::build_payload_links`]). It enters the set from the upper levels' greedy result
    /// (whose neighbours within the set are reached first) and from `entries` (a few points of the
    /// set, e.g. evenly spread; points outside it are ignored), so a set the greedy point is not
    /// linked to is still searched. `ef` is raised to at least `k`.
    #[allow(clippy::too_many_arguments)]
    pub fn search_within(
        &self,
        query: &dyn QueryScorer,
        k: usize,
        ef: usize,
        within: &dyn Fn(u32) -> bool,
        accept: &dyn Fn(u32) -> bool,
        entries: &[u32],
    ) -> Vec<ScoredOffset> {
        let Some((entry, top)) = self.entry() else { return Vec::new() };
        if k == 0 {
            return Vec::new();
        }
        let mut scratch = self.scratch.get(self.links.capacity());
        let current = self.descend(&mut scratch, query, entry, top);
        let mut seeds = Vec::with_capacity(entries.len() + 1);
        seeds.push(current);
        let valid: Vec<u32> = entries
            .iter()
            .copied()
            .filter(|&e| self.contains(e) && within(e) && e != current.offset)
            .collect();
        let mut scores = vec![0f32; valid.len()];
        query.score_many(&valid, &mut scores);
        seeds.extend(valid.iter().zip(&scores).map(|(&offset, &score)| ScoredOffset { offset, score }));
        search_level0_within(
            &self.links,
            &self.payload,
            &mut scratch,
            query,
            &seeds,
            ef.max(k),
            within,
            accept,
        );
        let mut found = Vec::with_capacity(ef.max(k));
        scratch.take_best(k, &mut found);
        self.scratch.put(scratch);
        found
    }

    /// Number of points in the graph.
    pub fn num_points(&self) -> usize {
        self.len
    }

    /// Whether `offset` is a node of the graph.
    pub fn contains(&self, offset: u32) -> bool {
        (offset as usize) < self.links.capacity() && self.links.level(offset) != ABSENT
    }

    /// Memory used by the graph: adjacency, locks and pooled search memory.
    pub fn ram_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.links.ram_bytes() + self.payload.ram_bytes() + self.scratch.bytes()
    }
}

impl fmt::Debug for HnswGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HnswGraph")
            .field("params", &self.params)
            .field("num_points", &self.len)
            .field("capacity", &self.links.capacity())
            .field("entry", &self.entry())
            .field("payload_links", &self.payload.links().len())
            .finish()
    }
}
