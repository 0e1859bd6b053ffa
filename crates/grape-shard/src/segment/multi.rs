//! Multivectors of one name in one segment: each point holds any number of dense rows of one size,
//! scored against a query multivector by MaxSim (for every query row, the best similarity to any of
//! the point's rows, summed).
//!
//! Search is an exact scan over the points (there is no multivector graph yet); rows are kept in RAM,
//! row-major, per point. `multi-<i>.bin` persists them (docs/format.md).

use grape_index::distance::MetricKernel;
use grape_types::{Distance, Error, Result};

#[derive(Debug)]
pub struct MultiVectors {
    dim: usize,
    distance: Distance,
    /// Per offset: the point's rows, concatenated (length a multiple of `dim`), or none.
    rows: Vec<Option<Vec<f32>>>,
}

const ABSENT: u32 = u32::MAX;

impl MultiVectors {
    pub fn new(dim: usize, distance: Distance) -> Self {
        MultiVectors { dim, distance, rows: Vec::new() }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn distance(&self) -> Distance {
        self.distance
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn has(&self, offset: u32) -> bool {
        self.rows.get(offset as usize).is_some_and(Option::is_some)
    }

    /// The point's rows, if it has this multivector.
    pub fn get(&self, offset: u32) -> Option<Vec<Vec<f32>>> {
        let flat = self.rows.get(offset as usize)?.as_ref()?;
        Some(flat.chunks_exact(self.dim).map(<[f32]>::to_vec).collect())
    }

    fn flatten(&self, v: Option<&[Vec<f32>]>) -> Result<Option<Vec<f32>>> {
        let Some(rows) = v else { return Ok(None) };
        if rows.iter().any(|r| r.len() != self.dim) {
            return Err(Error::Internal("multivector row of the wrong size reached the segment".into()));
        }
        Ok(Some(rows.concat()))
    }

    pub fn push_opt(&mut self, v: Option<&[Vec<f32>]>) -> Result<()> {
        let flat = self.flatten(v)?;
        self.rows.push(flat);
        Ok(())
    }

    pub fn set_opt(&mut self, offset: u32, v: Option<&[Vec<f32>]>) -> Result<()> {
        self.rows[offset as usize] = self.flatten(v)?;
        Ok(())
    }

    pub fn data_bytes(&self) -> usize {
        self.rows.iter().map(|r| r.as_ref().map_or(0, |r| r.len() * 4)).sum()
    }

    pub fn ram_bytes(&self) -> usize {
        self.rows.iter().map(|r| 24 + r.as_ref().map_or(0, |r| r.capacity() * 4)).sum()
    }

    /// MaxSim of `query` (rows of `dim`, preprocessed like stored rows) against the point at `offset`,
    /// as an internal score (larger is better); `None` when the point has no such multivector.
    pub fn max_sim(&self, kernel: &MetricKernel, query: &[Vec<f32>], offset: u32) -> Option<f32> {
        let flat = self.rows.get(offset as usize)?.as_ref()?;
        Some(
            query
                .iter()
                .map(|q| {
                    flat.chunks_exact(self.dim).map(|d| kernel.score(q, d)).fold(f32::NEG_INFINITY, f32::max)
                })
                .sum(),
        )
    }

    /// File body of the rows at `offsets`: `u64 count`, then per point `u32 rows` (`u32::MAX` for none)
    /// and `rows × dim` f32, little-endian.
    pub fn encode(&self, offsets: &[u32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + offsets.len() * 4);
        out.extend_from_slice(&(offsets.len() as u64).to_le_bytes());
        for &o in offsets {
            match self.rows.get(o as usize).and_then(Option::as_ref) {
                None => out.extend_from_slice(&ABSENT.to_le_bytes()),
                Some(flat) => {
                    out.extend_from_slice(&((flat.len() / self.dim) as u32).to_le_bytes());
                    flat.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
                }
            }
        }
        out
    }

    pub fn decode(body: &[u8], dim: usize, distance: Distance, what: &str) -> Result<MultiVectors> {
        let bad = |why: &str| Error::Corruption(format!("{what}: {why}"));
        let mut pos = 0usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            let s = body
                .get(pos..pos.checked_add(n).ok_or_else(|| bad("too long"))?)
                .ok_or_else(|| bad("truncated"))?;
            pos += n;
            Ok(s)
        };
        let count = u64::from_le_bytes(take(8)?.try_into().map_err(|_| bad("truncated"))?) as usize;
        let mut rows = Vec::with_capacity(count.min(body.len() / 4));
        for _ in 0..count {
            let n = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad("truncated"))?);
            if n == ABSENT {
                rows.push(None);
                continue;
            }
            let len = (n as usize)
                .checked_mul(dim)
                .and_then(|l| l.checked_mul(4))
                .ok_or_else(|| bad("too long"))?;
            let bytes = take(len)?;
            rows.push(Some(
                bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            ));
        }
        if pos != body.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(MultiVectors { dim, distance, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_sim_and_round_trip() {
        let mut m = MultiVectors::new(2, Distance::Dot);
        m.push_opt(Some(&[vec![1.0, 0.0], vec![0.0, 2.0]])).unwrap();
        m.push_opt(None).unwrap();
        m.push_opt(Some(&[vec![3.0, 3.0]])).unwrap();
        let kernel = MetricKernel::new(Distance::Dot);
        let q = [vec![1.0, 1.0], vec![1.0, -1.0]];
        // Point 0: q0 -> max(1, 2) = 2, q1 -> max(1, -2) = 1; point 2: 6 + 0.
        assert_eq!(m.max_sim(&kernel, &q, 0), Some(3.0));
        assert_eq!(m.max_sim(&kernel, &q, 1), None);
        assert_eq!(m.max_sim(&kernel, &q, 2), Some(6.0));
        let back = MultiVectors::decode(&m.encode(&[2, 1, 0]), 2, Distance::Dot, "t").unwrap();
        assert_eq!(back.get(0), Some(vec![vec![3.0, 3.0]]));
        assert_eq!(back.get(1), None);
        assert_eq!(back.get(2), m.get(0));
        let body = m.encode(&[0]);
        assert!(MultiVectors::decode(&body[..body.len() - 2], 2, Distance::Dot, "t").is_err());
        assert!(m.push_opt(Some(&[vec![1.0]])).is_err());
    }
}
