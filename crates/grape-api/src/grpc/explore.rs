//! The read requests beyond search and the Query API: legacy recommend and discover, grouped queries
//! (search, recommend and query groups), facet counts and the distance matrix, as the service layer's
//! requests, and their answers as proto messages.
//!
//! Legacy requests become the same `PointsQuery` the REST front end builds for them: recommend by
//! example ids and vectors, discover with a target (or context search without one).

use grape::DEFAULT_VECTOR_NAME;
use grape_proto::qdrant as pb;
use tonic::Status;

use super::convert::{
    point_id, point_ids, proto_point_id, retrieved_point, scored_point, search_params, shard_keys, vector,
    with_payload, with_vector,
};
use super::filter::filter;
use super::invalid;
use super::query::{lookup_location, points_query, search_query};
use crate::service::facet::{FacetHit, FacetQuery, FacetValue};
use crate::service::groups::{GroupId, GroupsQuery, PointGroup, WithLookup};
use crate::service::matrix::{Matrix, MatrixQuery};
use crate::service::{ContextPair, PointsQuery, QueryInput, RecommendStrategy, VectorInput};

/// Qdrant's defaults of a grouped query (as the REST front end has them).
const DEFAULT_GROUPS: usize = 10;
const DEFAULT_GROUP_SIZE: usize = 3;

fn usize_of(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn using(name: Option<String>) -> String {
    name.unwrap_or_else(|| DEFAULT_VECTOR_NAME.to_owned())
}

/// A stored vector given by value, as a query's example.
fn example_vector(v: pb::Vector) -> Result<VectorInput, Status> {
    Ok(match vector(v)? {
        grape::Vector::Dense(d) => VectorInput::Dense(d),
        grape::Vector::Sparse(s) => VectorInput::Sparse(s),
        grape::Vector::Multi(m) => VectorInput::Multi(m),
    })
}

fn strategy(s: Option<i32>) -> Result<RecommendStrategy, Status> {
    match s.map(pb::RecommendStrategy::try_from) {
        None | Some(Ok(pb::RecommendStrategy::AverageVector)) => Ok(RecommendStrategy::AverageVector),
        Some(Ok(pb::RecommendStrategy::BestScore)) => Ok(RecommendStrategy::BestScore),
        Some(Ok(pb::RecommendStrategy::SumScores)) => Ok(RecommendStrategy::SumScores),
        Some(Err(_)) => Err(invalid("recommend: unknown strategy")),
    }
}

/// Examples by id first, then by value, as Qdrant reads them.
fn examples(ids: Vec<pb::PointId>, vectors: Vec<pb::Vector>) -> Result<Vec<VectorInput>, Status> {
    let mut all: Vec<VectorInput> = point_ids(ids)?.into_iter().map(VectorInput::Point).collect();
    for v in vectors {
        all.push(example_vector(v)?);
    }
    Ok(all)
}

// ---- recommend ----

/// Legacy `Recommend`: the Query API's recommend over the examples.
pub(super) fn recommend_query(r: pb::RecommendPoints) -> Result<PointsQuery, Status> {
    let positive = examples(r.positive, r.positive_vectors)?;
    let negative = examples(r.negative, r.negative_vectors)?;
    if positive.is_empty() && negative.is_empty() {
        return Err(invalid("recommend: at least one positive or negative example is required"));
    }
    Ok(PointsQuery {
        prefetch: Vec::new(),
        using: using(r.using),
        query: Some(QueryInput::Recommend { positive, negative, strategy: strategy(r.strategy)? }),
        filter: filter(r.filter)?,
        params: search_params(r.params)?,
        limit: usize_of(r.limit),
        offset: usize_of(r.offset.unwrap_or(0)),
        score_threshold: r.score_threshold,
        with_payload: with_payload(r.with_payload, false),
        with_vector: with_vector(r.with_vectors),
        lookup_from: lookup_location(r.lookup_from)?,
        shard_key: shard_keys(r.shard_key_selector)?,
    })
}

// ---- discover ----

fn vector_example(e: Option<pb::VectorExample>, what: &str) -> Result<VectorInput, Status> {
    use pb::vector_example::Example;
    match e.and_then(|e| e.example) {
        Some(Example::Id(id)) => Ok(VectorInput::Point(point_id(id)?)),
        Some(Example::Vector(v)) => example_vector(v),
        None => Err(invalid(format!("discover: {what} needs a point id or a vector"))),
    }
}

/// Legacy `Discover`: discovery with a target, context search without one.
pub(super) fn discover_query(d: pb::DiscoverPoints) -> Result<PointsQuery, Status> {
    let context = d
        .context
        .into_iter()
        .map(|p| {
            Ok(ContextPair {
                positive: vector_example(p.positive, "each context pair's positive")?,
                negative: vector_example(p.negative, "each context pair's negative")?,
            })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    let target = match d.target.and_then(|t| t.target) {
        Some(pb::target_vector::Target::Single(e)) => Some(vector_example(Some(e), "target")?),
        None => None,
    };
    let query = match target {
        Some(target) => QueryInput::Discover { target, context },
        None => QueryInput::Context(context),
    };
    Ok(PointsQuery {
        prefetch: Vec::new(),
        using: using(d.using),
        query: Some(query),
        filter: filter(d.filter)?,
        params: search_params(d.params)?,
        limit: usize_of(d.limit),
        offset: usize_of(d.offset.unwrap_or(0)),
        score_threshold: None,
        with_payload: with_payload(d.with_payload, false),
        with_vector: with_vector(d.with_vectors),
        lookup_from: lookup_location(d.lookup_from)?,
        shard_key: shard_keys(d.shard_key_selector)?,
    })
}

// ---- groups ----

fn with_lookup(w: Option<pb::WithLookup>) -> Option<WithLookup> {
    w.map(|w| WithLookup {
        collection: w.collection,
        with_payload: with_payload(w.with_payload, true),
        with_vector: with_vector(w.with_vectors),
    })
}

fn group_by(key: String) -> Result<String, Status> {
    if key.is_empty() {
        return Err(invalid("group_by: a payload key is required"));
    }
    Ok(key)
}

pub(super) fn search_groups(g: pb::SearchPointGroups) -> Result<GroupsQuery, Status> {
    let search = pb::SearchPoints {
        collection_name: g.collection_name,
        vector: g.vector,
        filter: g.filter,
        limit: u64::from(g.limit),
        with_payload: g.with_payload,
        params: g.params,
        score_threshold: g.score_threshold,
        vector_name: g.vector_name,
        with_vectors: g.with_vectors,
        shard_key_selector: g.shard_key_selector,
        sparse_indices: g.sparse_indices,
        ..Default::default()
    };
    Ok(GroupsQuery {
        query: search_query(search)?,
        group_by: group_by(g.group_by)?,
        group_size: g.group_size as usize,
        limit: g.limit as usize,
        with_lookup: with_lookup(g.with_lookup),
    })
}

pub(super) fn recommend_groups(g: pb::RecommendPointGroups) -> Result<GroupsQuery, Status> {
    let recommend = pb::RecommendPoints {
        collection_name: g.collection_name,
        positive: g.positive,
        negative: g.negative,
        filter: g.filter,
        limit: u64::from(g.limit),
        with_payload: g.with_payload,
        params: g.params,
        score_threshold: g.score_threshold,
        using: g.using,
        with_vectors: g.with_vectors,
        lookup_from: g.lookup_from,
        strategy: g.strategy,
        positive_vectors: g.positive_vectors,
        negative_vectors: g.negative_vectors,
        shard_key_selector: g.shard_key_selector,
        ..Default::default()
    };
    Ok(GroupsQuery {
        query: recommend_query(recommend)?,
        group_by: group_by(g.group_by)?,
        group_size: g.group_size as usize,
        limit: g.limit as usize,
        with_lookup: with_lookup(g.with_lookup),
    })
}

pub(super) fn query_groups(g: pb::QueryPointGroups) -> Result<GroupsQuery, Status> {
    let query = pb::QueryPoints {
        collection_name: g.collection_name,
        prefetch: g.prefetch,
        query: g.query,
        using: g.using,
        filter: g.filter,
        params: g.params,
        score_threshold: g.score_threshold,
        with_vectors: g.with_vectors,
        with_payload: g.with_payload,
        lookup_from: g.lookup_from,
        shard_key_selector: g.shard_key_selector,
        ..Default::default()
    };
    Ok(GroupsQuery {
        query: points_query(query)?,
        group_by: group_by(g.group_by)?,
        group_size: g.group_size.map_or(DEFAULT_GROUP_SIZE, usize_of),
        limit: g.limit.map_or(DEFAULT_GROUPS, usize_of),
        with_lookup: with_lookup(g.with_lookup),
    })
}

fn group_id(id: GroupId) -> pb::GroupId {
    use pb::group_id::Kind;
    let kind = match id {
        GroupId::Keyword(s) => Kind::StringValue(s),
        // Qdrant reads a non-negative number as unsigned.
        GroupId::Int(i) => match u64::try_from(i) {
            Ok(u) => Kind::UnsignedValue(u),
            Err(_) => Kind::IntegerValue(i),
        },
        GroupId::UInt(u) => Kind::UnsignedValue(u),
    };
    pb::GroupId { kind: Some(kind) }
}

pub(super) fn groups_result(groups: Vec<PointGroup>) -> pb::GroupsResult {
    pb::GroupsResult {
        groups: groups
            .into_iter()
            .map(|g| pb::PointGroup {
                id: Some(group_id(g.id)),
                hits: g.hits.into_iter().map(scored_point).collect(),
                lookup: g.lookup.map(retrieved_point),
            })
            .collect(),
    }
}

// ---- facet ----

pub(super) fn facet_query(f: pb::FacetCounts) -> Result<FacetQuery, Status> {
    if f.key.is_empty() {
        return Err(invalid("facet: key is required"));
    }
    // Counts are always exact in Grape, so `exact` changes nothing.
    Ok(FacetQuery {
        key: f.key,
        filter: filter(f.filter)?,
        limit: f.limit.map_or(10, usize_of),
        shard_key: shard_keys(f.shard_key_selector)?,
    })
}

pub(super) fn facet_hits(hits: Vec<FacetHit>) -> Vec<pb::FacetHit> {
    use pb::facet_value::Variant;
    hits.into_iter()
        .map(|h| pb::FacetHit {
            value: Some(pb::FacetValue {
                variant: Some(match h.value {
                    FacetValue::Keyword(s) => Variant::StringValue(s),
                    FacetValue::Int(i) => Variant::IntegerValue(i),
                    FacetValue::Bool(b) => Variant::BoolValue(b),
                }),
            }),
            count: h.count as u64,
        })
        .collect()
}

// ---- distance matrix ----

pub(super) fn matrix_query(m: pb::SearchMatrixPoints) -> Result<MatrixQuery, Status> {
    Ok(MatrixQuery {
        sample: m.sample.map_or(10, usize_of),
        limit: m.limit.map_or(3, usize_of),
        using: using(m.using),
        filter: filter(m.filter)?,
        shard_key: shard_keys(m.shard_key_selector)?,
    })
}

/// The matrix's cells, row by row: (row, column, score).
fn cells(m: &Matrix) -> impl Iterator<Item = (usize, usize, f32)> + '_ {
    m.rows.iter().enumerate().flat_map(|(i, row)| row.iter().map(move |&(j, score)| (i, j, score)))
}

pub(super) fn matrix_pairs(m: Matrix) -> pb::SearchMatrixPairs {
    let pairs = cells(&m)
        .map(|(i, j, score)| pb::SearchMatrixPair {
            a: Some(proto_point_id(m.ids[i])),
            b: Some(proto_point_id(m.ids[j])),
            score,
        })
        .collect();
    pb::SearchMatrixPairs { pairs }
}

pub(super) fn matrix_offsets(m: Matrix) -> pb::SearchMatrixOffsets {
    let mut out = pb::SearchMatrixOffsets::default();
    for (i, j, score) in cells(&m) {
        out.offsets_row.push(i as u64);
        out.offsets_col.push(j as u64);
        out.scores.push(score);
    }
    out.ids = m.ids.into_iter().map(proto_point_id).collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(n: u64) -> pb::PointId {
        pb::PointId { point_id_options: Some(pb::point_id::PointIdOptions::Num(n)) }
    }

    #[test]
    fn recommend_takes_ids_then_vectors() {
        let r = pb::RecommendPoints {
            positive: vec![num(1)],
            positive_vectors: vec![pb::Vector { data: vec![1.0, 0.0], ..Default::default() }],
            negative: vec![num(2)],
            strategy: Some(pb::RecommendStrategy::BestScore as i32),
            limit: 5,
            using: Some("v".into()),
            ..Default::default()
        };
        let q = recommend_query(r).unwrap();
        assert_eq!(q.using, "v");
        assert_eq!(q.limit, 5);
        assert_eq!(
            q.query,
            Some(QueryInput::Recommend {
                positive: vec![
                    VectorInput::Point(grape::PointId::Num(1)),
                    VectorInput::Dense(vec![1.0, 0.0])
                ],
                negative: vec![VectorInput::Point(grape::PointId::Num(2))],
                strategy: RecommendStrategy::BestScore,
            })
        );
        let none = recommend_query(pb::RecommendPoints { limit: 1, ..Default::default() });
        assert_eq!(none.unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn discover_with_and_without_target() {
        let example = |n| Some(pb::VectorExample { example: Some(pb::vector_example::Example::Id(num(n))) });
        let pair = pb::ContextExamplePair { positive: example(1), negative: example(2) };
        let d = pb::DiscoverPoints {
            target: Some(pb::TargetVector {
                target: Some(pb::target_vector::Target::Single(pb::VectorExample {
                    example: Some(pb::vector_example::Example::Vector(pb::Vector {
                        data: vec![0.5],
                        ..Default::default()
                    })),
                })),
            }),
            context: vec![pair.clone()],
            limit: 3,
            ..Default::default()
        };
        let want_pair = ContextPair {
            positive: VectorInput::Point(grape::PointId::Num(1)),
            negative: VectorInput::Point(grape::PointId::Num(2)),
        };
        assert_eq!(
            discover_query(d).unwrap().query,
            Some(QueryInput::Discover {
                target: VectorInput::Dense(vec![0.5]),
                context: vec![want_pair.clone()]
            })
        );
        let c = discover_query(pb::DiscoverPoints { context: vec![pair], limit: 3, ..Default::default() });
        assert_eq!(c.unwrap().query, Some(QueryInput::Context(vec![want_pair])));
        let half = pb::ContextExamplePair { positive: example(1), negative: None };
        let e = discover_query(pb::DiscoverPoints { context: vec![half], ..Default::default() });
        assert_eq!(e.unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn group_ids_and_matrix_layouts() {
        assert_eq!(group_id(GroupId::Int(4)).kind, Some(pb::group_id::Kind::UnsignedValue(4)));
        assert_eq!(group_id(GroupId::Int(-4)).kind, Some(pb::group_id::Kind::IntegerValue(-4)));
        let m = Matrix {
            ids: vec![grape::PointId::Num(7), grape::PointId::Num(9)],
            rows: vec![vec![(1, 0.5)], vec![(0, 0.5)]],
        };
        let offsets = matrix_offsets(m.clone());
        assert_eq!((offsets.offsets_row, offsets.offsets_col), (vec![0, 1], vec![1, 0]));
        let pairs = matrix_pairs(m);
        assert_eq!(pairs.pairs[0].a, Some(num(7)));
        assert_eq!(pairs.pairs[0].b, Some(num(9)));
    }
}
