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
    postings: Option<HashMap<u32, Vec<(u32, f32)>>>,
}

/// Marks an absent row in the file encoding.
const ABSENT: u32 = u32::MAX;

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
        let mut postings: HashMap<u32, Vec<(u32, f32)>> = HashMap::new();
        for (offset, row) in self.rows.iter().enumerate() {
            for (&i, &v) in row.iter().flat_map(|r| r.indices.iter().zip(&r.values)) {
                postings.entry(i).or_default().push((offset as u32, v));
            }
        }
        postings.values_mut().for_each(|p| p.shrink_to_fit());
        self.postings = Some(postings);
    }

    pub fn ram_bytes(&self) -> usize {
        let rows: usize =
            self.rows.iter().map(|r| 56 + r.as_ref().map_or(0, |r| r.indices.capacity() * 8)).sum();
        let postings: usize =
            self.postings.as_ref().map_or(0, |p| p.values().map(|l| 32 + l.capacity() * 8).sum());
        rows + postings
    }

    /// Bytes of stored values and indices (the unit of size thresholds).
    pub fn data_bytes(&self) -> usize {
        self.rows.iter().map(|r| r.as_ref().map_or(0, |r| r.len() * 8)).sum()
    }

    /// Every point whose vector shares an index with `query` and which `accept` lets through, with
    /// its dot product: the top `top` by score (ties: smaller offset first), best first.
    pub fn search(&self, query: &SparseVector, top: usize, accept: &dyn Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let mut hits: Vec<(u32, f32)> = match &self.postings {
            Some(postings) => {
                let mut scores: HashMap<u32, f32> = HashMap::new();
                for (i, &qv) in query.indices.iter().zip(&query.values) {
                    for &(offset, v) in postings.get(i).map_or(&[][..], Vec::as_slice) {
                        *scores.entry(offset).or_insert(0.0) += qv * v;
                    }
                }
                scores.into_iter().filter(|&(o, _)| accept(o)).collect()
            }
            None => self
                .rows
                .iter()
                .enumerate()
                .filter_map(|(o, r)| Some((o as u32, query.dot(r.as_ref()?)?)))
                .filter(|&(o, _)| accept(o))
                .collect(),
        };
        let by_score = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if hits.len() > top && top > 0 {
            hits.select_nth_unstable_by(top - 1, by_score);
            hits.truncate(top);
        }
        hits.sort_by(by_score);
        hits.truncate(top);
        hits
    }

    /// For IDF: how many offsets `live` accepts have a vector, and for each of `indices` how many of
    /// them contain it.
    pub fn document_frequencies(&self, indices: &[u32], live: &dyn Fn(u32) -> bool) -> (u64, Vec<u64>) {
        let docs = (0..self.rows.len() as u32).filter(|&o| self.has(o) && live(o)).count() as u64;
        let df = indices
            .iter()
            .map(|i| match &self.postings {
                Some(p) => p.get(i).map_or(0, |l| l.iter().filter(|(o, _)| live(*o)).count() as u64),
                None => self
                    .rows
                    .iter()
                    .enumerate()
                    .filter(|(o, r)| {
                        r.as_ref().is_some_and(|r| r.indices.binary_search(i).is_ok()) && live(*o as u32)
                    })
                    .count() as u64,
            })
            .collect();
        (docs, df)
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
        let mut store = SparseVectors { rows, postings: None };
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
            let (docs, df) = indexed.document_frequencies(&query.indices, &|_| true);
            prop_assert_eq!(docs as usize, rows.iter().filter(|r| r.is_some()).count());
            for (i, d) in query.indices.iter().zip(df) {
                prop_assert_eq!(d as usize, rows.iter().flatten().filter(|r| r.indices.contains(i)).count());
            }
            indexed.build_index();
            prop_assert_eq!(indexed.len(), rows.len());
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
