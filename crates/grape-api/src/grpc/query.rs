//! Search and Query API messages as the engine's query model ([`PointsQuery`]): nearest (dense, sparse,
//! multivector or point id), recommend, discover, context, fusion (RRF, with `k` and weights, or DBSF),
//! random sampling, and the prefetch tree. Query kinds Grape does not run are refused by name.

use grape::{SparseVector, DEFAULT_VECTOR_NAME};
use grape_proto::qdrant as pb;
use tonic::Status;

use super::convert::{no_shard_keys, search_params, vector_input, with_payload, with_vector};
use super::filter::filter;
use super::{invalid, unsupported};
use crate::service::{
    ContextPair, Fusion, LookupLocation, PointsQuery, Prefetch, QueryInput, RecommendStrategy, VectorInput,
};

/// Qdrant's default `limit` of a query and of a prefetch.
const DEFAULT_LIMIT: u64 = 10;

fn usize_of(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// A legacy search as a Query API nearest query; `sparse_indices` make `vector` the values of a sparse
/// query on `vector_name`.
pub(super) fn search_query(s: pb::SearchPoints) -> Result<PointsQuery, Status> {
    no_shard_keys(&s.shard_key_selector)?;
    let vector = match s.sparse_indices {
        Some(indices) => VectorInput::Sparse(SparseVector::new(indices.data, s.vector)),
        None => VectorInput::Dense(s.vector),
    };
    Ok(PointsQuery {
        prefetch: Vec::new(),
        using: s.vector_name.unwrap_or_else(|| DEFAULT_VECTOR_NAME.to_owned()),
        query: Some(QueryInput::Nearest(vector)),
        filter: filter(s.filter)?,
        params: search_params(s.params)?,
        limit: usize_of(s.limit),
        offset: usize_of(s.offset.unwrap_or(0)),
        score_threshold: s.score_threshold,
        with_payload: with_payload(s.with_payload, false),
        with_vector: with_vector(s.with_vectors),
        lookup_from: None,
    })
}

/// A Query API request (`collection_name` is the caller's to use).
pub(super) fn points_query(q: pb::QueryPoints) -> Result<PointsQuery, Status> {
    no_shard_keys(&q.shard_key_selector)?;
    Ok(PointsQuery {
        prefetch: q.prefetch.into_iter().map(prefetch).collect::<Result<_, _>>()?,
        using: q.using.unwrap_or_else(|| DEFAULT_VECTOR_NAME.to_owned()),
        query: query_input(q.query)?,
        filter: filter(q.filter)?,
        params: search_params(q.params)?,
        limit: usize_of(q.limit.unwrap_or(DEFAULT_LIMIT)),
        offset: usize_of(q.offset.unwrap_or(0)),
        score_threshold: q.score_threshold,
        with_payload: with_payload(q.with_payload, false),
        with_vector: with_vector(q.with_vectors),
        lookup_from: lookup_location(q.lookup_from)?,
    })
}

fn prefetch(p: pb::PrefetchQuery) -> Result<Prefetch, Status> {
    Ok(Prefetch {
        prefetch: p.prefetch.into_iter().map(prefetch).collect::<Result<_, _>>()?,
        query: query_input(p.query)?,
        using: p.using.unwrap_or_else(|| DEFAULT_VECTOR_NAME.to_owned()),
        filter: filter(p.filter)?,
        params: search_params(p.params)?,
        score_threshold: p.score_threshold,
        limit: usize_of(p.limit.unwrap_or(DEFAULT_LIMIT)),
        lookup_from: lookup_location(p.lookup_from)?,
    })
}

fn lookup_location(l: Option<pb::LookupLocation>) -> Result<Option<LookupLocation>, Status> {
    let Some(l) = l else { return Ok(None) };
    no_shard_keys(&l.shard_key_selector)?;
    Ok(Some(LookupLocation { collection: l.collection_name, vector: l.vector_name }))
}

fn query_input(q: Option<pb::Query>) -> Result<Option<QueryInput>, Status> {
    use pb::query::Variant as Q;
    let Some(variant) = q.and_then(|q| q.variant) else { return Ok(None) };
    let input = match variant {
        Q::Nearest(v) => QueryInput::Nearest(vector_input(v)?),
        Q::Recommend(r) => recommend(r)?,
        Q::Discover(d) => QueryInput::Discover {
            target: vector_input(d.target.ok_or_else(|| invalid("discover: target is required"))?)?,
            context: context_pairs(d.context)?,
        },
        Q::Context(c) => QueryInput::Context(context_pairs(Some(c))?),
        Q::Fusion(f) => match pb::Fusion::try_from(f) {
            Ok(pb::Fusion::Rrf) => QueryInput::Fusion(Fusion::Rrf { k: None, weights: None }),
            Ok(pb::Fusion::Dbsf) => QueryInput::Fusion(Fusion::Dbsf),
            Err(_) => return Err(invalid(format!("fusion: unknown value {f}"))),
        },
        Q::Rrf(r) => {
            if r.k == Some(0) {
                return Err(invalid("rrf.k: must be at least 1"));
            }
            let weights = if r.weights.is_empty() { None } else { Some(r.weights) };
            QueryInput::Fusion(Fusion::Rrf { k: r.k, weights })
        }
        Q::Sample(s) => match pb::Sample::try_from(s) {
            Ok(pb::Sample::Random) => QueryInput::Sample,
            Err(_) => return Err(invalid(format!("sample: unknown value {s}"))),
        },
        Q::OrderBy(_) => return Err(unsupported("query `order_by` over gRPC")),
        Q::Formula(_) => return Err(unsupported("query `formula`")),
        Q::NearestWithMmr(_) => return Err(unsupported("query `nearest` with `mmr`")),
        Q::RelevanceFeedback(_) => return Err(unsupported("query `relevance_feedback`")),
    };
    Ok(Some(input))
}

fn recommend(r: pb::RecommendInput) -> Result<QueryInput, Status> {
    let strategy = match r.strategy.map(pb::RecommendStrategy::try_from) {
        None | Some(Ok(pb::RecommendStrategy::AverageVector)) => RecommendStrategy::AverageVector,
        Some(Ok(pb::RecommendStrategy::BestScore)) => RecommendStrategy::BestScore,
        Some(Ok(pb::RecommendStrategy::SumScores)) => RecommendStrategy::SumScores,
        Some(Err(_)) => return Err(invalid("recommend: unknown strategy")),
    };
    Ok(QueryInput::Recommend {
        positive: r.positive.into_iter().map(vector_input).collect::<Result<_, _>>()?,
        negative: r.negative.into_iter().map(vector_input).collect::<Result<_, _>>()?,
        strategy,
    })
}

fn context_pairs(c: Option<pb::ContextInput>) -> Result<Vec<ContextPair>, Status> {
    let required = |v: Option<pb::VectorInput>, side: &str| {
        vector_input(v.ok_or_else(|| invalid(format!("context: each pair needs a {side} vector")))?)
    };
    c.map(|c| c.pairs)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            Ok(ContextPair {
                positive: required(p.positive, "positive")?,
                negative: required(p.negative, "negative")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(data: Vec<f32>) -> pb::VectorInput {
        pb::VectorInput { variant: Some(pb::vector_input::Variant::Dense(pb::DenseVector { data })) }
    }

    fn query(variant: pb::query::Variant) -> Option<pb::Query> {
        Some(pb::Query { variant: Some(variant) })
    }

    #[test]
    fn prefetch_tree_and_fusion() {
        let sparse = pb::VectorInput {
            variant: Some(pb::vector_input::Variant::Sparse(pb::SparseVector {
                values: vec![0.5],
                indices: vec![3],
            })),
        };
        let req = pb::QueryPoints {
            collection_name: "c".into(),
            prefetch: vec![
                pb::PrefetchQuery {
                    query: query(pb::query::Variant::Nearest(dense(vec![1.0, 0.0]))),
                    using: Some("d".into()),
                    limit: Some(20),
                    ..Default::default()
                },
                pb::PrefetchQuery {
                    query: query(pb::query::Variant::Nearest(sparse)),
                    using: Some("s".into()),
                    ..Default::default()
                },
            ],
            query: query(pb::query::Variant::Rrf(pb::Rrf { k: Some(5), weights: vec![] })),
            ..Default::default()
        };
        let q = points_query(req).unwrap();
        assert_eq!(q.query, Some(QueryInput::Fusion(Fusion::Rrf { k: Some(5), weights: None })));
        assert_eq!((q.prefetch[0].limit, q.prefetch[1].limit), (20, 10));
        assert_eq!(q.prefetch[1].using, "s");
        assert_eq!(
            q.prefetch[1].query,
            Some(QueryInput::Nearest(VectorInput::Sparse(SparseVector::new(vec![3], vec![0.5]))))
        );
        let dbsf = query_input(query(pb::query::Variant::Fusion(pb::Fusion::Dbsf as i32))).unwrap();
        assert_eq!(dbsf, Some(QueryInput::Fusion(Fusion::Dbsf)));
        let k0 = query_input(query(pb::query::Variant::Rrf(pb::Rrf { k: Some(0), weights: vec![] })));
        assert_eq!(k0.unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn recommend_discover_context() {
        let id = pb::VectorInput {
            variant: Some(pb::vector_input::Variant::Id(pb::PointId {
                point_id_options: Some(pb::point_id::PointIdOptions::Num(4)),
            })),
        };
        let r = query_input(query(pb::query::Variant::Recommend(pb::RecommendInput {
            positive: vec![id.clone()],
            negative: vec![dense(vec![1.0])],
            strategy: Some(pb::RecommendStrategy::BestScore as i32),
        })))
        .unwrap();
        assert_eq!(
            r,
            Some(QueryInput::Recommend {
                positive: vec![VectorInput::Point(grape::PointId::Num(4))],
                negative: vec![VectorInput::Dense(vec![1.0])],
                strategy: RecommendStrategy::BestScore,
            })
        );
        let pair = pb::ContextInputPair { positive: Some(id.clone()), negative: Some(dense(vec![2.0])) };
        let d = query_input(query(pb::query::Variant::Discover(pb::DiscoverInput {
            target: Some(dense(vec![0.0])),
            context: Some(pb::ContextInput { pairs: vec![pair.clone()] }),
        })))
        .unwrap();
        let want_pair = ContextPair {
            positive: VectorInput::Point(grape::PointId::Num(4)),
            negative: VectorInput::Dense(vec![2.0]),
        };
        assert_eq!(
            d,
            Some(QueryInput::Discover {
                target: VectorInput::Dense(vec![0.0]),
                context: vec![want_pair.clone()]
            })
        );
        let c =
            query_input(query(pb::query::Variant::Context(pb::ContextInput { pairs: vec![pair] }))).unwrap();
        assert_eq!(c, Some(QueryInput::Context(vec![want_pair])));
        let half = pb::ContextInputPair { positive: Some(id), negative: None };
        let e = query_input(query(pb::query::Variant::Context(pb::ContextInput { pairs: vec![half] })));
        assert_eq!(e.unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn unbuilt_query_kinds_are_refused_by_name() {
        let e = query_input(query(pb::query::Variant::Formula(vec![]))).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("formula"), "{}", e.message());
    }

    #[test]
    fn legacy_search_with_sparse_indices() {
        let s = pb::SearchPoints {
            collection_name: "c".into(),
            vector: vec![0.1, 0.2],
            vector_name: Some("s".into()),
            sparse_indices: Some(pb::SparseIndices { data: vec![7, 2] }),
            limit: 3,
            ..Default::default()
        };
        let q = search_query(s).unwrap();
        assert_eq!(q.using, "s");
        assert_eq!(
            q.query,
            Some(QueryInput::Nearest(VectorInput::Sparse(SparseVector::new(vec![7, 2], vec![0.1, 0.2]))))
        );
    }
}
