//! The operation log entry. Every change to a shard is one [`Operation`] applied with an op_num.

use serde::{Deserialize, Serialize};

use crate::{json_bytes, Filter, NamedVectors, NewVector, Payload, PointId};

/// A point after request validation: vectors by name, cosine vectors already normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointWrite {
    pub id: PointId,
    pub vectors: NamedVectors,
    #[serde(with = "json_bytes")]
    pub payload: Option<Payload>,
}

/// One change to a shard. Applying is deterministic, and a point remembers the op_num that last changed
/// it, so replaying an operation that is already reflected is a no-op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Operation {
    /// Insert or replace whole points.
    Upsert(Vec<PointWrite>),
    /// Delete points by id; missing ids are ignored.
    Delete(Vec<PointId>),
    /// Merge keys into the payload (at `key`, a dotted path, when given).
    SetPayload {
        points: Vec<PointId>,
        #[serde(with = "json_bytes")]
        payload: Payload,
        key: Option<String>,
    },
    /// Replace the whole payload.
    OverwritePayload {
        points: Vec<PointId>,
        #[serde(with = "json_bytes")]
        payload: Payload,
    },
    /// Remove keys (dotted paths) from the payload.
    DeletePayloadKeys { points: Vec<PointId>, keys: Vec<String> },
    /// Remove the whole payload.
    ClearPayload { points: Vec<PointId> },
    /// Delete the points that pass `filter` when the operation is applied.
    DeleteByFilter {
        #[serde(with = "json_bytes")]
        filter: Filter,
    },
    /// Merge keys into the payload of the points that pass `filter` when the operation is applied.
    SetPayloadByFilter {
        #[serde(with = "json_bytes")]
        filter: Filter,
        #[serde(with = "json_bytes")]
        payload: Payload,
        key: Option<String>,
    },
    /// Replace the given named vectors of existing points; their other vectors and payload stay.
    /// (Appended after the first variants: the WAL encodes the variant index.)
    UpdateVectors { points: Vec<(PointId, NamedVectors)> },
    /// Remove the named vectors from existing points (the points keep their other vectors).
    DeleteVectors { points: Vec<PointId>, names: Vec<String> },
    /// Add the vector `name` (no point has a value for it yet); a vector of that name and another
    /// shape is replaced, one of the same shape stays as it is.
    CreateVector { name: String, vector: NewVector },
    /// Drop the vector `name` with every value stored for it; a no-op when there is none.
    DeleteVector { name: String },
}

impl Operation {
    /// Ids touched by this operation.
    pub fn point_ids(&self) -> Vec<PointId> {
        match self {
            Operation::Upsert(points) => points.iter().map(|p| p.id).collect(),
            Operation::Delete(ids)
            | Operation::SetPayload { points: ids, .. }
            | Operation::OverwritePayload { points: ids, .. }
            | Operation::DeletePayloadKeys { points: ids, .. }
            | Operation::ClearPayload { points: ids }
            | Operation::DeleteVectors { points: ids, .. } => ids.clone(),
            Operation::UpdateVectors { points } => points.iter().map(|(id, _)| *id).collect(),
            Operation::DeleteByFilter { .. }
            | Operation::SetPayloadByFilter { .. }
            | Operation::CreateVector { .. }
            | Operation::DeleteVector { .. } => Vec::new(),
        }
    }
}
