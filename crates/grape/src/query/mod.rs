//! Qdrant's Query API over one collection: nearest (dense or sparse vector, or a stored point's vector,
//! optionally re-ranked by maximal marginal relevance), recommend, discover, context, fusion of
//! prefetches, score boosting by a formula, order by a payload value, random sampling.
//!
//! A query may carry a tree of prefetches: each runs first (inheriting its parent's filter, merged
//! clause by clause as Qdrant merges filters), then its parent fuses their results ([`fusion`]),
//! re-scores them with a formula ([`formula`]) or re-scores the prefetched points with its own query.
//! Front ends (REST, gRPC) and embedded users all run queries through [`run_query`] (or
//! [`crate::Database::query`]).

mod sample;
mod scan;

pub mod formula;
pub mod fusion;
pub mod mmr;
pub mod order_by;
pub mod scoring;

use std::sync::Arc;

use grape_types::filter::Condition;

pub use formula::{Expression, Formula};
pub use fusion::Fusion;
pub use mmr::Mmr;
pub use order_by::OrderedScroll;

use crate::{
    Collection, Database, Error, Filter, NamedVectorSearch, PointId, Record, Result, ScoredPoint,
    ScrollRequest, SearchParams, SearchRequest, SparseVector, Vector, VectorOutput, WithPayload, WithVector,
};

/// A vector given by value or by the id of a stored point.
#[derive(Debug, Clone, PartialEq)]
pub enum VectorInput {
    Dense(Vec<f32>),
    Sparse(SparseVector),
    Multi(Vec<Vec<f32>>),
    Point(PointId),
}

/// How recommend combines its examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecommendStrategy {
    #[default]
    AverageVector,
    BestScore,
    SumScores,
}

/// A positive and a negative example of discovery and context queries.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextPair {
    pub positive: VectorInput,
    pub negative: VectorInput,
}

/// The `query` of a Query API request. `Discover` ranks by the context pairs first, then by the
/// similarity to `target`; `Context` looks for the zone where the pairs' positives overlap. `Fusion`
/// and `Formula` combine the results of the prefetches; `OrderBy` lists points by a payload value;
/// `Sample` picks random points.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryInput {
    Nearest(VectorInput),
    NearestMmr { nearest: VectorInput, mmr: Mmr },
    Recommend { positive: Vec<VectorInput>, negative: Vec<VectorInput>, strategy: RecommendStrategy },
    Discover { target: VectorInput, context: Vec<ContextPair> },
    Context(Vec<ContextPair>),
    Fusion(Fusion),
    Formula(Formula),
    OrderBy(crate::OrderBy),
    Sample,
}

/// Where example point ids are looked up (Qdrant's `lookup_from`).
#[derive(Debug, Clone, PartialEq)]
pub struct LookupLocation {
    pub collection: String,
    pub vector: Option<String>,
}

/// One query against one collection: Qdrant's Query API request reduced to what Grape runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PointsQuery {
    /// Sub-queries whose results this query re-ranks or fuses (empty: the query runs over the
    /// whole collection).
    pub prefetch: Vec<Prefetch>,
    pub using: String,
    pub query: Option<QueryInput>,
    pub filter: Option<Filter>,
    pub params: SearchParams,
    pub limit: usize,
    pub offset: usize,
    pub score_threshold: Option<f32>,
    pub with_payload: WithPayload,
    pub with_vector: WithVector,
    pub lookup_from: Option<LookupLocation>,
    /// The shard keys the query reads (custom sharding; `None`: every shard).
    pub shard_key: Option<crate::ShardKeySelector>,
}

/// A Query API prefetch: a query of its own (with its own prefetches) whose results feed its parent.
#[derive(Debug, Clone, PartialEq)]
pub struct Prefetch {
    pub prefetch: Vec<Prefetch>,
    pub query: Option<QueryInput>,
    pub using: String,
    pub filter: Option<Filter>,
    pub params: SearchParams,
    pub score_threshold: Option<f32>,
    /// Qdrant's default is 10.
    pub limit: usize,
    pub lookup_from: Option<LookupLocation>,
}

/// How deep prefetches may nest.
pub const MAX_PREFETCH_DEPTH: usize = 16;

/// Executes one query. Example points given by id are excluded from the results, as in Qdrant.
/// With prefetches, their results (computed first, each inheriting this query's filter) are fused or
/// re-scored by `query`; without, `query` runs over the collection.
pub fn run_query(db: &Database, c: &Collection, mut q: PointsQuery) -> Result<Vec<ScoredPoint>> {
    if q.limit == 0 {
        return Err(Error::bad_input("limit: must be at least 1"));
    }
    let scoped;
    let c = match q.shard_key.take() {
        Some(selector) => {
            scoped = c.select(Some(&selector))?;
            &scoped
        }
        None => c,
    };
    if q.prefetch.is_empty() {
        return run_base(db, c, q);
    }
    let sources = std::mem::take(&mut q.prefetch)
        .into_iter()
        .map(|p| run_prefetch(db, c, p, q.filter.as_ref(), 1))
        .collect::<Result<Vec<_>>>()?;
    merge_sources(db, c, q, sources)
}

fn run_prefetch(
    db: &Database,
    c: &Collection,
    p: Prefetch,
    parent_filter: Option<&Filter>,
    depth: usize,
) -> Result<Vec<ScoredPoint>> {
    if depth > MAX_PREFETCH_DEPTH {
        return Err(Error::bad_input(format!("prefetch: nested deeper than {MAX_PREFETCH_DEPTH} levels")));
    }
    if p.limit == 0 {
        return Err(Error::bad_input("prefetch.limit: must be at least 1"));
    }
    let filter = Filter::merge(parent_filter, p.filter.as_ref());
    let q = PointsQuery {
        prefetch: Vec::new(),
        using: p.using,
        query: p.query,
        filter,
        params: p.params,
        limit: p.limit,
        offset: 0,
        score_threshold: p.score_threshold,
        with_payload: WithPayload::Enable(false),
        with_vector: WithVector::Enable(false),
        lookup_from: p.lookup_from,
        shard_key: None,
    };
    if p.prefetch.is_empty() {
        return run_base(db, c, q);
    }
    let sources = p
        .prefetch
        .into_iter()
        .map(|inner| run_prefetch(db, c, inner, q.filter.as_ref(), depth + 1))
        .collect::<Result<Vec<_>>>()?;
    merge_sources(db, c, q, sources)
}

/// Applies `q.query` to the results of its prefetches: fusion, or re-scoring of the prefetched points.
fn merge_sources(
    db: &Database,
    c: &Collection,
    q: PointsQuery,
    sources: Vec<Vec<ScoredPoint>>,
) -> Result<Vec<ScoredPoint>> {
    match &q.query {
        None => Err(Error::bad_input("query: a query is required to combine the results of prefetches")),
        Some(QueryInput::Fusion(fusion)) => {
            let top = q.limit.saturating_add(q.offset);
            let mut fused = fusion::fuse(fusion, sources, top)?;
            if let Some(t) = q.score_threshold {
                fused.retain(|p| p.score >= t);
            }
            let fused: Vec<ScoredPoint> = fused.into_iter().skip(q.offset).collect();
            hydrate(c, fused, &q.with_payload, &q.with_vector)
        }
        Some(QueryInput::Formula(f)) => {
            let mut rescored = formula::rescore(c, f, &sources, q.limit.saturating_add(q.offset))?;
            if let Some(t) = q.score_threshold {
                rescored.retain(|p| p.score >= t);
            }
            let rescored: Vec<ScoredPoint> = rescored.into_iter().skip(q.offset).collect();
            hydrate(c, rescored, &q.with_payload, &q.with_vector)
        }
        Some(_) => {
            let mut ids: Vec<PointId> = sources.iter().flatten().map(|p| p.id).collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut q = q;
            let mut f = q.filter.take().unwrap_or_default();
            f.must.get_or_insert_with(Vec::new).push(Condition::HasId { has_id: ids });
            q.filter = Some(f);
            run_base(db, c, q)
        }
    }
}

/// Attaches payloads and vectors to scored points (fused results carry neither).
pub fn hydrate(
    c: &Collection,
    points: Vec<ScoredPoint>,
    with_payload: &WithPayload,
    with_vector: &WithVector,
) -> Result<Vec<ScoredPoint>> {
    if !with_payload.is_enabled() && !with_vector.is_enabled() {
        return Ok(points);
    }
    let ids: Vec<PointId> = points.iter().map(|p| p.id).collect();
    let mut records: std::collections::HashMap<PointId, Record> =
        c.retrieve(&ids, with_payload, with_vector)?.into_iter().map(|r| (r.id, r)).collect();
    Ok(points
        .into_iter()
        .filter_map(|mut p| {
            // A point deleted since it was scored is dropped rather than returned without its data.
            let r = records.remove(&p.id)?;
            p.payload = r.payload;
            p.vector = r.vector;
            Some(p)
        })
        .collect())
}

/// A query over the whole collection (no prefetch).
fn run_base(db: &Database, c: &Collection, mut q: PointsQuery) -> Result<Vec<ScoredPoint>> {
    let Some(query) = q.query.take() else { return list_by_id(c, &q) };
    let (vector, examples) = match query {
        QueryInput::Nearest(input) => {
            let mut examples = Vec::new();
            let v = resolve(db, c, &q, &input, &mut examples)?;
            (v, examples)
        }
        QueryInput::Recommend { positive, negative, strategy: RecommendStrategy::AverageVector } => {
            if positive.is_empty() {
                return Err(Error::bad_input("recommend: at least one positive example is required"));
            }
            let mut examples = Vec::new();
            let mut resolved = |input: &VectorInput| resolve(db, c, &q, input, &mut examples);
            let pos = positive.iter().map(&mut resolved).collect::<Result<Vec<_>>>()?;
            let neg = negative.iter().map(&mut resolved).collect::<Result<Vec<_>>>()?;
            (average_vector_query(pos, neg)?, examples)
        }
        QueryInput::Fusion(_) => {
            return Err(Error::bad_input("query: fusion combines the results of prefetches; none given"))
        }
        QueryInput::Formula(_) => {
            return Err(Error::bad_input("query: a formula re-scores the results of prefetches; none given"))
        }
        QueryInput::NearestMmr { nearest, mmr: params } => return mmr::run(db, c, q, nearest, params),
        QueryInput::OrderBy(order) => return order_by::query(c, &q, &order),
        QueryInput::Sample => return sample::random(c, &q),
        custom => return scan::run_custom(db, c, q, custom),
    };
    let mut filter = q.filter.take();
    if !examples.is_empty() && q.lookup_from.is_none() {
        let mut f = filter.unwrap_or_default();
        f.must_not.get_or_insert_with(Vec::new).push(Condition::HasId { has_id: examples });
        filter = Some(f);
    }
    // A single dense query against a multivector is a multivector of one row.
    let vector = match vector {
        Vector::Dense(v) if c.is_multivector(&q.using) => Vector::Multi(vec![v]),
        other => other,
    };
    match vector {
        Vector::Multi(vector) => c.search_multi(&named_search(&q, vector, filter)),
        Vector::Sparse(vector) => c.search_sparse(&named_search(&q, vector, filter)),
        Vector::Dense(vector) => c.search(&SearchRequest {
            using: q.using,
            vector,
            limit: q.limit,
            offset: q.offset,
            score_threshold: q.score_threshold,
            params: q.params,
            with_payload: q.with_payload,
            with_vector: q.with_vector,
            filter,
        }),
    }
}

fn named_search<V>(q: &PointsQuery, vector: V, filter: Option<Filter>) -> NamedVectorSearch<V> {
    NamedVectorSearch {
        using: q.using.clone(),
        vector,
        limit: q.limit,
        offset: q.offset,
        score_threshold: q.score_threshold,
        with_payload: q.with_payload.clone(),
        with_vector: q.with_vector.clone(),
        filter,
    }
}

/// The dense vector of an example; sparse examples are refused by name (`what` is the query kind).
pub fn dense_only(v: Vector, what: &str) -> Result<Vec<f32>> {
    match v {
        Vector::Dense(v) => Ok(v),
        Vector::Sparse(_) => {
            Err(Error::bad_input(format!("{what}: sparse vectors are not supported here yet")))
        }
        Vector::Multi(_) => Err(Error::bad_input(format!("{what}: multivectors are not supported here yet"))),
    }
}

/// Qdrant's average-vector recommendation: `avg(positive) + (avg(positive) - avg(negative))` for dense and
/// sparse examples (sparse: over the union of indices, a missing index counting 0); for multivectors,
/// the positive examples' rows together with the negative examples' rows negated.
fn average_vector_query(pos: Vec<Vector>, neg: Vec<Vector>) -> Result<Vector> {
    let kind_mismatch = || Error::bad_input("recommend: examples must all be of the vector's kind");
    match &pos[0] {
        Vector::Dense(_) => {
            let dense = |vs: Vec<Vector>| {
                vs.into_iter().map(|v| dense_only(v, "recommend")).collect::<Result<Vec<_>>>()
            };
            Ok(Vector::Dense(average_dense(&dense(pos)?, &dense(neg)?)?))
        }
        Vector::Sparse(_) => {
            let sparse = |vs: Vec<Vector>| -> Result<Vec<SparseVector>> {
                vs.into_iter()
                    .map(|v| match v {
                        Vector::Sparse(s) => s.validated("recommend example"),
                        _ => Err(kind_mismatch()),
                    })
                    .collect()
            };
            let (pos, neg) = (sparse(pos)?, sparse(neg)?);
            let p = sparse_average(&pos);
            if neg.is_empty() {
                return Ok(Vector::Sparse(p));
            }
            let n = sparse_average(&neg);
            Ok(Vector::Sparse(sparse_combine(&p, &n, |p, n| p + p - n)))
        }
        Vector::Multi(_) => {
            let mut rows = Vec::new();
            for v in pos {
                let Vector::Multi(r) = v else { return Err(kind_mismatch()) };
                rows.extend(r);
            }
            for v in neg {
                let Vector::Multi(r) = v else { return Err(kind_mismatch()) };
                rows.extend(r.into_iter().map(|row| row.into_iter().map(|x| -x).collect::<Vec<f32>>()));
            }
            Ok(Vector::Multi(rows))
        }
    }
}

fn average_dense(pos: &[Vec<f32>], neg: &[Vec<f32>]) -> Result<Vec<f32>> {
    let avg = |vs: &[Vec<f32>]| -> Result<Vec<f32>> {
        let dim = vs[0].len();
        let mut out = vec![0.0f32; dim];
        for v in vs {
            if v.len() != dim {
                return Err(Error::DimensionMismatch { expected: dim, got: v.len() });
            }
            out.iter_mut().zip(v).for_each(|(o, x)| *o += x);
        }
        out.iter_mut().for_each(|o| *o /= vs.len() as f32);
        Ok(out)
    };
    let p = avg(pos)?;
    if neg.is_empty() {
        return Ok(p);
    }
    let n = avg(neg)?;
    if n.len() != p.len() {
        return Err(Error::DimensionMismatch { expected: p.len(), got: n.len() });
    }
    Ok(p.iter().zip(&n).map(|(p, n)| p + (p - n)).collect())
}

/// Index-wise `op(a, b)` over the union of the indices of two sorted sparse vectors (0 where missing).
fn sparse_combine(a: &SparseVector, b: &SparseVector, op: impl Fn(f32, f32) -> f32) -> SparseVector {
    let (mut i, mut j) = (0, 0);
    let mut out = SparseVector::default();
    while i < a.len() || j < b.len() {
        let (index, x, y) = match (a.indices.get(i), b.indices.get(j)) {
            (Some(&ai), Some(&bj)) if ai == bj => {
                i += 1;
                j += 1;
                (ai, a.values[i - 1], b.values[j - 1])
            }
            (Some(&ai), Some(&bj)) if ai < bj => {
                i += 1;
                (ai, a.values[i - 1], 0.0)
            }
            (Some(&ai), None) => {
                i += 1;
                (ai, a.values[i - 1], 0.0)
            }
            (_, Some(&bj)) => {
                j += 1;
                (bj, 0.0, b.values[j - 1])
            }
            (None, None) => unreachable!("the loop runs while one side has entries"),
        };
        out.indices.push(index);
        out.values.push(op(x, y));
    }
    out
}

/// The mean of sparse vectors (sum over the union of indices, divided by their number).
fn sparse_average(vs: &[SparseVector]) -> SparseVector {
    let mut sum = SparseVector::default();
    for v in vs {
        sum = sparse_combine(&sum, v, |a, b| a + b);
    }
    sum.values.iter_mut().for_each(|x| *x /= vs.len() as f32);
    sum
}

/// The vector of an input: given, or read from a stored point (in `lookup_from` when set).
fn resolve(
    db: &Database,
    c: &Collection,
    q: &PointsQuery,
    input: &VectorInput,
    examples: &mut Vec<PointId>,
) -> Result<Vector> {
    let id = match input {
        VectorInput::Dense(v) => return Ok(Vector::Dense(v.clone())),
        VectorInput::Sparse(v) => return Ok(Vector::Sparse(v.clone())),
        VectorInput::Multi(v) => return Ok(Vector::Multi(v.clone())),
        VectorInput::Point(id) => *id,
    };
    examples.push(id);
    let (source, name): (Arc<Collection>, String) = match &q.lookup_from {
        Some(l) => (db.collection(&l.collection)?, l.vector.clone().unwrap_or_else(|| q.using.clone())),
        None => (db.collection(c.name())?, q.using.clone()),
    };
    let records =
        source.retrieve(&[id], &WithPayload::Enable(false), &WithVector::Include(vec![name.clone()]))?;
    let record =
        records.into_iter().next().ok_or_else(|| Error::not_found(format!("No point with id {id} found")))?;
    vector_of(record, &name)
        .ok_or_else(|| Error::not_found(format!("Point {id} has no vector named `{name}`")))
}

/// The vector `name` of a record, if it has one.
pub fn vector_of(record: Record, name: &str) -> Option<Vector> {
    match record.vector? {
        VectorOutput::Single(v) if name.is_empty() => Some(Vector::Dense(v)),
        VectorOutput::Single(_) => None,
        VectorOutput::Named(mut m) => m.remove(name),
    }
}

/// A query without `query`: points in id order, each with score 1, as current Qdrant answers them.
fn list_by_id(c: &Collection, q: &PointsQuery) -> Result<Vec<ScoredPoint>> {
    let page = c.scroll(&ScrollRequest {
        offset: None,
        limit: q.limit.saturating_add(q.offset),
        with_payload: q.with_payload.clone(),
        with_vector: q.with_vector.clone(),
        filter: q.filter.clone(),
    })?;
    Ok(page
        .points
        .into_iter()
        .skip(q.offset)
        .map(|r| ScoredPoint {
            id: r.id,
            version: 0,
            score: 1.0,
            payload: r.payload,
            vector: r.vector,
            order_value: None,
        })
        .collect())
}
