//! Custom-scored queries (recommend `best_score` / `sum_scores`, discover, context) by exact scan.
//!
//! The engine's search takes one query vector (HNSW or exact); a score built from several examples
//! has no entry point there yet, so these queries read every candidate's vector through scroll pages
//! and keep the best `limit + offset` in a bounded heap. Results are exact; the cost is one pass over
//! the points passing the filter. Hits carry `version: 0` (scroll does not report versions).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::{
    Collection, CollectionConfig, Database, Distance, Error, Filter, Modifier, PointId, Result, ScoredPoint,
    ScrollRequest, Vector, VectorsConfig, WithPayload, WithVector,
};
use grape_collection::validate::{prepare_multi, prepare_query, prepare_sparse_query};
use grape_index::distance::MetricKernel;
use grape_types::filter::Condition;

use super::scoring::{CustomQuery, Pair};
use super::{resolve, vector_of, ContextPair, PointsQuery, QueryInput, RecommendStrategy, VectorInput};

/// Points read per scroll page while scanning.
const PAGE: usize = 1024;

/// Runs a query whose score is not the similarity to one vector. Example points given by id are
/// excluded from the results (unless they come from `lookup_from`), as in Qdrant.
pub(super) fn run_custom(
    db: &Database,
    c: &Collection,
    q: PointsQuery,
    query: QueryInput,
) -> Result<Vec<ScoredPoint>> {
    let config = c.config();
    let mut examples = Vec::new();
    let mut vector = |input: &VectorInput| -> Result<Vector> {
        let v = resolve(db, c, &q, input, &mut examples)?;
        prepare_example(c, &config, &q.using, v)
    };
    let mut vectors = |inputs: &[VectorInput]| inputs.iter().map(&mut vector).collect::<Result<Vec<_>>>();
    let custom = match query {
        QueryInput::Recommend { positive, negative, strategy } => {
            if positive.is_empty() && negative.is_empty() {
                return Err(Error::bad_input(
                    "recommend: at least one positive or negative example is required",
                ));
            }
            let (positive, negative) = (vectors(&positive)?, vectors(&negative)?);
            match strategy {
                RecommendStrategy::BestScore => CustomQuery::BestScore { positive, negative },
                RecommendStrategy::SumScores => CustomQuery::SumScores { positive, negative },
                RecommendStrategy::AverageVector => {
                    return Err(Error::Internal("average_vector is a nearest-vector query".into()))
                }
            }
        }
        QueryInput::Discover { target, context } => {
            let target = vector(&target)?;
            CustomQuery::Discover { target, context: pairs(&mut vector, &context)? }
        }
        QueryInput::Context(context) => {
            if context.is_empty() {
                return Err(Error::bad_input("context: at least one pair of examples is required"));
            }
            CustomQuery::Context(pairs(&mut vector, &context)?)
        }
        QueryInput::Nearest(_)
        | QueryInput::NearestMmr { .. }
        | QueryInput::Fusion(_)
        | QueryInput::Formula(_)
        | QueryInput::OrderBy(_)
        | QueryInput::Sample => return Err(Error::Internal("not a custom-scored query".into())),
    };
    let mut filter = q.filter;
    if !examples.is_empty() && q.lookup_from.is_none() {
        let mut f = filter.unwrap_or_default();
        f.must_not.get_or_insert_with(Vec::new).push(Condition::HasId { has_id: examples });
        filter = Some(f);
    }
    let top = q.limit.saturating_add(q.offset);
    let hits = scan_top(c, &q.using, &custom, filter, top, q.score_threshold)?;
    let hits = hits.into_iter().skip(q.offset).collect();
    hydrate(c, hits, &q.with_payload, &q.with_vector)
}

/// An example of a multi-example query, checked and preprocessed like a query of its kind: dense
/// normalised for cosine, sparse sorted (and weighted by IDF when the vector asks for it), multivector
/// rows checked and normalised.
pub(super) fn prepare_example(
    c: &Collection,
    config: &CollectionConfig,
    using: &str,
    v: Vector,
) -> Result<Vector> {
    Ok(match v {
        Vector::Dense(v) if config.params.vectors.get(using).is_some_and(|p| p.is_multi()) => {
            Vector::Multi(prepare_multi(config, using, vec![v])?)
        }
        Vector::Dense(v) => Vector::Dense(prepare_query(config, using, &v)?),
        Vector::Multi(rows) => Vector::Multi(prepare_multi(config, using, rows)?),
        Vector::Sparse(v) => {
            let v = prepare_sparse_query(config, using, v)?;
            match config.sparse(using).map(|p| p.modifier()) {
                Some(Modifier::Idf) => Vector::Sparse(c.weight_by_idf(using, v)?),
                _ => Vector::Sparse(v),
            }
        }
    })
}

fn pairs(
    vector: &mut impl FnMut(&VectorInput) -> Result<Vector>,
    context: &[ContextPair],
) -> Result<Vec<Pair<Vector>>> {
    context
        .iter()
        .map(|p| Ok(Pair { positive: vector(&p.positive)?, negative: vector(&p.negative)? }))
        .collect()
}

/// A scanned point; ordered so that the heap's top is the worst kept one (lowest score, then the
/// highest id).
#[derive(Debug, PartialEq)]
struct Candidate {
    score: f32,
    id: PointId,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other.score.total_cmp(&self.score).then_with(|| self.id.cmp(&other.id))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The `top` best points passing `filter` that have the vector `using`, best first (ties by id).
/// Scores under `threshold` are dropped.
pub(super) fn scan_top(
    c: &Collection,
    using: &str,
    query: &CustomQuery<Vector>,
    filter: Option<Filter>,
    top: usize,
    threshold: Option<f32>,
) -> Result<Vec<(PointId, f32)>> {
    let config = c.config();
    // Sparse vectors score by dot product; an example sharing no index with a point scores 0 here.
    let distance = match config.sparse(using) {
        Some(_) => Distance::Dot,
        None => config.params.vectors.get(using).ok_or_else(|| VectorsConfig::missing(using))?.distance,
    };
    let kernel = MetricKernel::new(distance);
    let similarity = |example: &Vector, stored: &Vector| match (example, stored) {
        (Vector::Dense(e), Vector::Dense(v)) => kernel.score(e, v),
        (Vector::Sparse(e), Vector::Sparse(v)) => e.dot_or_zero(v),
        (Vector::Multi(e), Vector::Multi(v)) => max_sim(&kernel, e, v),
        _ => f32::NEG_INFINITY,
    };
    let mut heap = BinaryHeap::new();
    let mut req = ScrollRequest {
        offset: None,
        limit: PAGE,
        with_payload: WithPayload::Enable(false),
        with_vector: WithVector::Include(vec![using.to_string()]),
        filter,
    };
    loop {
        let page = c.scroll(&req)?;
        for record in page.points {
            let id = record.id;
            let Some(v) = vector_of(record, using) else { continue };
            let score = query.score(|example| similarity(example, &v));
            if threshold.is_some_and(|t| score < t) {
                continue;
            }
            heap.push(Candidate { score, id });
            if heap.len() > top {
                heap.pop();
            }
        }
        match page.next_page_offset {
            Some(next) => req.offset = Some(next),
            None => break,
        }
    }
    Ok(heap.into_sorted_vec().into_iter().map(|c| (c.id, c.score)).collect())
}

/// MaxSim of a query multivector against a stored one (internal similarities).
pub(super) fn max_sim(kernel: &MetricKernel, query: &[Vec<f32>], stored: &[Vec<f32>]) -> f32 {
    query.iter().map(|q| stored.iter().map(|d| kernel.score(q, d)).fold(f32::NEG_INFINITY, f32::max)).sum()
}

/// Scored points with the requested payload and vectors. A point deleted since it was scored is
/// left out.
pub(super) fn hydrate(
    c: &Collection,
    hits: Vec<(PointId, f32)>,
    with_payload: &WithPayload,
    with_vector: &WithVector,
) -> Result<Vec<ScoredPoint>> {
    let bare: Vec<ScoredPoint> = hits
        .into_iter()
        .map(|(id, score)| ScoredPoint {
            id,
            version: 0,
            score,
            payload: None,
            vector: None,
            order_value: None,
        })
        .collect();
    super::hydrate(c, bare, with_payload, with_vector)
}
