//! Building the graph: level assignment, parallel and incremental insertion, and the neighbour-selection
//! heuristic of the HNSW paper (algorithm 4, as hnswlib implements it).
//!
//! Concurrency protocol (parallel build):
//! - every node's level is assigned before any insertion starts, so upper-level storage never moves;
//! - a node's lists are rewritten only under that node's lock; readers do not lock (see `links`);
//! - an insertion whose level exceeds the current top level holds `entry_lock` for its whole duration and
//!   publishes itself as the entry point only once it is linked.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::graph::HnswGraph;
use super::links::{ABSENT, MAX_LEVEL};
use super::search::{greedy, search_layer};
use super::HnswParams;
use crate::scorer::{PointScorer, QueryScorer, ScoredOffset};

/// Scores stored points against one stored point: how insertion searches for a new node's neighbours.
struct PointQuery<'a> {
    scorer: &'a dyn PointScorer,
    point: u32,
}

impl QueryScorer for PointQuery<'_> {
    #[inline]
    fn score(&self, other: u32) -> f32 {
        self.scorer.score_pair(self.point, other)
    }

    fn score_many(&self, points: &[u32], out: &mut [f32]) {
        self.scorer.score_pair_many(self.point, points, out);
    }
}

/// Level of `offset`: `floor(-ln(u) / ln(m))` for `u` uniform in (0, 1], drawn from a hash of the seed
/// and the offset. Being a function of the offset (not of insertion order) keeps levels identical however
/// many threads build, and lets later inserts continue the same sequence.
fn random_level(seed: u64, offset: u32, m: usize) -> u8 {
    let bits = splitmix64(seed ^ splitmix64(u64::from(offset)));
    let u = 1.0 - (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    let level = -u.ln() / (m as f64).ln();
    level.min(f64::from(MAX_LEVEL)) as u8
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl HnswGraph {
    /// Builds a graph over the offsets `0..scorer.num_points()` for which `include(offset)` is true, on a
    /// dedicated pool of `params.max_threads` threads (0 = all cores). With one thread the graph is
    /// deterministic for a seed; with more, its structure depends on scheduling.
    pub fn build(
        scorer: &dyn PointScorer,
        include: &(dyn Fn(u32) -> bool + Sync),
        params: &HnswParams,
    ) -> HnswGraph {
        Self::build_until(scorer, include, params, &AtomicBool::new(false))
    }

    /// [`HnswGraph::build`] that gives up (returning `None`) soon after `cancel` becomes true: every
    /// worker checks it before each insertion, so a shutdown never waits for a whole build.
    pub fn build_cancellable(
        scorer: &dyn PointScorer,
        include: &(dyn Fn(u32) -> bool + Sync),
        params: &HnswParams,
        cancel: &AtomicBool,
    ) -> Option<HnswGraph> {
        let graph = Self::build_until(scorer, include, params, cancel);
        (!cancel.load(Ordering::Relaxed)).then_some(graph)
    }

    /// The build loop; stops early (leaving a partial graph) when `cancel` becomes true.
    fn build_until(
        scorer: &dyn PointScorer,
        include: &(dyn Fn(u32) -> bool + Sync),
        params: &HnswParams,
        cancel: &AtomicBool,
    ) -> HnswGraph {
        let capacity = scorer.num_points();
        let mut graph = HnswGraph::empty(params, capacity);
        let offsets: Vec<u32> = (0..capacity as u32).filter(|&o| include(o)).collect();
        for &offset in &offsets {
            let level = random_level(graph.params.seed, offset, graph.params.m);
            graph.links.add_node(offset, level);
        }
        let threads = match graph.params.max_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let pool = (threads > 1 && offsets.len() > 1)
            .then(|| rayon::ThreadPoolBuilder::new().num_threads(threads).build().ok())
            .flatten();
        let cancelled = || cancel.load(Ordering::Relaxed);
        match pool {
            Some(pool) => {
                // Workers claim offsets in order from a shared counter (as hnswlib does), so the graph
                // grows roughly in offset order whatever the thread count.
                let next = AtomicUsize::new(0);
                pool.broadcast(|_| loop {
                    if cancelled() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&offset) = offsets.get(i) else { break };
                    graph.insert_node(offset, scorer);
                });
            }
            None => {
                for &offset in &offsets {
                    if cancelled() {
                        break;
                    }
                    graph.insert_node(offset, scorer);
                }
            }
        }
        if threads > 1 && !cancelled() {
            // A relinking can displace a link another node depended on; a few rounds settle it.
            for _ in 0..4 {
                if graph.reconnect(&offsets, scorer) == 0 {
                    break;
                }
            }
        }
        graph.len = offsets.len();
        graph
    }

    /// Concurrent insertions can leave level-0 nodes that no path from the entry point reaches (two
    /// close points inserted at once do not see each other, and the pruning of their neighbours' lists
    /// keeps neither), and a search never finds such a node. This walks level 0 from the entry point and
    /// links every node it did not reach from its nearest reached node, then walks on from there.
    /// Returns how many nodes it linked.
    fn reconnect(&self, offsets: &[u32], scorer: &dyn PointScorer) -> usize {
        let Some((entry, _)) = self.entry() else { return 0 };
        let mut relinked = 0;
        let mut reached = vec![false; self.links.capacity()];
        let mut stack = vec![entry];
        reached[entry as usize] = true;
        let walk = |stack: &mut Vec<u32>, reached: &mut Vec<bool>| {
            while let Some(o) = stack.pop() {
                self.links.for_each_neighbour(o, 0, |n| {
                    if !reached[n as usize] {
                        reached[n as usize] = true;
                        stack.push(n);
                    }
                });
            }
        };
        walk(&mut stack, &mut reached);
        let mut scratch = self.scratch.get(self.links.capacity());
        let mut found = Vec::new();
        for &u in offsets {
            if reached[u as usize] {
                continue;
            }
            let query = PointQuery { scorer, point: u };
            let start = ScoredOffset { offset: entry, score: query.score(entry) };
            search_layer(&self.links, &mut scratch, &query, start, 0, self.params.ef_construct, |o| {
                reached[o as usize]
            });
            scratch.take_beam(&mut found);
            // The nearest reached node with room takes the link; if all are full, the nearest one gives
            // up its last (farthest-kept) neighbour, which stays reachable through its other in-links
            // or is reconnected in turn if not.
            let linked = found.iter().any(|b| {
                let _guard = self.links.lock(b.offset);
                self.links.push_neighbour(b.offset, 0, u)
            });
            if !linked {
                if let Some(b) = found.first() {
                    let _guard = self.links.lock(b.offset);
                    let mut list = Vec::new();
                    self.links.neighbours_into(b.offset, 0, &mut list);
                    if let Some(last) = list.last_mut() {
                        *last = u;
                    }
                    self.links.set_neighbours(b.offset, 0, list.into_iter());
                }
            }
            relinked += 1;
            reached[u as usize] = true;
            stack.push(u);
            walk(&mut stack, &mut reached);
        }
        self.scratch.put(scratch);
        relinked
    }

    /// Inserts one more point. The graph grows when `offset` is beyond its capacity; an offset already
    /// in the graph is left as it is (a changed vector gets a new offset in its segment).
    pub fn insert(&mut self, offset: u32, scorer: &dyn PointScorer) {
        if self.contains(offset) {
            return;
        }
        let capacity = (offset as usize + 1).max(scorer.num_points());
        self.links.grow(capacity);
        self.payload.grow(capacity);
        let level = random_level(self.params.seed, offset, self.params.m);
        self.links.add_node(offset, level);
        self.insert_node(offset, scorer);
        self.len += 1;
    }

    /// Links node `offset` (level already assigned) into the graph. Safe to run concurrently for
    /// different nodes.
    fn insert_node(&self, offset: u32, scorer: &dyn PointScorer) {
        let level = self.links.level(offset);
        debug_assert_ne!(level, ABSENT);
        let level = usize::from(level);
        let mut raising = None;
        let (entry, top) = match self.entry() {
            Some((entry, top)) if level <= top => (entry, top),
            _ => {
                let guard = self.entry_lock.lock();
                match self.entry() {
                    None => {
                        self.set_entry(offset, level);
                        return;
                    }
                    Some((entry, top)) => {
                        if level > top {
                            raising = Some(guard);
                        }
                        (entry, top)
                    }
                }
            }
        };
        let query = PointQuery { scorer, point: offset };
        let mut scratch = self.scratch.get(self.links.capacity());
        let mut current = ScoredOffset { offset: entry, score: query.score(entry) };
        for l in (level + 1..=top).rev() {
            current = greedy(&self.links, &mut scratch, &query, current, l);
        }
        let ef = self.params.ef_construct;
        let mut candidates = Vec::with_capacity(ef);
        for l in (0..=level.min(top)).rev() {
            search_layer(&self.links, &mut scratch, &query, current, l, ef, |_| true);
            scratch.take_beam(&mut candidates);
            current = self.connect(offset, &mut candidates, l, scorer).unwrap_or(current);
        }
        self.scratch.put(scratch);
        if raising.is_some() {
            self.set_entry(offset, level);
        }
    }

    /// Gives `offset` its neighbours at `level` from the candidates found for it (best first), and adds
    /// the reverse links, pruning full lists with the heuristic. Returns the best neighbour, the entry
    /// for the next level.
    fn connect(
        &self,
        offset: u32,
        candidates: &mut Vec<ScoredOffset>,
        level: usize,
        scorer: &dyn PointScorer,
    ) -> Option<ScoredOffset> {
        candidates.retain(|c| c.offset != offset);
        let mut selected = Vec::with_capacity(self.params.m);
        select_neighbours(candidates, self.params.m, scorer, &mut selected);
        {
            let _lock = self.links.lock(offset);
            self.links.set_neighbours(offset, level, selected.iter().map(|s| s.offset));
        }
        let max = if level == 0 { self.links.m0() } else { self.links.m() };
        let mut current = Vec::with_capacity(max);
        let mut scores = Vec::with_capacity(max);
        let mut pool = Vec::with_capacity(max + 1);
        let mut kept = Vec::with_capacity(max);
        for s in &selected {
            let _lock = self.links.lock(s.offset);
            self.links.neighbours_into(s.offset, level, &mut current);
            if current.contains(&offset) || self.links.push_neighbour(s.offset, level, offset) {
                continue;
            }
            scores.clear();
            scores.resize(current.len(), 0.0);
            scorer.score_pair_many(s.offset, &current, &mut scores);
            pool.clear();
            pool.extend(current.iter().zip(&scores).map(|(&offset, &score)| ScoredOffset { offset, score }));
            pool.push(ScoredOffset { offset, score: s.score });
            pool.sort_unstable_by(|a, b| b.cmp(a));
            select_neighbours(&pool, max, scorer, &mut kept);
            self.links.set_neighbours(s.offset, level, kept.iter().map(|k| k.offset));
        }
        debug_assert!(self.links.count(offset, level) <= max);
        selected.first().copied()
    }
}

/// The neighbour-selection heuristic: walking `candidates` (scored against the base point, best first),
/// keep a candidate only if it is closer to the base than to every candidate already kept; stop at `m`.
/// This keeps links pointing in diverse directions, which is what makes the graph navigable on clustered
/// data. With at most `m` candidates all are kept.
fn select_neighbours(
    candidates: &[ScoredOffset],
    m: usize,
    scorer: &dyn PointScorer,
    out: &mut Vec<ScoredOffset>,
) {
    out.clear();
    if candidates.len() <= m {
        out.extend_from_slice(candidates);
        return;
    }
    for &c in candidates {
        if out.len() >= m {
            break;
        }
        if out.iter().all(|kept| scorer.score_pair(c.offset, kept.offset) <= c.score) {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::random_level;

    #[test]
    fn levels_follow_the_geometric_distribution() {
        let m = 16;
        let levels: Vec<u8> = (0..200_000).map(|o| random_level(7, o, m)).collect();
        let above0 = levels.iter().filter(|&&l| l >= 1).count() as f64 / levels.len() as f64;
        let above1 = levels.iter().filter(|&&l| l >= 2).count() as f64 / levels.len() as f64;
        assert!((above0 - 1.0 / 16.0).abs() < 0.005, "{above0}");
        assert!((above1 - 1.0 / 256.0).abs() < 0.001, "{above1}");
        assert!(levels.iter().all(|&l| l <= super::MAX_LEVEL));
    }
}
