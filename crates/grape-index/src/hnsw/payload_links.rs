//! Payload links: a second level-0 neighbour list per node, built per group of points that share an
//! indexed payload value (filterable HNSW, as Qdrant's `payload_m`). For each group a graph over just
//! its points is built and its level-0 links are kept, minus those the main list already has. A search
//! restricted to one group's points (see [`HnswGraph::search_within`]) then has as many links among
//! them as an unfiltered search over a graph of that group alone, however few of the main graph's
//! links stay inside the group.
//!
//! The lists are immutable once built and kept apart from the main lists, so the unfiltered search
//! never reads them. Storage is compressed rows: `starts[k]..starts[k + 1]` indexes node `k`'s links.

use std::sync::atomic::{AtomicBool, Ordering};

use super::graph::HnswGraph;
use super::HnswParams;
use crate::scorer::PointScorer;

/// Payload links of every offset `0..capacity` (empty when none were built).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct PayloadLinks {
    /// `capacity + 1` row starts into `links`, or empty when the graph has no payload links.
    starts: Vec<u32>,
    links: Vec<u32>,
}

impl PayloadLinks {
    /// Links from validated parts (see `file`).
    pub(super) fn from_parts(starts: Vec<u32>, links: Vec<u32>) -> Self {
        PayloadLinks { starts, links }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// The payload links of `offset` (empty for offsets beyond the rows).
    #[inline]
    pub(super) fn of(&self, offset: u32) -> &[u32] {
        let o = offset as usize;
        match (self.starts.get(o), self.starts.get(o + 1)) {
            (Some(&a), Some(&b)) => &self.links[a as usize..b as usize],
            _ => &[],
        }
    }

    pub(super) fn starts(&self) -> &[u32] {
        &self.starts
    }

    pub(super) fn links(&self) -> &[u32] {
        &self.links
    }

    /// Makes rows `0..capacity` addressable (new rows are empty).
    pub(super) fn grow(&mut self, capacity: usize) {
        if !self.starts.is_empty() && self.starts.len() < capacity + 1 {
            let end = self.links.len() as u32;
            self.starts.resize(capacity + 1, end);
        }
    }

    pub(super) fn ram_bytes(&self) -> usize {
        (self.starts.capacity() + self.links.capacity()) * 4
    }
}

/// A [`PointScorer`] over the points `map[0..]` of another scorer, addressed as `0..map.len()`.
struct Subset<'a> {
    inner: &'a dyn PointScorer,
    map: &'a [u32],
}

impl PointScorer for Subset<'_> {
    fn num_points(&self) -> usize {
        self.map.len()
    }

    fn score_pair(&self, a: u32, b: u32) -> f32 {
        self.inner.score_pair(self.map[a as usize], self.map[b as usize])
    }

    fn score_pair_many(&self, a: u32, points: &[u32], out: &mut [f32]) {
        let global: Vec<u32> = points.iter().map(|&p| self.map[p as usize]).collect();
        self.inner.score_pair_many(self.map[a as usize], &global, out);
    }
}

impl HnswGraph {
    /// Builds the payload links of `groups` (each a sorted list of offsets that are nodes of this graph,
    /// e.g. the points holding one payload value): per group a graph over just its points with `params`
    /// (`m` is the payload `m`; level 0 keeps `2 m`), whose level-0 links are added to the nodes' payload
    /// lists. Replaces any payload links built before. Returns `false`, leaving the graph without
    /// payload links, when `cancel` became true.
    pub fn build_payload_links(
        &mut self,
        scorer: &dyn PointScorer,
        groups: &[&[u32]],
        params: &HnswParams,
        cancel: &AtomicBool,
    ) -> bool {
        self.payload = PayloadLinks::default();
        let capacity = self.links.capacity();
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); capacity];
        let mut main = Vec::new();
        let mut local = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let group: Vec<u32> =
                group.iter().copied().filter(|&o| (o as usize) < capacity && self.contains(o)).collect();
            if group.len() < 2 {
                continue;
            }
            let subset = Subset { inner: scorer, map: &group };
            let sub_params = HnswParams { seed: params.seed.wrapping_add(g as u64 + 1), ..*params };
            let Some(sub) = HnswGraph::build_cancellable(&subset, &|_| true, &sub_params, cancel) else {
                return false;
            };
            for (i, &owner) in group.iter().enumerate() {
                sub.links.neighbours_into(i as u32, 0, &mut local);
                self.links.neighbours_into(owner, 0, &mut main);
                let row = &mut rows[owner as usize];
                row.extend(local.iter().map(|&l| group[l as usize]).filter(|n| !main.contains(n)));
            }
        }
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        let mut starts = Vec::with_capacity(capacity + 1);
        let mut links = Vec::new();
        starts.push(0);
        for mut row in rows {
            // A node in several groups keeps each neighbour once, in the order first found.
            let mut seen = std::collections::HashSet::with_capacity(row.len());
            row.retain(|n| seen.insert(*n));
            // Rows index links by u32 (the file's H8): a segment with more than 2^32 payload links
            // keeps the rows that fit.
            if links.len() + row.len() <= u32::MAX as usize {
                links.extend_from_slice(&row);
            }
            starts.push(links.len() as u32);
        }
        if !links.is_empty() {
            self.payload = PayloadLinks { starts, links };
        }
        true
    }

    /// Drops the payload links (searches restricted to a set then follow main links only).
    pub fn clear_payload_links(&mut self) {
        self.payload = PayloadLinks::default();
    }

    /// Whether the graph has payload links.
    pub fn has_payload_links(&self) -> bool {
        !self.payload.is_empty()
    }

    /// Total number of payload links.
    pub fn payload_link_count(&self) -> usize {
        self.payload.links().len()
    }
}
