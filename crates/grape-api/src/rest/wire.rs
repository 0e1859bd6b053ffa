//! Qdrant's REST request bodies that have no engine type of the same shape, and their conversion into
//! service types. Field names, defaults and accepted forms follow Qdrant's OpenAPI document.

use std::collections::BTreeMap;

use grape::{
    Filter, Payload, PointId, PointStruct, SearchParams, ShardKeySelector, SparseVector, Vector,
    VectorStruct, WithPayload, WithVector,
};
use serde::{Deserialize, Serialize};

pub use super::query_wire::*;
use crate::error::ApiError;
use crate::service::{LookupLocation, PointsQuery, PointsSelector, QueryInput, UpdateOperation, VectorInput};

/// `?wait=&ordering=` of writes.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct WriteParams {
    #[serde(default)]
    pub wait: Option<bool>,
    #[serde(default)]
    pub ordering: Option<WriteOrdering>,
}

/// Qdrant's write ordering. Every write of a shard is ordered by its Raft leader whatever the level;
/// in cluster mode the level chooses when the write is acknowledged (`weak`: once the leader took it,
/// `medium`: committed on a majority, `strong`: durable on every replica). A single node orders and
/// acknowledges every write the same way.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WriteOrdering {
    Weak,
    Medium,
    Strong,
}

impl WriteOrdering {
    pub fn ack(self) -> grape::WriteAck {
        match self {
            WriteOrdering::Weak => grape::WriteAck::Async,
            WriteOrdering::Medium => grape::WriteAck::Quorum,
            WriteOrdering::Strong => grape::WriteAck::All,
        }
    }
}

impl WriteParams {
    /// When the write is acknowledged: the `ordering` asked for, else the collection's default.
    pub fn ack(&self) -> Option<grape::WriteAck> {
        self.ordering.map(WriteOrdering::ack)
    }
}

/// `?consistency=&timeout=` of reads. A single node has one replica, so every consistency is met; in
/// cluster mode every level above one replica reads linearizably (`grape::consistency`).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct ReadParams {
    #[serde(default)]
    #[schemars(schema_with = "consistency_schema")]
    pub consistency: Option<String>,
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// Qdrant's `ReadConsistency`: a number of replicas or one of the named levels.
fn consistency_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            { "type": "integer", "minimum": 1 },
            { "type": "string", "enum": ["majority", "quorum", "all"] }
        ]
    })
}

impl ReadParams {
    pub fn validate(&self) -> Result<(), ApiError> {
        self.consistency().map(|_| ())
    }

    /// The read consistency asked for (Qdrant's default: one replica).
    pub fn consistency(&self) -> Result<grape::ReadConsistency, ApiError> {
        match self.consistency.as_deref() {
            None => Ok(grape::ReadConsistency::default()),
            Some(s) => grape::ReadConsistency::parse(s).map_err(ApiError::from),
        }
    }
}

/// `?timeout=` of collection operations.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct TimeoutParams {
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// `PUT /collections/{c}/points`: a list of points or a column batch.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum PointInsert {
    Points {
        points: Vec<PointStruct>,
        #[serde(default)]
        update_filter: Option<Filter>,
        #[serde(default)]
        shard_key: Option<ShardKeySelector>,
    },
    Batch {
        batch: Batch,
        #[serde(default)]
        update_filter: Option<Filter>,
        #[serde(default)]
        shard_key: Option<ShardKeySelector>,
    },
}

/// Column form of an upsert: `ids`, `vectors` (a list, or lists by name) and optional `payloads`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Batch {
    pub ids: Vec<PointId>,
    pub vectors: BatchVectors,
    #[serde(default)]
    pub payloads: Option<Vec<Option<Payload>>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum BatchVectors {
    Single(Vec<Vec<f32>>),
    Named(BTreeMap<String, Vec<Vector>>),
}

impl PointInsert {
    /// The points and the shard keys they go to.
    pub fn into_points(self) -> Result<(Vec<PointStruct>, Option<ShardKeySelector>), ApiError> {
        let (points, update_filter, shard_key) = match self {
            PointInsert::Points { points, update_filter, shard_key } => (points, update_filter, shard_key),
            PointInsert::Batch { batch, update_filter, shard_key } => {
                (batch.into_points()?, update_filter, shard_key)
            }
        };
        if update_filter.is_some() {
            return Err(ApiError::unsupported("update_filter (conditional upsert)"));
        }
        Ok((points, shard_key))
    }
}

impl Batch {
    fn into_points(self) -> Result<Vec<PointStruct>, ApiError> {
        let n = self.ids.len();
        let mismatch = |what: &str, got: usize| {
            ApiError::bad_request(format!(
                "Wrong input: batch.{what} has {got} entries but batch.ids has {n}"
            ))
        };
        if let Some(p) = &self.payloads {
            if p.len() != n {
                return Err(mismatch("payloads", p.len()));
            }
        }
        let mut vectors: Vec<VectorStruct> = match self.vectors {
            BatchVectors::Single(v) => {
                if v.len() != n {
                    return Err(mismatch("vectors", v.len()));
                }
                v.into_iter().map(VectorStruct::Single).collect()
            }
            BatchVectors::Named(by_name) => {
                let mut per_point: Vec<BTreeMap<String, Vector>> = vec![BTreeMap::new(); n];
                for (name, column) in by_name {
                    if column.len() != n {
                        return Err(mismatch(&format!("vectors.{name}"), column.len()));
                    }
                    for (slot, v) in per_point.iter_mut().zip(column) {
                        slot.insert(name.clone(), v);
                    }
                }
                per_point.into_iter().map(VectorStruct::Named).collect()
            }
        };
        let mut payloads = self.payloads.unwrap_or_else(|| vec![None; n]);
        Ok(self
            .ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| PointStruct {
                id,
                vectors: std::mem::replace(&mut vectors[i], VectorStruct::Single(Vec::new())),
                payload: payloads[i].take(),
            })
            .collect())
    }
}

/// `{"points": [...]}` or `{"filter": {...}}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Selector {
    Points {
        points: Vec<PointId>,
        #[serde(default)]
        shard_key: Option<ShardKeySelector>,
    },
    Filter {
        filter: Filter,
        #[serde(default)]
        shard_key: Option<ShardKeySelector>,
    },
}

impl Selector {
    /// The points and the shard keys they are looked for in.
    pub fn into_parts(self) -> (PointsSelector, Option<ShardKeySelector>) {
        match self {
            Selector::Points { points, shard_key } => (PointsSelector::Ids(points), shard_key),
            Selector::Filter { filter, shard_key } => (PointsSelector::Filter(filter), shard_key),
        }
    }
}

/// Set/overwrite payload: `payload` plus `points` or `filter` (and `key`, a nested path, for set).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SetPayload {
    pub payload: Payload,
    #[serde(default)]
    pub points: Option<Vec<PointId>>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub key: Option<String>,
    /// The shard keys the request goes to (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

fn selector_of(points: Option<Vec<PointId>>, filter: Option<Filter>) -> Result<PointsSelector, ApiError> {
    match (points, filter) {
        (Some(ids), None) => Ok(PointsSelector::Ids(ids)),
        (None, Some(f)) => Ok(PointsSelector::Filter(f)),
        (Some(_), Some(_)) => {
            Err(ApiError::bad_request("Bad request: give either points or filter, not both"))
        }
        (None, None) => Err(ApiError::bad_request("Bad request: either points or filter is required")),
    }
}

impl SetPayload {
    pub fn into_set(self) -> Result<UpdateOperation, ApiError> {
        Ok(UpdateOperation::SetPayload {
            selector: selector_of(self.points, self.filter)?,
            payload: self.payload,
            key: self.key,
        })
    }

    pub fn into_overwrite(self) -> Result<UpdateOperation, ApiError> {
        if self.key.is_some() {
            return Err(ApiError::unsupported("key with overwrite_payload"));
        }
        Ok(UpdateOperation::OverwritePayload {
            selector: selector_of(self.points, self.filter)?,
            payload: self.payload,
        })
    }
}

/// Delete payload keys of `points` or of the points passing `filter`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DeletePayload {
    pub keys: Vec<String>,
    #[serde(default)]
    pub points: Option<Vec<PointId>>,
    #[serde(default)]
    pub filter: Option<Filter>,
    /// The shard keys the request goes to (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

impl DeletePayload {
    pub fn into_op(self) -> Result<UpdateOperation, ApiError> {
        Ok(UpdateOperation::DeletePayload {
            selector: selector_of(self.points, self.filter)?,
            keys: self.keys,
        })
    }
}

/// One operation of `POST /points/batch`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchOperation {
    Upsert(PointInsert),
    Delete(Selector),
    SetPayload(SetPayload),
    OverwritePayload(SetPayload),
    DeletePayload(DeletePayload),
    ClearPayload(Selector),
    UpdateVectors(UpdateVectorsBody),
    DeleteVectors(DeleteVectorsBody),
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct BatchUpdate {
    pub operations: Vec<BatchOperation>,
}

impl BatchOperation {
    /// The operation and the shard keys it goes to.
    pub fn into_op(self) -> Result<(UpdateOperation, Option<ShardKeySelector>), ApiError> {
        Ok(match self {
            BatchOperation::Upsert(insert) => {
                let (points, key) = insert.into_points()?;
                (UpdateOperation::Upsert(points), key)
            }
            BatchOperation::Delete(s) => {
                let (selector, key) = s.into_parts();
                (UpdateOperation::Delete(selector), key)
            }
            BatchOperation::SetPayload(mut s) => {
                let key = s.shard_key.take();
                (s.into_set()?, key)
            }
            BatchOperation::OverwritePayload(mut s) => {
                let key = s.shard_key.take();
                (s.into_overwrite()?, key)
            }
            BatchOperation::DeletePayload(mut d) => {
                let key = d.shard_key.take();
                (d.into_op()?, key)
            }
            BatchOperation::ClearPayload(s) => {
                let (selector, key) = s.into_parts();
                (UpdateOperation::ClearPayload(selector), key)
            }
            BatchOperation::UpdateVectors(mut u) => {
                let key = u.shard_key.take();
                (u.into_op()?, key)
            }
            BatchOperation::DeleteVectors(mut d) => {
                let key = d.shard_key.take();
                (d.into_op()?, key)
            }
        })
    }
}

/// `POST /collections/{c}/points`: retrieve by ids.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PointRequest {
    pub ids: Vec<PointId>,
    #[serde(default)]
    pub with_payload: Option<WithPayload>,
    #[serde(default, alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    /// The shard keys the request goes to (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

/// Retrieve and scroll return payloads unless told otherwise.
pub fn payload_or_on(w: Option<WithPayload>) -> WithPayload {
    w.unwrap_or(WithPayload::Enable(true))
}

/// Scroll request body (Qdrant's `ScrollRequest`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ScrollBody {
    #[serde(default)]
    pub offset: Option<PointId>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub with_payload: Option<WithPayload>,
    #[serde(default, alias = "with_vectors")]
    pub with_vector: Option<WithVector>,
    #[serde(default)]
    #[schemars(with = "Option<super::explore_wire::OrderByWire>")]
    pub order_by: Option<serde_json::Value>,
    /// The shard keys the request goes to (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

/// Scroll's answer: a page and the offset of the next one, or points with their `order_value`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ScrollAnswer {
    Page(grape::ScrollResult),
    Ordered(super::explore_wire::OrderedScrollResult),
}

/// Count request body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CountBody {
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub exact: Option<bool>,
    /// The shard keys the request goes to (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CountResult {
    pub count: usize,
}

/// A vector in the legacy search API: bare (unnamed) or `{"name", "vector"}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum NamedVectorStruct {
    Dense(Vec<f32>),
    Named { name: String, vector: Vec<f32> },
    Sparse { name: String, vector: SparseVector },
}

/// Legacy `POST /points/search` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchBody {
    pub vector: NamedVectorStruct,
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
    pub score_threshold: Option<f32>,
    /// The shard keys the request goes to (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

impl SearchBody {
    pub fn into_query(self) -> Result<PointsQuery, ApiError> {
        let (using, vector) = match self.vector {
            NamedVectorStruct::Dense(v) => (String::new(), VectorInput::Dense(v)),
            NamedVectorStruct::Named { name, vector } => (name, VectorInput::Dense(vector)),
            NamedVectorStruct::Sparse { name, vector } => (name, VectorInput::Sparse(vector)),
        };
        Ok(PointsQuery {
            prefetch: Vec::new(),
            using,
            query: Some(QueryInput::Nearest(vector)),
            filter: self.filter,
            params: self.params.unwrap_or_default(),
            limit: self.limit,
            offset: self.offset.unwrap_or(0),
            score_threshold: self.score_threshold,
            with_payload: self.with_payload.unwrap_or_default(),
            with_vector: self.with_vector.unwrap_or_default(),
            lookup_from: None,
            shard_key: self.shard_key,
        })
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchBatchBody {
    pub searches: Vec<SearchBody>,
}

/// Legacy `POST /points/recommend` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RecommendBody {
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
    pub limit: usize,
    #[serde(default)]
    pub offset: Option<usize>,
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
    /// The shard keys the request goes to (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

impl RecommendBody {
    pub fn into_query(self) -> Result<PointsQuery, ApiError> {
        let input =
            RecommendInputWire { positive: self.positive, negative: self.negative, strategy: self.strategy };
        Ok(PointsQuery {
            prefetch: Vec::new(),
            using: self.using.unwrap_or_default(),
            query: Some(input.into_input()?),
            filter: self.filter,
            params: self.params.unwrap_or_default(),
            limit: self.limit,
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
pub struct RecommendBatchBody {
    pub searches: Vec<RecommendBody>,
}

/// `POST /collections/aliases` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AliasActions {
    pub actions: Vec<grape::AliasOperation>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AliasList {
    pub aliases: Vec<grape::AliasDescription>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CollectionDescription {
    pub name: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CollectionList {
    pub collections: Vec<CollectionDescription>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Exists {
    pub exists: bool,
}

/// `PUT /collections/{c}/index` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CreateFieldIndex {
    pub field_name: String,
    #[serde(default)]
    pub field_schema: Option<grape::PayloadFieldSchema>,
}

/// One point of `PUT /points/vectors`: its id and the vectors to replace.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PointVectors {
    pub id: PointId,
    pub vector: VectorStruct,
}

/// `PUT /collections/{c}/points/vectors` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct UpdateVectorsBody {
    pub points: Vec<PointVectors>,
    #[serde(default)]
    pub update_filter: Option<Filter>,
    /// The shard keys the request goes to (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

impl UpdateVectorsBody {
    pub fn into_op(self) -> Result<UpdateOperation, ApiError> {
        if self.update_filter.is_some() {
            return Err(ApiError::unsupported("update_filter (conditional update)"));
        }
        Ok(UpdateOperation::UpdateVectors(self.points.into_iter().map(|p| (p.id, p.vector)).collect()))
    }
}

/// `POST /collections/{c}/points/vectors/delete` body: vector names and `points` or `filter`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DeleteVectorsBody {
    #[serde(default)]
    pub points: Option<Vec<PointId>>,
    #[serde(default)]
    pub filter: Option<Filter>,
    pub vector: Vec<String>,
    /// The shard keys the request goes to (custom sharding).
    #[serde(default)]
    pub shard_key: Option<ShardKeySelector>,
}

impl DeleteVectorsBody {
    pub fn into_op(self) -> Result<UpdateOperation, ApiError> {
        Ok(UpdateOperation::DeleteVectors {
            selector: selector_of(self.points, self.filter)?,
            names: self.vector,
        })
    }
}
