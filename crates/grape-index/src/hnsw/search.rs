//! Layer traversals shared by search and build: greedy descent through the upper levels and the
//! best-first beam search (`ef` wide) of one level, both of the HNSW paper, scored through `QueryScorer`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use super::links::GraphLinks;
use super::payload_links::PayloadLinks;
use super::visited::VisitedList;
use crate::scorer::{QueryScorer, ScoredOffset};

/// A [`ScoredOffset`] packed into a `u64` whose integer order is `ScoredOffset`'s order (score by
/// `f32::total_cmp`, then smaller offset first), so the heaps compare with one instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key(u64);

impl Key {
    #[inline]
    fn new(offset: u32, score: f32) -> Key {
        let bits = score.to_bits();
        // Flip negatives entirely and set the sign bit of positives: unsigned order = total_cmp order.
        let ordered = if bits & 0x8000_0000 != 0 { !bits } else { bits | 0x8000_0000 };
        Key(u64::from(ordered) << 32 | u64::from(!offset))
    }

    #[inline]
    fn offset(self) -> u32 {
        !(self.0 as u32)
    }

    #[inline]
    fn score(self) -> f32 {
        let ordered = (self.0 >> 32) as u32;
        f32::from_bits(if ordered & 0x8000_0000 != 0 { ordered & 0x7fff_ffff } else { !ordered })
    }

    fn scored(self) -> ScoredOffset {
        ScoredOffset { offset: self.offset(), score: self.score() }
    }
}

/// Working memory of one search or insertion, pooled by the graph so queries do not allocate.
pub(super) struct Scratch {
    visited: VisitedList,
    batch: Vec<u32>,
    scores: Vec<f32>,
    candidates: BinaryHeap<Key>,
    /// Best `ef` accepted points of the last layer search, worst on top.
    beam: BinaryHeap<Reverse<Key>>,
}

impl Scratch {
    /// Scores the neighbours of `offset` at `level` into `batch`/`scores`; with `use_visited`, only those
    /// not yet visited (marking them).
    #[inline]
    fn expand<Q: QueryScorer + ?Sized>(
        &mut self,
        links: &GraphLinks,
        use_visited: bool,
        query: &Q,
        offset: u32,
        level: usize,
    ) {
        let list = links.neighbours(offset, level);
        self.batch.clear();
        self.batch.resize(list.len(), 0);
        if use_visited {
            // Without a branch on the visited test (it is unpredictable): every neighbour is written at
            // `len`, which then moves past it only if it was not visited yet.
            let mut len = 0;
            for (i, n) in list.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                self.batch[len.min(i)] = n;
                len += usize::from(!self.visited.check_and_mark(n));
            }
            self.batch.truncate(len);
        } else {
            for (b, n) in self.batch.iter_mut().zip(list) {
                *b = n.load(Ordering::Relaxed);
            }
        }
        self.scores.clear();
        self.scores.resize(self.batch.len(), 0.0);
        query.score_many(&self.batch, &mut self.scores);
    }

    /// Takes `point` into the full-or-not beam of `ef`; when the beam is full, `point` must beat its worst
    /// (which it then replaces). Returns the beam's worst once the beam is full.
    #[inline]
    fn keep(&mut self, point: Key, ef: usize) -> Option<Key> {
        if self.beam.len() < ef {
            self.beam.push(Reverse(point));
        } else if let Some(mut worst) = self.beam.peek_mut() {
            debug_assert!(point > worst.0);
            *worst = Reverse(point);
        }
        if self.beam.len() >= ef {
            self.beam.peek().map(|w| w.0)
        } else {
            None
        }
    }

    /// Scores the level-0 neighbours of `offset`, main and payload links, that are `within` the
    /// traversal set and not yet visited (marking them), into `batch`/`scores`.
    #[inline]
    fn expand_within<Q: QueryScorer + ?Sized>(
        &mut self,
        links: &GraphLinks,
        payload: &PayloadLinks,
        query: &Q,
        offset: u32,
        within: &dyn Fn(u32) -> bool,
    ) {
        self.batch.clear();
        let visited = &mut self.visited;
        let batch = &mut self.batch;
        let mut take = |n: u32| {
            if within(n) && !visited.check_and_mark(n) {
                batch.push(n);
            }
        };
        links.for_each_neighbour(offset, 0, &mut take);
        payload.of(offset).iter().for_each(|&n| take(n));
        self.scores.clear();
        self.scores.resize(self.batch.len(), 0.0);
        query.score_many(&self.batch, &mut self.scores);
    }

    /// Moves the best `k` points of the beam of the last layer search into `out`, best first.
    pub(super) fn take_best(&mut self, k: usize, out: &mut Vec<ScoredOffset>) {
        out.clear();
        out.extend(self.beam.drain().map(|r| r.0.scored()));
        if k == 0 {
            out.clear();
        } else if out.len() > k {
            out.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
            out.truncate(k);
        }
        out.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// Moves the beam of the last layer search into `out`, best first.
    pub(super) fn take_beam(&mut self, out: &mut Vec<ScoredOffset>) {
        out.clear();
        out.extend(self.beam.drain().map(|r| r.0.scored()));
        out.sort_unstable_by(|a, b| b.cmp(a));
    }
}

/// Pool of [`Scratch`]es for offsets `0..capacity`.
#[derive(Default)]
pub(super) struct ScratchPool {
    free: Mutex<Vec<Scratch>>,
}

impl ScratchPool {
    pub(super) fn get(&self, capacity: usize) -> Scratch {
        let pooled = self.free.lock().pop();
        let mut scratch = pooled.unwrap_or_else(|| Scratch {
            visited: VisitedList::new(capacity),
            batch: Vec::new(),
            scores: Vec::new(),
            candidates: BinaryHeap::new(),
            beam: BinaryHeap::new(),
        });
        scratch.visited.reset(capacity);
        scratch
    }

    pub(super) fn put(&self, scratch: Scratch) {
        self.free.lock().push(scratch);
    }

    pub(super) fn bytes(&self) -> usize {
        let free = self.free.lock();
        free.iter()
            .map(|s| {
                s.visited.bytes()
                    + s.batch.capacity() * 4
                    + s.scores.capacity() * 4
                    + (s.candidates.capacity() + s.beam.capacity()) * 8
            })
            .sum()
    }
}

/// Walks `level` greedily from `start` to a local optimum of the query's score.
pub(super) fn greedy<Q: QueryScorer + ?Sized>(
    links: &GraphLinks,
    scratch: &mut Scratch,
    query: &Q,
    start: ScoredOffset,
    level: usize,
) -> ScoredOffset {
    let mut best = start;
    loop {
        let from = best.offset;
        scratch.expand(links, false, query, from, level);
        for (&offset, &score) in scratch.batch.iter().zip(&scratch.scores) {
            let candidate = ScoredOffset { offset, score };
            if candidate > best {
                best = candidate;
            }
        }
        if best.offset == from {
            return best;
        }
    }
}

/// Beam search of `level` from `entry` (already scored), with a fresh visited set, leaving in
/// `scratch`'s beam up to `ef` best points for which `accept` holds. Rejected points are traversed but
/// never kept; while fewer than `ef` points are accepted the search keeps widening, so the beam fills
/// whenever `ef` accepted points are reachable.
pub(super) fn search_layer<Q, F>(
    links: &GraphLinks,
    scratch: &mut Scratch,
    query: &Q,
    entry: ScoredOffset,
    level: usize,
    ef: usize,
    accept: F,
) where
    Q: QueryScorer + ?Sized,
    F: Fn(u32) -> bool,
{
    scratch.visited.clear();
    scratch.visited.check_and_mark(entry.offset);
    scratch.candidates.clear();
    scratch.beam.clear();
    let entry = Key::new(entry.offset, entry.score);
    scratch.candidates.push(entry);
    if accept(entry.offset()) {
        scratch.beam.push(Reverse(entry));
    }
    // Key of the worst point in a full beam; anything not better cannot enter it. (A beam of one is
    // full with its entry already.)
    let mut lower = if scratch.beam.len() >= ef { entry } else { Key(0) };
    while let Some(current) = scratch.candidates.pop() {
        if scratch.beam.len() >= ef && current.score() < lower.score() {
            break;
        }
        if let Some(next) = scratch.candidates.peek() {
            links.prefetch(next.offset());
        }
        scratch.expand(links, true, query, current.offset(), level);
        for i in 0..scratch.batch.len() {
            let (offset, score) = (scratch.batch[i], scratch.scores[i]);
            if scratch.beam.len() < ef || score > lower.score() {
                let point = Key::new(offset, score);
                scratch.candidates.push(point);
                if accept(offset) {
                    if let Some(worst) = scratch.keep(point, ef) {
                        lower = worst;
                    }
                }
            }
        }
    }
}

/// Beam search of level 0 that expands only points `within` the traversal set, following main and
/// payload links, from `seeds` (already scored; a seed outside the set is expanded too, which is how a
/// search enters the set from a point of the main graph). Leaves in `scratch`'s beam up to `ef` best
/// points for which `accept` holds (points within the set that `accept` refuses are traversed).
#[allow(clippy::too_many_arguments)]
pub(super) fn search_level0_within<Q: QueryScorer + ?Sized>(
    links: &GraphLinks,
    payload: &PayloadLinks,
    scratch: &mut Scratch,
    query: &Q,
    seeds: &[ScoredOffset],
    ef: usize,
    within: &dyn Fn(u32) -> bool,
    accept: &dyn Fn(u32) -> bool,
) {
    scratch.visited.clear();
    scratch.candidates.clear();
    scratch.beam.clear();
    for s in seeds {
        if scratch.visited.check_and_mark(s.offset) {
            continue;
        }
        let key = Key::new(s.offset, s.score);
        scratch.candidates.push(key);
        if accept(s.offset) {
            scratch.beam.push(Reverse(key));
            if scratch.beam.len() > ef {
                scratch.beam.pop();
            }
        }
    }
    let mut lower =
        if scratch.beam.len() >= ef { scratch.beam.peek().map_or(Key(0), |w| w.0) } else { Key(0) };
    while let Some(current) = scratch.candidates.pop() {
        if scratch.beam.len() >= ef && current.score() < lower.score() {
            break;
        }
        if let Some(next) = scratch.candidates.peek() {
            links.prefetch(next.offset());
        }
        scratch.expand_within(links, payload, query, current.offset(), within);
        for i in 0..scratch.batch.len() {
            let (offset, score) = (scratch.batch[i], scratch.scores[i]);
            if scratch.beam.len() < ef || score > lower.score() {
                let point = Key::new(offset, score);
                scratch.candidates.push(point);
                if accept(offset) {
                    if let Some(worst) = scratch.keep(point, ef) {
                        lower = worst;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Key;
    use crate::scorer::ScoredOffset;

    #[test]
    fn key_order_is_scored_offset_order() {
        let scores = [f32::NEG_INFINITY, -3.5, -1e-30, -0.0, 0.0, 1e-30, 2.0, f32::INFINITY];
        let mut points = Vec::new();
        for &score in &scores {
            for offset in [0, 1, 7, u32::MAX - 1] {
                points.push(ScoredOffset { offset, score });
            }
        }
        for a in &points {
            let ka = Key::new(a.offset, a.score);
            assert_eq!(ka.offset(), a.offset);
            assert_eq!(ka.score().to_bits(), a.score.to_bits());
            for b in &points {
                assert_eq!(ka.cmp(&Key::new(b.offset, b.score)), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }
}
