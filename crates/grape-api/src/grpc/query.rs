//! Search and Query API messages as the engine's query model ([`PointsQuery`]): nearest (dense, sparse,
//! multivector or point id, optionally with MMR), recommend, discover, context, fusion (RRF, with `k`
//! and weights, or DBSF), formula, order by a payload value, random sampling, and the prefetch tree.
//! Query kinds Grape does not run are refused by name.

use grape::query::formula::{DecayParams, DivParams, GeoDistance, PowParams};
use grape::{Direction, OrderBy, OrderValue, SparseVector, DEFAULT_VECTOR_NAME};
use grape_proto::qdrant as pb;
use tonic::Status;

use super::convert::{search_params, shard_keys, value_to_json, vector_input, with_payload, with_vector};
use super::filter::filter;
use super::{invalid, unsupported};
use crate::service::order_by::OrderedScroll;
use crate::service::{
    ContextPair, Expression, Formula, Fusion, LookupLocation, Mmr, PointsQuery, Prefetch, QueryInput,
    RecommendStrategy, VectorInput,
};

/// Qdrant's default `limit` of a query and of a prefetch.
const DEFAULT_LIMIT: u64 = 10;

fn usize_of(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// A legacy search as a Query API nearest query; `sparse_indices` make `vector` the values of a sparse
/// query on `vector_name`.
pub(super) fn search_query(s: pb::SearchPoints) -> Result<PointsQuery, Status> {
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
        shard_key: shard_keys(s.shard_key_selector)?,
    })
}

/// A Query API request (`collection_name` is the caller's to use).
pub(super) fn points_query(q: pb::QueryPoints) -> Result<PointsQuery, Status> {
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
        shard_key: shard_keys(q.shard_key_selector)?,
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

pub(super) fn lookup_location(l: Option<pb::LookupLocation>) -> Result<Option<LookupLocation>, Status> {
    let Some(l) = l else { return Ok(None) };
    if l.shard_key_selector.is_some() {
        return Err(unsupported("lookup_from.shard_key_selector (shard keys of the lookup collection)"));
    }
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
        Q::OrderBy(o) => QueryInput::OrderBy(order_by(o)?),
        Q::Formula(f) => QueryInput::Formula(formula(f)?),
        Q::NearestWithMmr(n) => {
            let nearest = n.nearest.ok_or_else(|| invalid("nearest_with_mmr: nearest is required"))?;
            let mmr = n.mmr.unwrap_or_default();
            QueryInput::NearestMmr {
                nearest: vector_input(nearest)?,
                mmr: Mmr {
                    diversity: mmr.diversity,
                    candidates_limit: mmr.candidates_limit.map(|l| l as usize),
                },
            }
        }
        Q::RelevanceFeedback(_) => return Err(unsupported("query `relevance_feedback`")),
    };
    Ok(Some(input))
}

/// A scroll with `order_by` (no `offset`: pages go on with `start_from`), and its collection.
pub(super) fn ordered_scroll(s: pb::ScrollPoints) -> Result<(String, OrderedScroll), Status> {
    if s.offset.is_some() {
        return Err(invalid("scroll: an `offset` cannot be used with `order_by`; page with `start_from`"));
    }
    let order = s.order_by.ok_or_else(|| invalid("scroll: order_by is required"))?;
    let scroll = OrderedScroll {
        order_by: order_by(order)?,
        limit: s.limit.map_or(DEFAULT_LIMIT as usize, |l| l as usize),
        filter: filter(s.filter)?,
        with_payload: with_payload(s.with_payload, true),
        with_vector: with_vector(s.with_vectors),
    };
    Ok((s.collection_name, scroll))
}

/// An `order_by` of a query or of a scroll.
pub(super) fn order_by(o: pb::OrderBy) -> Result<OrderBy, Status> {
    use pb::start_from::Value as S;
    let direction = match o.direction.map(pb::Direction::try_from) {
        None | Some(Ok(pb::Direction::Asc)) => Direction::Asc,
        Some(Ok(pb::Direction::Desc)) => Direction::Desc,
        Some(Err(_)) => return Err(invalid("order_by: unknown direction")),
    };
    let start_from = match o.start_from.and_then(|s| s.value) {
        None => None,
        Some(S::Float(x)) => Some(OrderValue::Float(x)),
        Some(S::Integer(i)) => Some(OrderValue::Int(i)),
        Some(S::Timestamp(t)) => {
            let micros =
                t.seconds.checked_mul(1_000_000).and_then(|m| m.checked_add(i64::from(t.nanos) / 1000));
            Some(OrderValue::Int(
                micros.ok_or_else(|| invalid("order_by.start_from: timestamp out of range"))?,
            ))
        }
        Some(S::Datetime(s)) => Some(OrderValue::Int(
            grape::filter::parse_datetime(&s)
                .ok_or_else(|| invalid(format!("order_by.start_from: {s:?} is not a date-time")))?,
        )),
    };
    Ok(OrderBy { key: o.key, direction, start_from })
}

fn formula(f: pb::Formula) -> Result<Formula, Status> {
    let defaults = f
        .defaults
        .into_iter()
        .map(|(k, v)| Ok((k, value_to_json(v)?)))
        .collect::<Result<serde_json::Map<_, _>, Status>>()?;
    Ok(Formula { formula: expression(f.expression, "formula")?, defaults })
}

/// A formula expression; `what` names a missing part in the error.
fn expression(e: Option<pb::Expression>, what: &str) -> Result<Expression, Status> {
    use pb::expression::Variant as V;
    let variant =
        e.and_then(|e| e.variant).ok_or_else(|| invalid(format!("{what}: an expression is required")))?;
    let boxed = |e: Option<Box<pb::Expression>>, what: &str| expression(e.map(|e| *e), what).map(Box::new);
    Ok(match variant {
        V::Constant(x) => Expression::Constant(f64::from(x)),
        V::Variable(name) => Expression::Variable(name),
        V::Condition(c) => {
            let f = filter(Some(pb::Filter { must: vec![c], ..Default::default() }))?;
            let c = f.and_then(|f| f.must).and_then(|mut m| m.pop());
            Expression::Condition(Box::new(c.ok_or_else(|| invalid(format!("{what}: empty condition")))?))
        }
        V::GeoDistance(g) => {
            let origin = g.origin.ok_or_else(|| invalid("geo_distance: origin is required"))?;
            Expression::GeoDistance {
                geo_distance: GeoDistance {
                    origin: grape::filter::GeoPoint { lon: origin.lon, lat: origin.lat },
                    to: g.to,
                },
            }
        }
        V::Datetime(datetime) => Expression::Datetime { datetime },
        V::DatetimeKey(datetime_key) => Expression::DatetimeKey { datetime_key },
        V::Mult(m) => Expression::Mult { mult: expressions(m.mult, "mult")? },
        V::Sum(s) => Expression::Sum { sum: expressions(s.sum, "sum")? },
        V::Div(d) => Expression::Div {
            div: DivParams {
                left: boxed(d.left, "div.left")?,
                right: boxed(d.right, "div.right")?,
                by_zero_default: d.by_zero_default.map(f64::from),
            },
        },
        V::Neg(e) => Expression::Neg { neg: boxed(Some(e), "neg")? },
        V::Abs(e) => Expression::Abs { abs: boxed(Some(e), "abs")? },
        V::Sqrt(e) => Expression::Sqrt { sqrt: boxed(Some(e), "sqrt")? },
        V::Exp(e) => Expression::Exp { exp: boxed(Some(e), "exp")? },
        V::Log10(e) => Expression::Log10 { log10: boxed(Some(e), "log10")? },
        V::Ln(e) => Expression::Ln { ln: boxed(Some(e), "ln")? },
        V::Pow(p) => Expression::Pow {
            pow: PowParams { base: boxed(p.base, "pow.base")?, exponent: boxed(p.exponent, "pow.exponent")? },
        },
        V::ExpDecay(d) => Expression::ExpDecay { exp_decay: decay(*d, "exp_decay")? },
        V::GaussDecay(d) => Expression::GaussDecay { gauss_decay: decay(*d, "gauss_decay")? },
        V::LinDecay(d) => Expression::LinDecay { lin_decay: decay(*d, "lin_decay")? },
    })
}

fn expressions(items: Vec<pb::Expression>, what: &str) -> Result<Vec<Expression>, Status> {
    items.into_iter().map(|e| expression(Some(e), what)).collect()
}

fn decay(d: pb::DecayParamsExpression, what: &str) -> Result<DecayParams, Status> {
    Ok(DecayParams {
        x: Box::new(expression(d.x.map(|x| *x), &format!("{what}.x"))?),
        target: d
            .target
            .map(|t| expression(Some(*t), &format!("{what}.target")).map(Box::new))
            .transpose()?,
        scale: d.scale.map(f64::from),
        midpoint: d.midpoint.map(f64::from),
    })
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
        let e = query_input(query(pb::query::Variant::RelevanceFeedback(vec![]))).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("relevance_feedback"), "{}", e.message());
    }

    fn expr(variant: pb::expression::Variant) -> pb::Expression {
        pb::Expression { variant: Some(variant) }
    }

    #[test]
    fn formula_order_by_and_mmr() {
        use pb::expression::Variant as V;
        let condition = pb::Condition {
            condition_one_of: Some(pb::condition::ConditionOneOf::HasVector(pb::HasVectorCondition {
                has_vector: "d".into(),
            })),
        };
        let f = pb::Formula {
            expression: Some(expr(V::Sum(pb::SumExpression {
                sum: vec![
                    expr(V::Variable("$score".into())),
                    expr(V::Condition(condition)),
                    expr(V::ExpDecay(Box::new(pb::DecayParamsExpression {
                        x: Some(Box::new(expr(V::DatetimeKey("t".into())))),
                        target: None,
                        scale: Some(2.0),
                        midpoint: None,
                    }))),
                    expr(V::Div(Box::new(pb::DivExpression {
                        left: Some(Box::new(expr(V::Constant(1.0)))),
                        right: Some(Box::new(expr(V::Variable("n".into())))),
                        by_zero_default: Some(0.5),
                    }))),
                ],
            }))),
            defaults: [("n".to_string(), super::super::convert::json_to_value(serde_json::json!(2)))].into(),
        };
        let Some(QueryInput::Formula(got)) = query_input(query(pb::query::Variant::Formula(f))).unwrap()
        else {
            panic!("not a formula")
        };
        let want: Formula = serde_json::from_value(serde_json::json!({
            "formula": {"sum": [
                "$score",
                {"has_vector": "d"},
                {"exp_decay": {"x": {"datetime_key": "t"}, "scale": 2.0}},
                {"div": {"left": 1.0, "right": "n", "by_zero_default": 0.5}},
            ]},
            "defaults": {"n": 2},
        }))
        .unwrap();
        assert_eq!(got, want);
        let empty =
            pb::Formula { expression: Some(expr(V::Neg(Box::default()))), defaults: Default::default() };
        let e = query_input(query(pb::query::Variant::Formula(empty))).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);

        let o = pb::OrderBy {
            key: "price".into(),
            direction: Some(pb::Direction::Desc as i32),
            start_from: Some(pb::StartFrom {
                value: Some(pb::start_from::Value::Datetime("1970-01-01T00:00:01Z".into())),
            }),
        };
        assert_eq!(
            order_by(o).unwrap(),
            OrderBy {
                key: "price".into(),
                direction: Direction::Desc,
                start_from: Some(OrderValue::Int(1_000_000))
            }
        );
        let m = query_input(query(pb::query::Variant::NearestWithMmr(pb::NearestInputWithMmr {
            nearest: Some(dense(vec![1.0])),
            mmr: Some(pb::Mmr { diversity: Some(0.25), candidates_limit: Some(30) }),
        })))
        .unwrap();
        assert_eq!(
            m,
            Some(QueryInput::NearestMmr {
                nearest: VectorInput::Dense(vec![1.0]),
                mmr: Mmr { diversity: Some(0.25), candidates_limit: Some(30) }
            })
        );
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
