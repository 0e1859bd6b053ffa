//! Qdrant's Query API request bodies (`POST /points/query` and its batch), the vector inputs shared
//! with recommend, and their conversion into service types.

use grape::{Filter, PointId, SearchParams, ShardKeySelector, SparseVector, WithPayload, WithVector};
use serde::{Deserialize, Serialize};

use super::explore_wire::{ContextInputWire, DiscoverInputWire};
use crate::error::ApiError;
use crate::service::{
    Formula, Fusion, LookupLocation, Mmr, PointsQuery, Prefetch, QueryInput, RecommendStrategy, VectorInput,
};

/// A vector input of the Query API: a dense vector or a point id.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "VectorInput")]
#[serde(untagged)]
pub enum VectorInputWire {
    Dense(Vec<f32>),
    Id(PointId),
    // Before `Sparse`, which serde would also read from an array of two arrays.
    Multi(Vec<Vec<f32>>),
    Sparse(SparseVector),
}

impl VectorInputWire {
    pub(super) fn into_input(self) -> Result<VectorInput, ApiError> {
        match self {
            VectorInputWire::Dense(v) => Ok(VectorInput::Dense(v)),
            VectorInputWire::Id(id) => Ok(VectorInput::Point(id)),
            VectorInputWire::Sparse(v) => Ok(VectorInput::Sparse(v)),
            VectorInputWire::Multi(v) => Ok(VectorInput::Multi(v)),
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "RecommendStrategy")]
#[serde(rename_all = "snake_case")]
pub enum StrategyWire {
    AverageVector,
    BestScore,
    SumScores,
}

impl From<StrategyWire> for RecommendStrategy {
    fn from(s: StrategyWire) -> Self {
        match s {
            StrategyWire::AverageVector => RecommendStrategy::AverageVector,
            StrategyWire::BestScore => RecommendStrategy::BestScore,
            StrategyWire::SumScores => RecommendStrategy::SumScores,
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "RecommendInput")]
pub struct RecommendInputWire {
    #[serde(default)]
    pub positive: Vec<VectorInputWire>,
    #[serde(default)]
    pub negative: Vec<VectorInputWire>,
    #[serde(default)]
    pub strategy: Option<StrategyWire>,
}

impl RecommendInputWire {
    pub(super) fn into_input(self) -> Result<QueryInput, ApiError> {
        Ok(QueryInput::Recommend {
            positive: self.positive.into_iter().map(VectorInputWire::into_input).collect::<Result<_, _>>()?,
            negative: self.negative.into_iter().map(VectorInputWire::into_input).collect::<Result<_, _>>()?,
            strategy: self.strategy.map(Into::into).unwrap_or_default(),
        })
    }
}

/// The `query` of a Query API request. Kinds Grape does not run yet are recognised and refused by name.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "QueryInterface")]
#[serde(untagged)]
pub enum QueryWire {
    Nearest {
        nearest: VectorInputWire,
        #[serde(default)]
        #[schemars(with = "Option<MmrWire>")]
        mmr: Option<serde_json::Value>,
    },
    Recommend {
        recommend: RecommendInputWire,
    },
    Discover {
        discover: DiscoverInputWire,
    },
    Context {
        context: ContextInputWire,
    },
    Fusion {
        fusion: FusionWire,
    },
    Rrf {
        rrf: RrfWire,
    },
    Sample {
        sample: SampleWire,
    },
    OrderBy {
        #[schemars(with = "super::explore_wire::OrderByWire")]
        order_by: serde_json::Value,
    },
    Formula {
        #[schemars(with = "grape::query::Expression")]
        formula: serde_json::Value,
        #[serde(default)]
        defaults: Option<serde_json::Map<String, serde_json::Value>>,
    },
    Vector(VectorInputWire),
    Other(serde_json::Map<String, serde_json::Value>),
}

/// `{"fusion": "rrf" | "dbsf"}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Fusion")]
#[serde(rename_all = "lowercase")]
pub enum FusionWire {
    Rrf,
    Dbsf,
}

/// `{"rrf": {"k": .., "weights": [..]}}`: reciprocal rank fusion with parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Rrf")]
#[serde(deny_unknown_fields)]
pub struct RrfWire {
    #[serde(default)]
    pub k: Option<u32>,
    #[serde(default)]
    pub weights: Option<Vec<f32>>,
}

/// `mmr` of a nearest query: maximal marginal relevance re-ranking.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Mmr")]
#[serde(deny_unknown_fields)]
pub struct MmrWire {
    #[serde(default)]
    pub diversity: Option<f32>,
    #[serde(default)]
    pub candidates_limit: Option<usize>,
}

/// Reads a part of a query kept as raw JSON (so that its errors name it, rather than falling through
/// the untagged `QueryWire`).
fn parse_part<T: serde::de::DeserializeOwned>(what: &str, value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        ApiError::bad_request(format!("Json deserialize error: query.{what}: {}", e.into_inner()))
    })
}

/// `{"sample": "random"}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Sample")]
#[serde(rename_all = "lowercase")]
pub enum SampleWire {
    Random,
}

impl QueryWire {
    pub(super) fn into_input(self) -> Result<QueryInput, ApiError> {
        match self {
            QueryWire::Nearest { nearest, mmr: Some(mmr) } => {
                let mmr: MmrWire = parse_part("mmr", mmr)?;
                Ok(QueryInput::NearestMmr {
                    nearest: nearest.into_input()?,
                    mmr: Mmr { diversity: mmr.diversity, candidates_limit: mmr.candidates_limit },
                })
            }
            QueryWire::OrderBy { order_by } => {
                Ok(QueryInput::OrderBy(super::explore_wire::OrderByWire::parse(order_by)?))
            }
            QueryWire::Formula { formula, defaults } => Ok(QueryInput::Formula(Formula {
                formula: parse_part("formula", formula)?,
                defaults: defaults.unwrap_or_default(),
            })),
            QueryWire::Nearest { nearest, mmr: None } | QueryWire::Vector(nearest) => {
                Ok(QueryInput::Nearest(nearest.into_input()?))
            }
            QueryWire::Recommend { recommend } => recommend.into_input(),
            QueryWire::Discover { discover } => discover.into_input(),
            QueryWire::Context { context } => context.into_input(),
            QueryWire::Fusion { fusion: FusionWire::Rrf } => {
                Ok(QueryInput::Fusion(Fusion::Rrf { k: None, weights: None }))
            }
            QueryWire::Fusion { fusion: FusionWire::Dbsf } => Ok(QueryInput::Fusion(Fusion::Dbsf)),
            QueryWire::Rrf { rrf } => {
                if rrf.k == Some(0) {
                    return Err(ApiError::bad_request(
                        "Validation error in JSON body: [rrf.k: must be at least 1]",
                    ));
                }
                Ok(QueryInput::Fusion(Fusion::Rrf { k: rrf.k, weights: rrf.weights }))
            }
            QueryWire::Sample { sample: SampleWire::Random } => Ok(QueryInput::Sample),
            QueryWire::Other(map) => {
                let kind = map.keys().next().cloned().unwrap_or_else(|| "{}".to_string());
                Err(ApiError::unsupported(&format!("query kind `{kind}`")))
            }
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "LookupLocation")]
pub struct LookupWire {
    pub collection: String,
    #[serde(default)]
    pub vector: Option<String>,
}

impl From<LookupWire> for LookupLocation {
    fn from(l: LookupWire) -> Self {
        LookupLocation { collection: l.collection, vector: l.vector }
    }
}

/// One prefetch or a list of them. (`Many` is tried first: serde would also read an array as a struct,
/// field by field.)
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum PrefetchList {
    Many(Vec<PrefetchWire>),
    One(Box<PrefetchWire>),
}

impl PrefetchList {
    fn into_prefetches(list: Option<PrefetchList>) -> Result<Vec<Prefetch>, ApiError> {
        match list {
            None => Ok(Vec::new()),
            Some(PrefetchList::One(p)) => Ok(vec![p.into_prefetch()?]),
            Some(PrefetchList::Many(ps)) => ps.into_iter().map(PrefetchWire::into_prefetch).collect(),
        }
    }
}

/// A prefetch of the Query API: a query of its own whose results feed its parent query.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Prefetch")]
pub struct PrefetchWire {
    #[serde(default)]
    pub prefetch: Option<PrefetchList>,
    #[serde(default, deserialize_with = "super::query_field::query_field")]
    pub query: Option<QueryWire>,
    #[serde(default)]
    pub using: Option<String>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub params: Option<SearchParams>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub lookup_from: Option<LookupWire>,
}

impl PrefetchWire {
    fn into_prefetch(self) -> Result<Prefetch, ApiError> {
        Ok(Prefetch {
            prefetch: PrefetchList::into_prefetches(self.prefetch)?,
            query: self.query.map(QueryWire::into_input).transpose()?,
            using: self.using.unwrap_or_default(),
            filter: self.filter,
            params: self.params.unwrap_or_default(),
            score_threshold: self.score_threshold,
            limit: self.limit.unwrap_or(10),
            lookup_from: self.lookup_from.map(Into::into),
        })
    }
}

/// `POST /points/query` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct QueryBody {
    #[serde(default)]
    pub prefetch: Option<PrefetchList>,
    #[serde(default, deserialize_with = "super::query_field::query_field")]
    pub query: Option<QueryWire>,
    #[serde(default)]
    pub using: Option<String>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub params: Option<SearchParams>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default, alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    #[serde(default)]
    pub with_payload: Option<WithPayload>,
    #[serde(default)]
    pub lookup_from: Option<LookupWire>,
    /// The shard keys the request goes to (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

impl QueryBody {
    pub fn into_query(self) -> Result<PointsQuery, ApiError> {
        Ok(PointsQuery {
            prefetch: PrefetchList::into_prefetches(self.prefetch)?,
            using: self.using.unwrap_or_default(),
            query: self.query.map(QueryWire::into_input).transpose()?,
            filter: self.filter,
            params: self.params.unwrap_or_default(),
            limit: self.limit.unwrap_or(10),
            offset: self.offset.unwrap_or(0),
            score_threshold: self.score_threshold,
            with_payload: self.with_payload.unwrap_or_default(),
            with_vector: self.with_vector.unwrap_or_default(),
            lookup_from: self
                .lookup_from
                .map(|l| LookupLocation { collection: l.collection, vector: l.vector }),
            shard_key: self.shard_key,
        })
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct QueryBatchBody {
    pub searches: Vec<QueryBody>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct QueryResponse {
    pub points: Vec<grape::ScoredPoint>,
}
