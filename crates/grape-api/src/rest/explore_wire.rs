//! Request and response bodies of the read-side endpoints beyond plain search: grouped queries,
//! discover and context, facets, the distance matrix and scroll `order_by`. Field names, defaults and
//! accepted forms follow Qdrant's OpenAPI document.

use grape::{Filter, Record, ScoredPoint, SearchParams, ShardKeySelector, WithPayload, WithVector};
use serde::{Deserialize, Serialize};

use super::wire::{
    LookupWire, NamedVectorStruct, QueryBody, RecommendBody, SearchBody, StrategyWire, VectorInputWire,
};
use crate::error::ApiError;
use crate::service::facet::{FacetHit, FacetQuery};
use crate::service::groups::{GroupId, GroupsQuery, PointGroup, WithLookup};
use crate::service::matrix::{Matrix, MatrixQuery};
use crate::service::order_by::{Direction, OrderBy, OrderValue};
use crate::service::{ContextPair, LookupLocation, PointsQuery, QueryInput};

// ---- discover and context ----

/// `{"positive": v, "negative": v}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "ContextPair")]
pub struct ContextPairWire {
    pub positive: VectorInputWire,
    pub negative: VectorInputWire,
}

impl ContextPairWire {
    fn into_pair(self) -> Result<ContextPair, ApiError> {
        Ok(ContextPair { positive: self.positive.into_input()?, negative: self.negative.into_input()? })
    }
}

/// The Query API's context: one pair or a list of pairs.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "ContextInput")]
#[serde(untagged)]
pub enum ContextInputWire {
    One(ContextPairWire),
    Many(Vec<ContextPairWire>),
}

impl ContextInputWire {
    fn into_pairs(self) -> Result<Vec<ContextPair>, ApiError> {
        match self {
            ContextInputWire::One(p) => Ok(vec![p.into_pair()?]),
            ContextInputWire::Many(ps) => ps.into_iter().map(ContextPairWire::into_pair).collect(),
        }
    }

    /// `{"context": ...}` of the Query API.
    pub fn into_input(self) -> Result<QueryInput, ApiError> {
        Ok(QueryInput::Context(self.into_pairs()?))
    }
}

/// `{"discover": {"target", "context"}}` of the Query API.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "DiscoverInput")]
pub struct DiscoverInputWire {
    pub target: VectorInputWire,
    pub context: ContextInputWire,
}

impl DiscoverInputWire {
    pub fn into_input(self) -> Result<QueryInput, ApiError> {
        Ok(QueryInput::Discover { target: self.target.into_input()?, context: self.context.into_pairs()? })
    }
}

/// Legacy `POST /points/discover` body: discovery with a `target`, context search without one.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DiscoverBody {
    #[serde(default)]
    pub target: Option<VectorInputWire>,
    #[serde(default)]
    pub context: Option<Vec<ContextPairWire>>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub params: Option<SearchParams>,
    pub limit: usize,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default)]
    pub with_payload: Option<WithPayload>,
    #[serde(default, alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    #[serde(default)]
    pub using: Option<String>,
    #[serde(default)]
    pub lookup_from: Option<LookupWire>,
    /// The shard keys the request reads (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

impl DiscoverBody {
    pub fn into_query(self) -> Result<PointsQuery, ApiError> {
        let context = self
            .context
            .unwrap_or_default()
            .into_iter()
            .map(ContextPairWire::into_pair)
            .collect::<Result<_, _>>()?;
        let query = match self.target {
            Some(target) => QueryInput::Discover { target: target.into_input()?, context },
            None => QueryInput::Context(context),
        };
        Ok(PointsQuery {
            prefetch: Vec::new(),
            using: self.using.unwrap_or_default(),
            query: Some(query),
            filter: self.filter,
            params: self.params.unwrap_or_default(),
            limit: self.limit,
            offset: self.offset.unwrap_or(0),
            score_threshold: None,
            with_payload: self.with_payload.unwrap_or_default(),
            with_vector: self.with_vector.unwrap_or_default(),
            lookup_from: self.lookup_from.map(LookupLocation::from),
            shard_key: self.shard_key,
        })
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DiscoverBatchBody {
    pub searches: Vec<DiscoverBody>,
}

// ---- groups ----

/// `with_lookup`: a collection name, or the collection with what to return of the looked-up points
/// (payload by default, no vectors).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "WithLookupInterface")]
#[serde(untagged)]
pub enum WithLookupWire {
    Collection(String),
    Options {
        collection: String,
        #[serde(default)]
        with_payload: Option<WithPayload>,
        #[serde(default, alias = "with_vector")]
        with_vectors: Option<WithVector>,
    },
}

impl From<WithLookupWire> for WithLookup {
    fn from(w: WithLookupWire) -> Self {
        match w {
            WithLookupWire::Collection(collection) => WithLookup {
                collection,
                with_payload: WithPayload::Enable(true),
                with_vector: WithVector::Enable(false),
            },
            WithLookupWire::Options { collection, with_payload, with_vectors } => WithLookup {
                collection,
                with_payload: with_payload.unwrap_or(WithPayload::Enable(true)),
                with_vector: with_vectors.unwrap_or_default(),
            },
        }
    }
}

fn groups_query(
    query: PointsQuery,
    group_by: String,
    group_size: usize,
    limit: usize,
    with_lookup: Option<WithLookupWire>,
) -> GroupsQuery {
    GroupsQuery { query, group_by, group_size, limit, with_lookup: with_lookup.map(WithLookup::from) }
}

/// `POST /points/query/groups` body: a Query API request plus the grouping.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct QueryGroupsBody {
    #[serde(default)]
    pub prefetch: Option<super::wire::PrefetchList>,
    #[serde(default, deserialize_with = "super::query_field::query_field")]
    pub query: Option<super::wire::QueryWire>,
    #[serde(default)]
    pub using: Option<String>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub params: Option<SearchParams>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default, alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    #[serde(default)]
    pub with_payload: Option<WithPayload>,
    #[serde(default)]
    pub lookup_from: Option<LookupWire>,
    pub group_by: String,
    #[serde(default)]
    pub group_size: Option<usize>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub with_lookup: Option<WithLookupWire>,
    /// The shard keys the request reads (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

impl QueryGroupsBody {
    pub fn into_query(self) -> Result<GroupsQuery, ApiError> {
        let body = QueryBody {
            prefetch: self.prefetch,
            query: self.query,
            using: self.using,
            filter: self.filter,
            params: self.params,
            score_threshold: self.score_threshold,
            limit: None,
            offset: None,
            with_vector: self.with_vector,
            with_payload: self.with_payload,
            lookup_from: self.lookup_from,
            shard_key: self.shard_key,
        };
        let (size, limit) = (self.group_size.unwrap_or(3), self.limit.unwrap_or(10));
        Ok(groups_query(body.into_query()?, self.group_by, size, limit, self.with_lookup))
    }
}

/// Legacy `POST /points/search/groups` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchGroupsBody {
    pub vector: NamedVectorStruct,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub params: Option<SearchParams>,
    #[serde(default)]
    pub with_payload: Option<WithPayload>,
    #[serde(default, alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    pub group_by: String,
    pub group_size: usize,
    pub limit: usize,
    #[serde(default)]
    pub with_lookup: Option<WithLookupWire>,
    /// The shard keys the request reads (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

impl SearchGroupsBody {
    pub fn into_query(self) -> Result<GroupsQuery, ApiError> {
        let body = SearchBody {
            vector: self.vector,
            filter: self.filter,
            params: self.params,
            limit: self.limit,
            offset: None,
            with_payload: self.with_payload,
            with_vector: self.with_vector,
            score_threshold: self.score_threshold,
            shard_key: self.shard_key,
        };
        Ok(groups_query(body.into_query()?, self.group_by, self.group_size, self.limit, self.with_lookup))
    }
}

/// Legacy `POST /points/recommend/groups` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RecommendGroupsBody {
    #[serde(default)]
    pub positive: Vec<VectorInputWire>,
    #[serde(default)]
    pub negative: Vec<VectorInputWire>,
    #[serde(default)]
    pub strategy: Option<StrategyWire>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub params: Option<SearchParams>,
    #[serde(default)]
    pub with_payload: Option<WithPayload>,
    #[serde(default, alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default)]
    pub using: Option<String>,
    #[serde(default)]
    pub lookup_from: Option<LookupWire>,
    pub group_by: String,
    pub group_size: usize,
    pub limit: usize,
    #[serde(default)]
    pub with_lookup: Option<WithLookupWire>,
    /// The shard keys the request reads (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

impl RecommendGroupsBody {
    pub fn into_query(self) -> Result<GroupsQuery, ApiError> {
        let body = RecommendBody {
            positive: self.positive,
            negative: self.negative,
            strategy: self.strategy,
            filter: self.filter,
            params: self.params,
            limit: self.limit,
            offset: None,
            with_payload: self.with_payload,
            with_vector: self.with_vector,
            score_threshold: self.score_threshold,
            using: self.using,
            lookup_from: self.lookup_from,
            shard_key: self.shard_key,
        };
        Ok(groups_query(body.into_query()?, self.group_by, self.group_size, self.limit, self.with_lookup))
    }
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "PointGroup")]
pub struct GroupWire {
    pub hits: Vec<ScoredPoint>,
    pub id: GroupId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup: Option<Record>,
}

/// `{"groups": [...]}`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct GroupsResult {
    pub groups: Vec<GroupWire>,
}

impl From<Vec<PointGroup>> for GroupsResult {
    fn from(groups: Vec<PointGroup>) -> Self {
        let groups =
            groups.into_iter().map(|g| GroupWire { hits: g.hits, id: g.id, lookup: g.lookup }).collect();
        GroupsResult { groups }
    }
}

// ---- facet ----

/// `POST /collections/{c}/facet` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct FacetBody {
    pub key: String,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub limit: Option<usize>,
    /// Counts are always exact in Grape.
    #[serde(default)]
    pub exact: Option<bool>,
    /// The shard keys the request reads (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

impl From<FacetBody> for FacetQuery {
    fn from(b: FacetBody) -> Self {
        FacetQuery { key: b.key, filter: b.filter, limit: b.limit.unwrap_or(10), shard_key: b.shard_key }
    }
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FacetResponse {
    pub hits: Vec<FacetHit>,
}

// ---- distance matrix ----

/// `POST /points/search/matrix/{pairs,offsets}` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct MatrixBody {
    #[serde(default)]
    pub sample: Option<usize>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub using: Option<String>,
    #[serde(default)]
    pub filter: Option<Filter>,
    /// The shard keys the request reads (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

impl From<MatrixBody> for MatrixQuery {
    fn from(b: MatrixBody) -> Self {
        MatrixQuery {
            sample: b.sample.unwrap_or(10),
            limit: b.limit.unwrap_or(3),
            using: b.using.unwrap_or_default(),
            filter: b.filter,
            shard_key: b.shard_key,
        }
    }
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct MatrixPair {
    pub a: grape::PointId,
    pub b: grape::PointId,
    pub score: f32,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct MatrixPairs {
    pub pairs: Vec<MatrixPair>,
}

impl From<Matrix> for MatrixPairs {
    fn from(m: Matrix) -> Self {
        let pairs = m
            .rows
            .iter()
            .enumerate()
            .flat_map(|(i, row)| row.iter().map(move |&(j, score)| (i, j, score)))
            .map(|(i, j, score)| MatrixPair { a: m.ids[i], b: m.ids[j], score })
            .collect();
        MatrixPairs { pairs }
    }
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct MatrixOffsets {
    pub offsets_row: Vec<usize>,
    pub offsets_col: Vec<usize>,
    pub scores: Vec<f32>,
    pub ids: Vec<grape::PointId>,
}

impl From<Matrix> for MatrixOffsets {
    fn from(m: Matrix) -> Self {
        let cells = m.rows.iter().enumerate().flat_map(|(i, row)| row.iter().map(move |&(j, s)| (i, j, s)));
        let (mut offsets_row, mut offsets_col, mut scores) = (Vec::new(), Vec::new(), Vec::new());
        for (i, j, s) in cells {
            offsets_row.push(i);
            offsets_col.push(j);
            scores.push(s);
        }
        MatrixOffsets { offsets_row, offsets_col, scores, ids: m.ids }
    }
}

// ---- scroll order_by ----

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Direction")]
#[serde(rename_all = "lowercase")]
pub enum DirectionWire {
    Asc,
    Desc,
}

/// `start_from`: a number or a date-time.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "StartFrom")]
#[serde(untagged)]
pub enum StartFromWire {
    Integer(i64),
    Float(f64),
    Datetime(String),
}

/// `order_by`: a payload key, or `{key, direction, start_from}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "OrderByInterface")]
#[serde(untagged)]
pub enum OrderByWire {
    Key(String),
    Options {
        key: String,
        #[serde(default)]
        direction: Option<DirectionWire>,
        #[serde(default)]
        start_from: Option<StartFromWire>,
    },
}

impl OrderByWire {
    /// Reads scroll's `order_by` (kept as raw JSON in [`super::wire::ScrollBody`]).
    pub fn parse(value: serde_json::Value) -> Result<OrderBy, ApiError> {
        let wire: OrderByWire = serde_path_to_error::deserialize(value).map_err(|e| {
            ApiError::bad_request(format!("Json deserialize error: order_by: {}", e.into_inner()))
        })?;
        Ok(match wire {
            OrderByWire::Key(key) => OrderBy { key, direction: Direction::Asc, start_from: None },
            OrderByWire::Options { key, direction, start_from } => {
                let start_from = match start_from {
                    None => None,
                    Some(StartFromWire::Integer(i)) => Some(OrderValue::Int(i)),
                    Some(StartFromWire::Float(x)) => Some(OrderValue::Float(x)),
                    Some(StartFromWire::Datetime(s)) => {
                        let micros = grape::filter::parse_datetime(&s).ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "Bad request: order_by.start_from: {s:?} is neither a number nor a date-time"
                            ))
                        })?;
                        Some(OrderValue::Int(micros))
                    }
                };
                let direction = match direction {
                    Some(DirectionWire::Desc) => Direction::Desc,
                    Some(DirectionWire::Asc) | None => Direction::Asc,
                };
                OrderBy { key, direction, start_from }
            }
        })
    }
}

/// A scrolled point with the value it was ordered by.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct OrderedRecord {
    #[serde(flatten)]
    pub record: Record,
    pub order_value: OrderValue,
}

/// Scroll's answer with `order_by`: no next page offset, as in Qdrant.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct OrderedScrollResult {
    pub points: Vec<OrderedRecord>,
    pub next_page_offset: Option<grape::PointId>,
}
