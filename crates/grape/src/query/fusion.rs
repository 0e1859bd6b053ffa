//! Fusion of several ranked lists (the results of a query's prefetches) into one, as Qdrant defines it.
//!
//! - Reciprocal rank fusion: a point at 0-based position `p` of a list with weight `w` earns
//!   `1 / ((p + 1) / w + k - 1)` (0 when `w <= 0`); its score is the sum over the lists. `k` is 2
//!   unless the query sets it; weights default to 1.
//! - Distribution-based score fusion: each list's scores are mapped by `(s - (mean - 3σ)) / 6σ`
//!   (σ the sample standard deviation; a list of one point, or of equal scores, maps to 0.5), then
//!   summed per point.
//!
//! Points are ranked by fused score; equal scores keep the order in which points first appeared
//! (list by list, best first), so results are deterministic.

use std::collections::HashMap;

use crate::{Error, PointId, Result, ScoredPoint};

/// The default RRF constant `k`.
pub const DEFAULT_RRF_K: u32 = 2;

/// How a query fuses its prefetches.
#[derive(Debug, Clone, PartialEq)]
pub enum Fusion {
    Rrf { k: Option<u32>, weights: Option<Vec<f32>> },
    Dbsf,
}

/// Fuses `lists` and returns the best `top` points (scores replaced by the fused score).
pub fn fuse(fusion: &Fusion, lists: Vec<Vec<ScoredPoint>>, top: usize) -> Result<Vec<ScoredPoint>> {
    let mut acc = Accumulator::default();
    match fusion {
        Fusion::Rrf { k, weights } => {
            if let Some(w) = weights {
                if w.len() != lists.len() {
                    return Err(Error::bad_input(format!(
                        "rrf.weights: {} weights given for {} prefetches",
                        w.len(),
                        lists.len()
                    )));
                }
                if w.iter().any(|x| !x.is_finite()) {
                    return Err(Error::bad_input("rrf.weights: weights must be finite numbers"));
                }
            }
            let k = k.unwrap_or(DEFAULT_RRF_K) as f64;
            for (i, list) in lists.into_iter().enumerate() {
                let w = weights.as_ref().map_or(1.0, |w| w[i] as f64);
                for (pos, point) in list.into_iter().enumerate() {
                    let score = if w <= 0.0 { 0.0 } else { 1.0 / ((pos as f64 + 1.0) / w + k - 1.0) };
                    acc.add(point, score);
                }
            }
        }
        Fusion::Dbsf => {
            for list in lists {
                let normalized = normalize(&list);
                for (point, score) in list.into_iter().zip(normalized) {
                    acc.add(point, score);
                }
            }
        }
    }
    Ok(acc.into_top(top))
}

/// DBSF's normalisation of one list's scores.
fn normalize(list: &[ScoredPoint]) -> Vec<f64> {
    let n = list.len();
    if n <= 1 {
        return vec![0.5; n];
    }
    let scores: Vec<f64> = list.iter().map(|p| p.score as f64).collect();
    let mean = scores.iter().sum::<f64>() / n as f64;
    let variance = scores.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / (n as f64 - 1.0);
    if variance == 0.0 {
        return vec![0.5; n];
    }
    let sd = variance.sqrt();
    let low = mean - 3.0 * sd;
    scores.iter().map(|s| (s - low) / (6.0 * sd)).collect()
}

/// Fused scores per point, remembering the order of first appearance.
#[derive(Default)]
struct Accumulator {
    order: Vec<(ScoredPoint, f64)>,
    index: HashMap<PointId, usize>,
}

impl Accumulator {
    fn add(&mut self, point: ScoredPoint, score: f64) {
        match self.index.get(&point.id) {
            Some(&i) => self.order[i].1 += score,
            None => {
                self.index.insert(point.id, self.order.len());
                self.order.push((point, score));
            }
        }
    }

    fn into_top(self, top: usize) -> Vec<ScoredPoint> {
        let mut all = self.order;
        // A stable sort: equal scores keep the order of first appearance.
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        all.truncate(top);
        all.into_iter().map(|(p, score)| ScoredPoint { score: score as f32, ..p }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(points: &[(u64, f32)]) -> Vec<ScoredPoint> {
        points
            .iter()
            .map(|&(id, score)| ScoredPoint {
                id: PointId::Num(id),
                version: 0,
                score,
                payload: None,
                vector: None,
                order_value: None,
            })
            .collect()
    }

    fn ids_scores(points: &[ScoredPoint]) -> Vec<(u64, f32)> {
        points
            .iter()
            .map(|p| match p.id {
                PointId::Num(n) => (n, p.score),
                PointId::Uuid(_) => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn rrf_by_hand() {
        // List a: 1, 2, 3. List b: 3, 1. With k = 2: position p scores 1 / (p + 2).
        let fused = fuse(
            &Fusion::Rrf { k: None, weights: None },
            vec![list(&[(1, 0.9), (2, 0.8), (3, 0.7)]), list(&[(3, 5.0), (1, 4.0)])],
            10,
        )
        .unwrap();
        let expected = [(1, 1.0 / 2.0 + 1.0 / 3.0), (3, 1.0 / 4.0 + 1.0 / 2.0), (2, 1.0 / 3.0)];
        let got = ids_scores(&fused);
        assert_eq!(got.len(), 3);
        for ((gid, gs), (eid, es)) in got.iter().zip(expected) {
            assert_eq!(*gid, eid);
            assert!((gs - es as f32).abs() < 1e-6);
        }
        // k = 60, weights 2 and 0: the second list adds nothing.
        let fused = fuse(
            &Fusion::Rrf { k: Some(60), weights: Some(vec![2.0, 0.0]) },
            vec![list(&[(1, 0.9), (2, 0.8)]), list(&[(2, 1.0)])],
            1,
        )
        .unwrap();
        assert_eq!(ids_scores(&fused), vec![(1, (1.0 / (0.5 + 59.0)) as f32)]);
        assert!(fuse(&Fusion::Rrf { k: None, weights: Some(vec![1.0]) }, vec![vec![], vec![]], 3).is_err());
    }

    #[test]
    fn dbsf_by_hand() {
        // List a: scores 1, 2, 3 (mean 2, sd 1): normalised (s - (2 - 3)) / 6 = 2/6, 3/6, 4/6.
        // List b: a single point scores 0.5.
        let fused = fuse(&Fusion::Dbsf, vec![list(&[(3, 3.0), (2, 2.0), (1, 1.0)]), list(&[(1, 100.0)])], 10)
            .unwrap();
        let got = ids_scores(&fused);
        assert_eq!(got[0].0, 1);
        assert!((got[0].1 - (2.0 / 6.0 + 0.5)).abs() < 1e-6);
        assert_eq!(got[1].0, 3);
        assert!((got[1].1 - 4.0 / 6.0).abs() < 1e-6);
        // Equal scores map to 0.5 each and keep their order.
        let fused = fuse(&Fusion::Dbsf, vec![list(&[(7, 1.0), (5, 1.0)])], 10).unwrap();
        assert_eq!(ids_scores(&fused), vec![(7, 0.5), (5, 0.5)]);
    }
}
