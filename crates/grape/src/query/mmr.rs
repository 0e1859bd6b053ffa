//! `nearest` with `mmr`: maximal marginal relevance re-ranking, as Qdrant defines it.
//!
//! The nearest query first finds `candidates_limit` points (default: the query's `limit`) with its
//! filter and score threshold. With `λ = 1 - diversity` (diversity defaults to 0.5), MMR then picks
//! the candidate most similar to the query, and after it, repeatedly, the candidate maximising
//! `λ · sim(query, c) - (1 - λ) · max over picked p of sim(c, p)`, until `limit + offset` are picked;
//! the offset is dropped from that list. Similarities are the metric's internal ones (cosine, dot,
//! negative squared L2, negative L1; dot for sparse vectors, 0 without a shared index; MaxSim for
//! multivectors). Each point keeps its score from the nearest search.
//!
//! Ties follow Qdrant's implementation so answers match it exactly: the pending candidates are kept
//! in search order and a picked one is swap-removed (the last moves into its slot), and among equal
//! MMR scores the last one wins.

use grape_collection::validate::prepare_sparse_query;
use grape_index::distance::MetricKernel;

use crate::{Collection, Database, Distance, Error, Result, ScoredPoint, Vector, VectorsConfig, WithVector};

use super::scan::{max_sim, prepare_example};
use super::{resolve, run_base, vector_of, PointsQuery, QueryInput, VectorInput};

/// Qdrant's `mmr` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Mmr {
    /// Between 0 (relevance only) and 1 (diversity only); 0.5 when not given.
    pub diversity: Option<f32>,
    /// How many nearest points to re-rank; the query's `limit` when not given.
    pub candidates_limit: Option<usize>,
}

const DEFAULT_DIVERSITY: f32 = 0.5;

/// Runs `nearest` with `mmr` over the collection (or the prefetched points, by `q.filter`).
pub(super) fn run(
    db: &Database,
    c: &Collection,
    q: PointsQuery,
    nearest: VectorInput,
    mmr: Mmr,
) -> Result<Vec<ScoredPoint>> {
    let diversity = mmr.diversity.unwrap_or(DEFAULT_DIVERSITY);
    if !(0.0..=1.0).contains(&diversity) {
        return Err(Error::bad_input("mmr.diversity: must be between 0 and 1"));
    }
    let candidates_limit = mmr.candidates_limit.unwrap_or(q.limit);
    if candidates_limit == 0 {
        return Err(Error::bad_input("mmr.candidates_limit: must be at least 1"));
    }
    let config = c.config();
    let query = match resolve(db, c, &q, &nearest, &mut Vec::new())? {
        // MMR's relevance to a sparse query is the plain dot product, without IDF weights.
        Vector::Sparse(v) => Vector::Sparse(prepare_sparse_query(&config, &q.using, v)?),
        other => prepare_example(c, &config, &q.using, other)?,
    };
    let top = q.limit.saturating_add(q.offset);
    let search = PointsQuery {
        prefetch: Vec::new(),
        using: q.using.clone(),
        query: Some(QueryInput::Nearest(nearest)),
        filter: q.filter.clone(),
        params: q.params.clone(),
        limit: candidates_limit,
        offset: 0,
        score_threshold: q.score_threshold,
        with_payload: crate::WithPayload::Enable(false),
        with_vector: WithVector::Include(vec![q.using.clone()]),
        lookup_from: q.lookup_from.clone(),
        shard_key: None,
    };
    let mut candidates = Vec::new();
    let mut vectors = Vec::new();
    for mut point in run_base(db, c, search)? {
        let record = crate::Record { id: point.id, payload: None, vector: point.vector.take() };
        let Some(v) = vector_of(record, &q.using) else { continue };
        candidates.push(point);
        vectors.push(v);
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let distance = match config.sparse(&q.using) {
        Some(_) => Distance::Dot,
        None => config.params.vectors.get(&q.using).ok_or_else(|| VectorsConfig::missing(&q.using))?.distance,
    };
    let kernel = MetricKernel::new(distance);
    let similarity = |a: &Vector, b: &Vector| match (a, b) {
        (Vector::Dense(a), Vector::Dense(b)) => kernel.score(a, b),
        (Vector::Sparse(a), Vector::Sparse(b)) => a.dot_or_zero(b),
        (Vector::Multi(a), Vector::Multi(b)) => max_sim(&kernel, a, b),
        _ => f32::NEG_INFINITY,
    };
    let relevance: Vec<f32> = vectors.iter().map(|v| similarity(&query, v)).collect();
    let picked = select(&relevance, |a, b| similarity(&vectors[a], &vectors[b]), 1.0 - diversity, top);
    let points: Vec<ScoredPoint> = picked.into_iter().skip(q.offset).map(|i| candidates[i].clone()).collect();
    super::hydrate(c, points, &q.with_payload, &q.with_vector)
}

/// MMR's selection: indices of the picked candidates, in the order picked. `similarity(a, b)` is the
/// similarity of candidate `a` (as the query side) to candidate `b`.
fn select(
    relevance: &[f32],
    similarity: impl Fn(usize, usize) -> f32,
    lambda: f32,
    limit: usize,
) -> Vec<usize> {
    let (lambda, others) = (lambda as f64, 1.0 - lambda as f64);
    let mut pending: Vec<usize> = (0..relevance.len()).collect();
    let mut selected = Vec::new();
    if pending.is_empty() || limit == 0 {
        return selected;
    }
    let first = last_argmax(pending.iter().map(|&i| relevance[i] as f64));
    selected.push(pending.swap_remove(first));
    while selected.len() < limit && !pending.is_empty() {
        let scores: Vec<f64> = pending
            .iter()
            .map(|&p| {
                let closest =
                    selected.iter().map(|&s| similarity(p, s) as f64).fold(f64::NEG_INFINITY, f64::max);
                lambda * relevance[p] as f64 - others * closest
            })
            .collect();
        if scores.iter().all(|s| *s == f64::NEG_INFINITY) {
            break;
        }
        let best = last_argmax(scores.into_iter());
        selected.push(pending.swap_remove(best));
    }
    selected
}

/// Position of the largest value; among equal values, the last.
fn last_argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if i == 0 || v >= best.1 {
            best = (i, v);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_by_hand() {
        // Three candidates: 0 and 1 are near duplicates, 2 is different but a little less relevant.
        let relevance = [0.9, 0.89, 0.7];
        let sim = |a: usize, b: usize| {
            let m = [[1.0, 0.99, 0.1], [0.99, 1.0, 0.1], [0.1, 0.1, 1.0]];
            m[a][b]
        };
        // Relevance only: the order of relevance.
        assert_eq!(select(&relevance, sim, 1.0, 3), vec![0, 1, 2]);
        // Balanced: after 0, candidate 2 (0.5·0.7 - 0.5·0.1 = 0.3) beats 1 (0.5·0.89 - 0.5·0.99 = -0.05).
        assert_eq!(select(&relevance, sim, 0.5, 3), vec![0, 2, 1]);
        assert_eq!(select(&relevance, sim, 0.5, 2), vec![0, 2]);
        assert!(select(&[], sim, 0.5, 2).is_empty());
    }

    #[test]
    fn ties_pick_the_last_after_swap_removal() {
        // All equal: the first pick is the last candidate (3); it swaps out, leaving [0, 1, 2]; then 2.
        let picked = select(&[1.0, 1.0, 1.0, 1.0], |_, _| 0.0, 0.5, 4);
        assert_eq!(picked, vec![3, 2, 1, 0]);
        // After picking 1 from [0, 1, 2, 3], 3 moves into slot 1: [0, 3, 2].
        let picked = select(&[0.0, 5.0, 0.0, 0.0], |_, _| 0.0, 0.5, 4);
        assert_eq!(picked, vec![1, 2, 3, 0]);
        assert_eq!(last_argmax([1.0, 3.0, 3.0, 2.0].into_iter()), 2);
    }
}
