//! Proto messages <-> the engine's types: payload values, point ids, vectors, selectors, results.

use std::collections::HashMap;

use grape::point::PayloadSelector;
use grape::{Payload, PointId, Record, ScoredPoint, VectorOutput, VectorStruct, WithPayload, WithVector};
use grape_proto::qdrant as pb;
use serde_json::Value;
use tonic::Status;

use super::{invalid, unsupported};

// ---- payload values ----

pub(super) fn value_to_json(v: pb::Value) -> Result<Value, Status> {
    use pb::value::Kind;
    Ok(match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::DoubleValue(x)) => serde_json::Number::from_f64(x)
            .map(Value::Number)
            .ok_or_else(|| invalid(format!("payload: {x} is not a finite number")))?,
        Some(Kind::IntegerValue(i)) => Value::from(i),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::StructValue(s)) => Value::Object(map_to_payload(s.fields)?),
        Some(Kind::ListValue(l)) => {
            Value::Array(l.values.into_iter().map(value_to_json).collect::<Result<_, _>>()?)
        }
    })
}

/// A proto payload map as a JSON object (keys sorted: proto maps have no order).
pub(super) fn map_to_payload(fields: HashMap<String, pb::Value>) -> Result<Payload, Status> {
    let mut entries: Vec<(String, pb::Value)> = fields.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().map(|(k, v)| Ok((k, value_to_json(v)?))).collect()
}

pub(super) fn json_to_value(v: Value) -> pb::Value {
    use pb::value::Kind;
    let kind = match v {
        Value::Null => Kind::NullValue(pb::NullValue::NullValue as i32),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntegerValue(i),
            None => Kind::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => {
            Kind::ListValue(pb::ListValue { values: items.into_iter().map(json_to_value).collect() })
        }
        Value::Object(o) => Kind::StructValue(pb::Struct { fields: payload_to_map(o) }),
    };
    pb::Value { kind: Some(kind) }
}

pub(super) fn payload_to_map(payload: Payload) -> HashMap<String, pb::Value> {
    payload.into_iter().map(|(k, v)| (k, json_to_value(v))).collect()
}

// ---- point ids ----

pub(super) fn point_id(id: pb::PointId) -> Result<PointId, Status> {
    match id.point_id_options {
        Some(pb::point_id::PointIdOptions::Num(n)) => Ok(PointId::Num(n)),
        Some(pb::point_id::PointIdOptions::Uuid(s)) => uuid::Uuid::parse_str(&s)
            .map(PointId::Uuid)
            .map_err(|e| invalid(format!("Unable to parse UUID: {s}: {e}"))),
        None => Err(invalid("PointId: one of num or uuid is required")),
    }
}

pub(super) fn point_ids(ids: Vec<pb::PointId>) -> Result<Vec<PointId>, Status> {
    ids.into_iter().map(point_id).collect()
}

pub(super) fn proto_point_id(id: PointId) -> pb::PointId {
    use pb::point_id::PointIdOptions;
    let options = match id {
        PointId::Num(n) => PointIdOptions::Num(n),
        PointId::Uuid(u) => PointIdOptions::Uuid(u.hyphenated().to_string()),
    };
    pb::PointId { point_id_options: Some(options) }
}

/// A point id as Qdrant's JSON has it (for filters built as JSON).
pub(super) fn point_id_json(id: pb::PointId) -> Result<Value, Status> {
    Ok(match point_id(id)? {
        PointId::Num(n) => Value::from(n),
        PointId::Uuid(u) => Value::String(u.hyphenated().to_string()),
    })
}

// ---- vectors ----

/// A dense vector from a client's `Vector` (the `dense` variant or the older `data` field).
pub(super) fn dense_vector(v: pb::Vector) -> Result<Vec<f32>, Status> {
    use pb::vector::Vector as V;
    match v.vector {
        Some(V::Dense(d)) => Ok(d.data),
        Some(V::Sparse(_)) => Err(unsupported("sparse vectors")),
        Some(V::MultiDense(_)) => Err(unsupported("multi-vectors")),
        Some(V::Document(_) | V::Image(_) | V::Object(_)) => {
            Err(unsupported("inference (document, image, object)"))
        }
        None if v.indices.is_some() => Err(unsupported("sparse vectors")),
        None if v.vectors_count.is_some_and(|n| n > 1) => Err(unsupported("multi-vectors")),
        None => Ok(v.data),
    }
}

pub(super) fn vectors(v: Option<pb::Vectors>) -> Result<VectorStruct, Status> {
    use pb::vectors::VectorsOptions;
    match v.and_then(|v| v.vectors_options) {
        Some(VectorsOptions::Vector(v)) => Ok(VectorStruct::Single(dense_vector(v)?)),
        Some(VectorsOptions::Vectors(named)) => Ok(VectorStruct::Named(
            named
                .vectors
                .into_iter()
                .map(|(k, v)| Ok((k, grape::Vector::Dense(dense_vector(v)?))))
                .collect::<Result<_, Status>>()?,
        )),
        None => Ok(VectorStruct::Named(Default::default())),
    }
}

pub(super) fn point(p: pb::PointStruct) -> Result<grape::PointStruct, Status> {
    let id = point_id(p.id.ok_or_else(|| invalid("PointStruct: id is required"))?)?;
    let payload = if p.payload.is_empty() { None } else { Some(map_to_payload(p.payload)?) };
    Ok(grape::PointStruct { id, vectors: vectors(p.vectors)?, payload })
}

fn dense_output(data: Vec<f32>) -> pb::VectorOutput {
    pb::VectorOutput {
        vector: Some(pb::vector_output::Vector::Dense(pb::DenseVector { data })),
        ..Default::default()
    }
}

fn vector_output(v: grape::Vector) -> pb::VectorOutput {
    match v {
        grape::Vector::Dense(data) => dense_output(data),
        // The sparse oneof member is not declared yet (its message is opaque); the older fields
        // `data` + `indices`, which clients still read, carry the vector.
        grape::Vector::Sparse(s) => pb::VectorOutput {
            data: s.values,
            indices: Some(pb::SparseIndices { data: s.indices }),
            ..Default::default()
        },
        // Likewise a multivector: its rows concatenated in `data`, their number in `vectors_count`.
        grape::Vector::Multi(rows) => pb::VectorOutput {
            vectors_count: Some(rows.len() as u32),
            data: rows.concat(),
            ..Default::default()
        },
    }
}

pub(super) fn vectors_output(v: VectorOutput) -> pb::VectorsOutput {
    use pb::vectors_output::VectorsOptions;
    let options = match v {
        VectorOutput::Single(data) => VectorsOptions::Vector(dense_output(data)),
        VectorOutput::Named(named) => VectorsOptions::Vectors(pb::NamedVectorsOutput {
            vectors: named.into_iter().map(|(k, v)| (k, vector_output(v))).collect(),
        }),
    };
    pb::VectorsOutput { vectors_options: Some(options) }
}

// ---- selectors ----

pub(super) fn with_payload(s: Option<pb::WithPayloadSelector>, default: bool) -> WithPayload {
    use pb::with_payload_selector::SelectorOptions;
    match s.and_then(|s| s.selector_options) {
        None => WithPayload::Enable(default),
        Some(SelectorOptions::Enable(b)) => WithPayload::Enable(b),
        Some(SelectorOptions::Include(i)) => WithPayload::Selector(PayloadSelector::Include(i.fields)),
        Some(SelectorOptions::Exclude(e)) => WithPayload::Selector(PayloadSelector::Exclude(e.fields)),
    }
}

pub(super) fn with_vector(s: Option<pb::WithVectorsSelector>) -> WithVector {
    use pb::with_vectors_selector::SelectorOptions;
    match s.and_then(|s| s.selector_options) {
        None => WithVector::Enable(false),
        Some(SelectorOptions::Enable(b)) => WithVector::Enable(b),
        Some(SelectorOptions::Include(i)) => WithVector::Include(i.names),
    }
}

pub(super) fn search_params(p: Option<pb::SearchParams>) -> Result<grape::SearchParams, Status> {
    let Some(p) = p else { return Ok(grape::SearchParams::default()) };
    if p.quantization.is_some() {
        return Err(unsupported("params.quantization (quantized search)"));
    }
    if p.acorn.is_some() {
        return Err(unsupported("params.acorn"));
    }
    if p.idf.is_some() {
        return Err(unsupported("params.idf (sparse vectors)"));
    }
    if p.indexed_only == Some(true) {
        return Err(unsupported("params.indexed_only"));
    }
    Ok(grape::SearchParams {
        hnsw_ef: p.hnsw_ef.map(|ef| ef as usize),
        exact: p.exact.unwrap_or(false),
        quantization: None,
    })
}

/// Refuses a custom-sharding shard key selector (Grape has no shard keys).
pub(super) fn no_shard_keys(selector: &Option<Vec<u8>>) -> Result<(), Status> {
    match selector {
        Some(_) => Err(unsupported("shard_key_selector (custom sharding)")),
        None => Ok(()),
    }
}

// ---- results ----

pub(super) fn scored_point(p: ScoredPoint) -> pb::ScoredPoint {
    pb::ScoredPoint {
        id: Some(proto_point_id(p.id)),
        payload: p.payload.map(payload_to_map).unwrap_or_default(),
        score: p.score,
        version: p.version,
        vectors: p.vector.map(vectors_output),
    }
}

pub(super) fn retrieved_point(r: Record) -> pb::RetrievedPoint {
    pb::RetrievedPoint {
        id: Some(proto_point_id(r.id)),
        payload: r.payload.map(payload_to_map).unwrap_or_default(),
        vectors: r.vector.map(vectors_output),
    }
}

pub(super) fn update_result(r: grape::UpdateResult) -> pb::UpdateResult {
    let status = match r.status {
        grape::UpdateStatus::Acknowledged => pb::UpdateStatus::Acknowledged,
        grape::UpdateStatus::Completed => pb::UpdateStatus::Completed,
    };
    pb::UpdateResult { operation_id: r.operation_id, status: status as i32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_keeps_integers_and_floats_apart() {
        let json = serde_json::json!({"a": 1, "b": 1.5, "c": [true, null, "x"], "d": {"e": -3}});
        let Value::Object(payload) = json.clone() else { unreachable!() };
        let back = map_to_payload(payload_to_map(payload)).unwrap();
        assert_eq!(Value::Object(back), json);
        let int = json_to_value(serde_json::json!(7));
        assert_eq!(int.kind, Some(pb::value::Kind::IntegerValue(7)));
    }

    #[test]
    fn point_ids() {
        let uuid = "550e8400-e29b-41d4-a716-446655440000";
        let id = pb::PointId { point_id_options: Some(pb::point_id::PointIdOptions::Uuid(uuid.into())) };
        let parsed = point_id(id.clone()).unwrap();
        assert_eq!(proto_point_id(parsed), id);
        let bad = pb::PointId { point_id_options: Some(pb::point_id::PointIdOptions::Uuid("nope".into())) };
        assert_eq!(point_id(bad).unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(point_id(pb::PointId::default()).unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn vectors_of_unbuilt_kinds_are_refused_by_name() {
        let dense = pb::Vector { data: vec![1.0, 2.0], ..Default::default() };
        assert_eq!(dense_vector(dense).unwrap(), vec![1.0, 2.0]);
        let sparse = pb::Vector { vector: Some(pb::vector::Vector::Sparse(vec![])), ..Default::default() };
        let e = dense_vector(sparse).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("sparse"), "{}", e.message());
    }
}
