//! Sparse vectors of one name in one segment, and their inverted index.
//!
//! Rows are kept per offset (sorted by index, as validation leaves them). A sealed segment also holds an
//! inverted index: for every index, the offsets whose vector contains it with their value, in offset
//! order. A query then touches only the postings of its own indices (exact dot products, no
//! approximation). The appendable segment scores its rows directly. The index is built from the rows
//! when a segment is sealed or opened; the rows are what `sparse-<i>.bin` persists (docs/format.md).

use std::collections::HashMap;

use grape_types::{Error, Result, SparseVector};

/// Sparse vectors of one name. Offsets without a vector hold `None`.
#[derive(Debug, Default)]
pub struct SparseVectors {
    rows: Vec<Option<SparseVector>>,
    postings: Option<HashMap<u32, Posting>>,
    /// Rows that hold a vector (kept with the index; IDF needs it per query).
    present: usize,
}

/// The points holding one index: `(offset, value)` in offset order, with the value range.
#[derive(Debug, Default)]
struct Posting {
    entries: Vec<(u32, f32)>,
    max: f32,
    min: f32,
}

/// Touched points above which a search stops looking for a pruning threshold (computing one costs a
/// pass over them).
const PRUNE_CHECK_LIMIT: usize = 8192;

/// Marks an absent row in the file encoding.
const ABSENT: u32 = u32::MAX;

/// Per-thread score accumulator of inverted-index searches, reused across queries.
#[derive(Default)]
struct Scratch {
    /// Per offset: the generation (query) that last wrote the slot and its score, side by side so
    /// one cache line serves both.
    slots: Vec<(u32, f32)>,
    generation: u32,
    touched: Vec<u32>,
}

impl Scratch {
    /// Starts a query over `len` offsets: a new generation, an empty touched list.
    fn start(&mut self, len: usize) -> (&mut [(u32, f32)], u32, &mut Vec<u32>) {
        if self.slots.len() < len {
            self.slots.resize(len, (0, 0.0));
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // After 2^32 queries the generations could repeat: clear the slots once.
            self.slots.iter_mut().for_each(|s| *s = (0, 0.0));
            self.generation = 1;
        }
        self.touched.clear();
        (&mut self.slots[..len], self.generation, &mut self.touched)
    }
}

/// A candidate of [`best`], ordered so that the heap's top is the worst kept one.
#[derive(PartialEq)]
struct Kept(u32, f32);

impl Eq for Kept {}

impl Ord for Kept {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Better = higher score, then smaller offset; the max-heap keeps the worst on top.
        other.1.total_cmp(&self.1).then(self.0.cmp(&other.0))
    }
}

impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The `top` best candidates that `accept` lets through, best first. `accept` (which may read a
/// payload) runs only for candidates that would enter the current top.
pub fn best(
    candidates: impl Iterator<Item = (u32, f32)>,
    top: usize,
    accept: &dyn Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    if top == 0 {
        return Vec::new();
    }
    let mut heap: std::collections::BinaryHeap<Kept> = std::collections::BinaryHeap::with_capacity(top + 1);
    for (o, score) in candidates {
        let cand = Kept(o, score);
        if heap.len() == top && heap.peek().is_some_and(|worst| cand >= *worst) {
            continue;
        }
        if !accept(o) {
            continue;
        }
        heap.push(cand);
        if heap.len() > top {
            heap.pop();
        }
    }
    heap.into_sorted_vec().into_iter().map(|Kept(o, s)| (o, s)).collect()
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

impl SparseVectors {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn get(&self, offset: u32) -> Option<&SparseVector> {
        self.rows.get(offset as usize)?.as_ref()
    }

    pub fn has(&self, offset: u32) -> bool {
        self.get(offset).is_some()
    }

    /// Appends the next offset's vector (appendable segments only: the index is not updated).
    pub fn push_opt(&mut self, v: Option<&SparseVector>) {
        debug_assert!(self.postings.is_none(), "push into an indexed sparse store");
        self.rows.push(v.cloned());
    }

    pub fn set_opt(&mut self, offset: u32, v: Option<&SparseVector>) {
        debug_assert!(self.postings.is_none(), "write into an indexed sparse store");
        self.rows[offset as usize] = v.cloned();
    }

    /// Builds the inverted index (a sealed segment's rows never change afterwards).
    pub fn build_index(&mut self) {
        let mut postings: HashMap<u32, Posting> = HashMap::new();
        for (offset, row) in self.rows.iter().enumerate() {
            for (&i, &v) in row.iter().flat_map(|r| r.indices.iter().zip(&r.values)) {
                postings.entry(i).or_default().entries.push((offset as u32, v));
            }
        }
        for p in postings.values_mut() {
            p.entries.shrink_to_fit();
            p.max = p.entries.iter().map(|e| e.1).fold(f32::NEG_INFINITY, f32::max);
            p.min = p.entries.iter().map(|e| e.1).fold(f32::INFINITY, f32::min);
        }
        self.postings = Some(postings);
        self.present = self.rows.iter().filter(|r| r.is_some()).count();
    }

    pub fn ram_bytes(&self) -> usize {
        let rows: usize =
            self.rows.iter().map(|r| 56 + r.as_ref().map_or(0, |r| r.indices.capacity() * 8)).sum();
        let postings: usize =
            self.postings.as_ref().map_or(0, |p| p.values().map(|l| 48 + l.entries.capacity() * 8).sum());
        rows + postings
    }

    /// Bytes of stored values and indices (the unit of size thresholds).
    pub fn data_bytes(&self) -> usize {
        self.rows.iter().map(|r| r.as_ref().map_or(0, |r| r.len() * 8)).sum()
    }

    /// Every point whose vector shares an index with `query` and which `accept` lets through, with
    /// its dot product: the top `top` by score (ties: smaller offset first), best first.
    pub fn search(&self, query: &SparseVector, top: usize, accept: &dyn Fn(u32) -> bool) -> Vec<(u32, f32)> {
        match &self.postings {
            Some(postings) => SCRATCH.with_borrow_mut(|scratch| {
                let mut terms: Vec<(f32, &Posting)> = query
                    .indices
                    .iter()
                    .zip(&query.values)
                    .filter_map(|(i, &qv)| Some((qv, postings.get(i)?)))
                    .collect();
                // Pruning (below) is exact only when no contribution can be negative.
                let prunable = terms.iter().all(|(qv, p)| *qv >= 0.0 && p.min >= 0.0);
                let bound = |t: &(f32, &Posting)| t.0 * t.1.max;
                if prunable {
                    terms.sort_by(|a, b| bound(b).total_cmp(&bound(a)));
                }
                // Accumulate into a dense array (touched offsets listed once): postings of common
                // indices are long, and an array beats a hash map by far there. The array is reused
                // across queries; a generation stamp per slot says whether it belongs to this query.
                let (slots, generation, touched) = scratch.start(self.rows.len());
                let mut highest = f32::NEG_INFINITY;
                for (k, &(qv, p)) in terms.iter().enumerate() {
                    for &(offset, v) in &p.entries {
                        let o = offset as usize;
                        let slot = &mut slots[o];
                        if slot.0 != generation {
                            *slot = (generation, 0.0);
                            touched.push(offset);
                        }
                        slot.1 += qv * v;
                        highest = highest.max(slot.1);
                    }
                    // MaxScore: once the `top`-th best partial score exceeds what the remaining
                    // indices could add at most, a point not touched yet cannot enter the top; the
                    // remaining postings then only update the touched points (by binary search).
                    let rest = &terms[k + 1..];
                    if !prunable
                        || rest.is_empty()
                        || touched.len() < top
                        || touched.len() > PRUNE_CHECK_LIMIT
                    {
                        continue;
                    }
                    let partial = best(touched.iter().map(|&o| (o, slots[o as usize].1)), top, accept);
                    let remaining: f32 = rest.iter().map(bound).sum();
                    if partial.len() == top && partial[top - 1].1 > remaining {
                        for &(qv, p) in rest {
                            for &o in touched.iter() {
                                if let Ok(j) = p.entries.binary_search_by_key(&o, |e| e.0) {
                                    slots[o as usize].1 += qv * p.entries[j].1;
                                }
                            }
                        }
                        break;
                    }
                }
                best(touched.iter().map(|&o| (o, slots[o as usize].1)), top, accept)
            }),
            None => best(
                self.rows.iter().enumerate().filter_map(|(o, r)| Some((o as u32, query.dot(r.as_ref()?)?))),
                top,
                accept,
            ),
        }
    }

    /// For IDF: how many offsets outside `deleted` have a vector, and for each of `indices` how many
    /// of them contain it. With the index this costs one lookup per index plus a pass over the deleted
    /// offsets (usually few), not a pass over the points.
    pub fn document_frequencies(&self, indices: &[u32], deleted: &super::BitSet) -> (u64, Vec<u64>) {
        let contains = |o: u32, i: &u32| self.get(o).is_some_and(|r| r.indices.binary_search(i).is_ok());
        match &self.postings {
            Some(postings) => {
                let dead: Vec<u32> = deleted.ones().filter(|&o| self.has(o)).collect();
                let docs = (self.present - dead.len()) as u64;
                let df = indices
                    .iter()
                    .map(|i| {
                        let all = postings.get(i).map_or(0, |p| p.entries.len());
                        (all - dead.iter().filter(|&&o| contains(o, i)).count()) as u64
                    })
                    .collect();
                (docs, df)
            }
            None => {
                let live = |o: u32| self.has(o) && !deleted.get(o);
                let docs = (0..self.rows.len() as u32).filter(|&o| live(o)).count() as u64;
                let df = indices
                    .iter()
                    .map(|i| {
                        (0..self.rows.len() as u32).filter(|&o| live(o) && contains(o, i)).count() as u64
                    })
                    .collect();
                (docs, df)
            }
        }
    }

    /// File body of the rows at `offsets` (they become offsets `0..`): `u64 count`, then per row
    /// `u32 nnz` (`u32::MAX` for no vector), `nnz` u32 indices and `nnz` f32 values, little-endian.
    pub fn encode(&self, offsets: &[u32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + offsets.len() * 4);
        out.extend_from_slice(&(offsets.len() as u64).to_le_bytes());
        for &o in offsets {
            match self.get(o) {
                None => out.extend_from_slice(&ABSENT.to_le_bytes()),
                Some(r) => {
                    out.extend_from_slice(&(r.len() as u32).to_le_bytes());
                    r.indices.iter().for_each(|i| out.extend_from_slice(&i.to_le_bytes()));
                    r.values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
                }
            }
        }
        out
    }

    /// Reads a body written by [`SparseVectors::encode`] and builds the inverted index.
    pub fn decode(body: &[u8], what: &str) -> Result<SparseVectors> {
        let bad = |why: &str| Error::Corruption(format!("{what}: {why}"));
        let mut pos = 0usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            let s = body.get(pos..pos + n).ok_or_else(|| bad("truncated"))?;
            pos += n;
            Ok(s)
        };
        let u32_at =
            |b: &[u8], i: usize| u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        let count = u64::from_le_bytes(take(8)?.try_into().map_err(|_| bad("truncated"))?) as usize;
        let mut rows = Vec::with_capacity(count.min(body.len() / 4));
        for _ in 0..count {
            let nnz = u32_at(take(4)?, 0);
            if nnz == ABSENT {
                rows.push(None);
                continue;
            }
            let nnz = nnz as usize;
            let idx = take(nnz.checked_mul(4).ok_or_else(|| bad("row too long"))?)?;
            let indices: Vec<u32> = (0..nnz).map(|k| u32_at(idx, k)).collect();
            let vals = take(nnz * 4)?;
            let values: Vec<f32> = (0..nnz).map(|k| f32::from_bits(u32_at(vals, k))).collect();
            if !indices.windows(2).all(|w| w[0] < w[1]) {
                return Err(bad("row indices are not strictly increasing"));
            }
            rows.push(Some(SparseVector { indices, values }));
        }
        if pos != body.len() {
            return Err(bad("trailing bytes"));
        }
        let mut store = SparseVectors { rows, postings: None, present: 0 };
        store.build_index();
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows() -> impl Strategy<Value = Vec<Option<SparseVector>>> {
        proptest::collection::vec(
            proptest::option::of(proptest::collection::btree_map(0u32..30, -3.0f32..3.0, 0..8)),
            0..40,
        )
        .prop_map(|rows| {
            rows.into_iter()
                .map(|r| {
                    r.map(|m| SparseVector::new(m.keys().copied().collect(), m.values().copied().collect()))
                })
                .collect()
        })
    }

    proptest! {
        /// The inverted index, the row scan and a brute-force oracle agree; the file encoding round-trips.
        #[test]
        fn index_scan_and_oracle_agree(rows in rows(), q in proptest::collection::btree_map(0u32..30, -3.0f32..3.0, 1..6), top in 1usize..10) {
            let query = SparseVector::new(q.keys().copied().collect(), q.values().copied().collect());
            let mut store = SparseVectors::default();
            rows.iter().for_each(|r| store.push_opt(r.as_ref()));
            let accept = |o: u32| o % 3 != 1;
            let scanned = store.search(&query, top, &accept);
            let mut oracle: Vec<(u32, f32)> = rows.iter().enumerate()
                .filter_map(|(o, r)| Some((o as u32, query.dot(r.as_ref()?)?)))
                .filter(|&(o, _)| accept(o)).collect();
            oracle.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            oracle.truncate(top);
            let all: Vec<u32> = (0..rows.len() as u32).collect();
            let mut indexed = SparseVectors::decode(&store.encode(&all), "test").unwrap();
            let via_index = indexed.search(&query, top, &accept);
            for (got, want) in [(&scanned, &oracle), (&via_index, &oracle)] {
                prop_assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(want.iter()) {
                    prop_assert!((g.1 - w.1).abs() < 1e-4, "{:?} vs {:?}", got, want);
                }
            }
            // Document frequencies with every third offset deleted, with and without the index.
            let mut deleted = crate::segment::BitSet::default();
            (0..rows.len() as u32).filter(|o| o % 3 == 0).for_each(|o| deleted.set(o));
            let live_rows: Vec<&SparseVector> =
                rows.iter().enumerate().filter(|(o, _)| o % 3 != 0).filter_map(|(_, r)| r.as_ref()).collect();
            for s in [&store, &indexed] {
                let (docs, df) = s.document_frequencies(&query.indices, &deleted);
                prop_assert_eq!(docs as usize, live_rows.len());
                for (i, d) in query.indices.iter().zip(df) {
                    prop_assert_eq!(d as usize, live_rows.iter().filter(|r| r.indices.contains(i)).count());
                }
            }
            indexed.build_index();
            prop_assert_eq!(indexed.len(), rows.len());
        }
    }

    proptest! {
        /// Non-negative values (where the search prunes): many rows over few indices, so common
        /// indices have long postings; the pruned search equals the oracle.
        #[test]
        fn pruned_search_equals_the_oracle(
            seed in any::<u64>(),
            n in 50usize..400,
            q in proptest::collection::btree_map(0u32..12, 0.0f32..3.0, 1..8),
            top in 1usize..12,
        ) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let rows: Vec<Option<SparseVector>> = (0..n)
                .map(|_| {
                    let m: std::collections::BTreeMap<u32, f32> =
                        (0..rng.gen_range(1..6)).map(|_| (rng.gen_range(0..12), rng.gen_range(0.0f32..2.0))).collect();
                    (!rng.gen_bool(0.1)).then(|| SparseVector::new(m.keys().copied().collect(), m.values().copied().collect()))
                })
                .collect();
            let query = SparseVector::new(q.keys().copied().collect(), q.values().copied().collect());
            let mut store = SparseVectors::default();
            rows.iter().for_each(|r| store.push_opt(r.as_ref()));
            store.build_index();
            let accept = |o: u32| o % 5 != 2;
            let got = store.search(&query, top, &accept);
            let mut oracle: Vec<(u32, f32)> = rows.iter().enumerate()
                .filter_map(|(o, r)| Some((o as u32, query.dot(r.as_ref()?)?)))
                .filter(|&(o, _)| accept(o)).collect();
            oracle.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            oracle.truncate(top);
            prop_assert_eq!(got.len(), oracle.len());
            for (g, w) in got.iter().zip(&oracle) {
                prop_assert!((g.1 - w.1).abs() < 1e-3, "{:?} vs {:?}", got, oracle);
            }
        }
    }

    #[test]
    fn corrupt_bodies_are_refused() {
        let mut store = SparseVectors::default();
        store.push_opt(Some(&SparseVector::new(vec![1, 2], vec![1.0, 2.0])));
        let body = store.encode(&[0]);
        assert!(SparseVectors::decode(&body[..body.len() - 1], "t").is_err());
        let mut unsorted = body.clone();
        unsorted[12..16].copy_from_slice(&5u32.to_le_bytes());
        assert!(SparseVectors::decode(&unsorted, "t").is_err());
    }
}
