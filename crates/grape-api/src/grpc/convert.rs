//! Proto messages <-> the engine's types: payload values, point ids, vectors, selectors, results.

use std::collections::HashMap;

use grape::point::PayloadSelector;
use grape::{
    Payload, PointId, Record, ScoredPoint, VectorOutput, VectorStruct, WithPayload, WithVector,
    DEFAULT_VECTOR_NAME,
};
use grape_proto::qdrant as pb;
use serde_json::Value;
use tonic::Status;

use super::{invalid, unsupported};
use crate::service::VectorInput;

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

pub(super) fn sparse_vector(v: pb::SparseVector) -> grape::SparseVector {
    grape::SparseVector::new(v.indices, v.values)
}

pub(super) fn multi_dense(v: pb::MultiDenseVector) -> Vec<Vec<f32>> {
    v.vectors.into_iter().map(|row| row.data).collect()
}

/// The rows of a multivector sent in the deprecated form: `data` holds `count` rows concatenated.
fn multi_rows(data: Vec<f32>, count: u32) -> Result<Vec<Vec<f32>>, Status> {
    let count = count as usize;
    if count == 0 || data.is_empty() || !data.len().is_multiple_of(count) {
        return Err(invalid(format!(
            "Unable to convert to multi-dense vector: {} values do not make {count} vectors of equal size",
            data.len()
        )));
    }
    Ok(data.chunks(data.len() / count).map(<[f32]>::to_vec).collect())
}

/// A vector as a client sends it: the `vector` oneof, or the deprecated fields (`data` alone is dense,
/// with `indices` sparse, with `vectors_count` a multivector of that many rows).
pub(super) fn vector(v: pb::Vector) -> Result<grape::Vector, Status> {
    use pb::vector::Vector as V;
    match v.vector {
        Some(V::Dense(d)) => Ok(grape::Vector::Dense(d.data)),
        Some(V::Sparse(s)) => Ok(grape::Vector::Sparse(sparse_vector(s))),
        Some(V::MultiDense(m)) => Ok(grape::Vector::Multi(multi_dense(m))),
        Some(V::Document(_) | V::Image(_) | V::Object(_)) => {
            Err(unsupported("inference (document, image, object)"))
        }
        None => match (v.indices, v.vectors_count) {
            (Some(indices), _) => Ok(grape::Vector::Sparse(grape::SparseVector::new(indices.data, v.data))),
            (None, Some(count)) => Ok(grape::Vector::Multi(multi_rows(v.data, count)?)),
            (None, None) => Ok(grape::Vector::Dense(v.data)),
        },
    }
}

pub(super) fn vectors(v: Option<pb::Vectors>) -> Result<VectorStruct, Status> {
    use pb::vectors::VectorsOptions;
    match v.and_then(|v| v.vectors_options) {
        // The unnamed vector: dense, or a multivector (stored under the default name).
        Some(VectorsOptions::Vector(v)) => match vector(v)? {
            grape::Vector::Dense(d) => Ok(VectorStruct::Single(d)),
            grape::Vector::Sparse(_) => Err(invalid("Sparse vector must be named")),
            multi => Ok(VectorStruct::Named([(DEFAULT_VECTOR_NAME.to_owned(), multi)].into())),
        },
        Some(VectorsOptions::Vectors(named)) => Ok(VectorStruct::Named(
            named.vectors.into_iter().map(|(k, v)| Ok((k, vector(v)?))).collect::<Result<_, Status>>()?,
        )),
        None => Ok(VectorStruct::Named(Default::default())),
    }
}

/// A vector of the Query API: by value (dense, sparse, multivector) or by a stored point's id.
pub(super) fn vector_input(v: pb::VectorInput) -> Result<VectorInput, Status> {
    use pb::vector_input::Variant as V;
    match v.variant.ok_or_else(|| invalid("VectorInput: a vector or a point id is required"))? {
        V::Id(id) => Ok(VectorInput::Point(point_id(id)?)),
        V::Dense(d) => Ok(VectorInput::Dense(d.data)),
        V::Sparse(s) => Ok(VectorInput::Sparse(sparse_vector(s))),
        V::MultiDense(m) => Ok(VectorInput::Multi(multi_dense(m))),
        V::Document(_) | V::Image(_) | V::Object(_) => {
            Err(unsupported("inference (document, image, object)"))
        }
    }
}

pub(super) fn point(p: pb::PointStruct) -> Result<grape::PointStruct, Status> {
    let id = point_id(p.id.ok_or_else(|| invalid("PointStruct: id is required"))?)?;
    let payload = if p.payload.is_empty() { None } else { Some(map_to_payload(p.payload)?) };
    Ok(grape::PointStruct { id, vectors: vectors(p.vectors)?, payload })
}

/// A stored vector in the `vector` oneof only: Qdrant (since 1.16) leaves the deprecated `data`,
/// `indices` and `vectors_count` empty, and the official clients read the oneof first.
fn vector_output(v: grape::Vector) -> pb::VectorOutput {
    use pb::vector_output::Vector as V;
    let vector = match v {
        grape::Vector::Dense(data) => V::Dense(pb::DenseVector { data }),
        grape::Vector::Sparse(s) => V::Sparse(pb::SparseVector { values: s.values, indices: s.indices }),
        grape::Vector::Multi(rows) => V::MultiDense(pb::MultiDenseVector {
            vectors: rows.into_iter().map(|data| pb::DenseVector { data }).collect(),
        }),
    };
    pb::VectorOutput { vector: Some(vector), ..Default::default() }
}

pub(super) fn vectors_output(v: VectorOutput) -> pb::VectorsOutput {
    use pb::vectors_output::VectorsOptions;
    let options = match v {
        VectorOutput::Single(data) => VectorsOptions::Vector(vector_output(grape::Vector::Dense(data))),
        VectorOutput::Named(named) => {
            let alone = named.len() == 1;
            let mut vectors: HashMap<String, pb::VectorOutput> =
                named.into_iter().map(|(k, v)| (k, vector_output(v))).collect();
            // An unnamed multivector alone is the point's vector, as Qdrant answers it.
            match vectors.remove(DEFAULT_VECTOR_NAME) {
                Some(v) if alone => VectorsOptions::Vector(v),
                Some(v) => {
                    vectors.insert(DEFAULT_VECTOR_NAME.to_owned(), v);
                    VectorsOptions::Vectors(pb::NamedVectorsOutput { vectors })
                }
                None => VectorsOptions::Vectors(pb::NamedVectorsOutput { vectors }),
            }
        }
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
        quantization: p.quantization.map(super::quantization::search_params).transpose()?,
    })
}

/// A shard key from its proto form.
pub(super) fn shard_key(key: pb::ShardKey) -> Result<grape::ShardKey, Status> {
    match key.key {
        Some(pb::shard_key::Key::Keyword(k)) => Ok(grape::ShardKey::Keyword(k)),
        Some(pb::shard_key::Key::Number(n)) => Ok(grape::ShardKey::Number(n)),
        None => Err(invalid("shard_key: a keyword or a number is required")),
    }
}

pub(super) fn proto_shard_key(key: &grape::ShardKey) -> pb::ShardKey {
    let key = match key {
        grape::ShardKey::Keyword(k) => pb::shard_key::Key::Keyword(k.clone()),
        grape::ShardKey::Number(n) => pb::shard_key::Key::Number(*n),
    };
    pb::ShardKey { key: Some(key) }
}

/// The shard keys a request names (custom sharding): one key, several, or one with a fallback.
pub(super) fn shard_keys(
    selector: Option<pb::ShardKeySelector>,
) -> Result<Option<grape::ShardKeySelector>, Status> {
    let Some(selector) = selector else { return Ok(None) };
    let mut keys = selector.shard_keys.into_iter().map(shard_key).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(match (selector.fallback, keys.len()) {
        (Some(fallback), 1) => grape::ShardKeySelector::WithFallback(grape::ShardKeyWithFallback {
            target: keys.remove(0),
            fallback: shard_key(fallback)?,
        }),
        (Some(_), _) => return Err(invalid("shard_key_selector: a fallback needs exactly one shard key")),
        (None, 1) => grape::ShardKeySelector::One(keys.remove(0)),
        (None, _) => grape::ShardKeySelector::Many(keys),
    }))
}

// ---- results ----

pub(super) fn scored_point(p: ScoredPoint) -> pb::ScoredPoint {
    pb::ScoredPoint {
        id: Some(proto_point_id(p.id)),
        payload: p.payload.map(payload_to_map).unwrap_or_default(),
        score: p.score,
        version: p.version,
        vectors: p.vector.map(vectors_output),
        order_value: p.order_value.map(order_value),
    }
}

pub(super) fn retrieved_point(r: Record) -> pb::RetrievedPoint {
    pb::RetrievedPoint {
        id: Some(proto_point_id(r.id)),
        payload: r.payload.map(payload_to_map).unwrap_or_default(),
        vectors: r.vector.map(vectors_output),
        order_value: None,
    }
}

/// A point of a scroll with `order_by`, with the value it was ordered by.
pub(super) fn ordered_point(r: Record, v: grape::OrderValue) -> pb::RetrievedPoint {
    pb::RetrievedPoint { order_value: Some(order_value(v)), ..retrieved_point(r) }
}

pub(super) fn order_value(v: grape::OrderValue) -> pb::OrderValue {
    let variant = match v {
        grape::OrderValue::Int(i) => pb::order_value::Variant::Int(i),
        grape::OrderValue::Float(x) => pb::order_value::Variant::Float(x),
    };
    pb::OrderValue { variant: Some(variant) }
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

    fn rows(v: grape::Vector) -> Vec<Vec<f32>> {
        match v {
            grape::Vector::Multi(rows) => rows,
            other => panic!("expected a multivector, got {other:?}"),
        }
    }

    #[test]
    fn vectors_in_the_oneof_and_in_the_deprecated_fields() {
        let dense = pb::Vector { data: vec![1.0, 2.0], ..Default::default() };
        assert_eq!(vector(dense).unwrap(), grape::Vector::Dense(vec![1.0, 2.0]));
        let sparse = pb::Vector {
            vector: Some(pb::vector::Vector::Sparse(pb::SparseVector {
                values: vec![0.5],
                indices: vec![9],
            })),
            ..Default::default()
        };
        assert_eq!(
            vector(sparse).unwrap(),
            grape::Vector::Sparse(grape::SparseVector::new(vec![9], vec![0.5]))
        );
        let old_sparse = pb::Vector {
            data: vec![0.5, 0.25],
            indices: Some(pb::SparseIndices { data: vec![9, 1] }),
            ..Default::default()
        };
        assert_eq!(
            vector(old_sparse).unwrap(),
            grape::Vector::Sparse(grape::SparseVector::new(vec![9, 1], vec![0.5, 0.25]))
        );
        let multi = pb::Vector {
            vector: Some(pb::vector::Vector::MultiDense(pb::MultiDenseVector {
                vectors: vec![
                    pb::DenseVector { data: vec![1.0, 2.0] },
                    pb::DenseVector { data: vec![3.0, 4.0] },
                ],
            })),
            ..Default::default()
        };
        assert_eq!(rows(vector(multi).unwrap()), vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        let old_multi = pb::Vector {
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            vectors_count: Some(3),
            ..Default::default()
        };
        assert_eq!(rows(vector(old_multi).unwrap()), vec![vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]]);
        for (data, count) in [(vec![1.0, 2.0, 3.0], 2), (vec![1.0], 0), (vec![], 1)] {
            let bad = pb::Vector { data, vectors_count: Some(count), ..Default::default() };
            assert_eq!(vector(bad).unwrap_err().code(), tonic::Code::InvalidArgument);
        }
    }

    #[test]
    fn unnamed_vectors() {
        let unnamed = |v: pb::vector::Vector| {
            vectors(Some(pb::Vectors {
                vectors_options: Some(pb::vectors::VectorsOptions::Vector(pb::Vector {
                    vector: Some(v),
                    ..Default::default()
                })),
            }))
        };
        let sparse =
            unnamed(pb::vector::Vector::Sparse(pb::SparseVector { values: vec![1.0], indices: vec![1] }));
        assert!(sparse.unwrap_err().message().contains("must be named"));
        let multi = pb::MultiDenseVector { vectors: vec![pb::DenseVector { data: vec![1.0] }] };
        let VectorStruct::Named(named) = unnamed(pb::vector::Vector::MultiDense(multi)).unwrap() else {
            panic!("an unnamed multivector is stored under the default name")
        };
        assert_eq!(named[DEFAULT_VECTOR_NAME], grape::Vector::Multi(vec![vec![1.0]]));
        // It comes back as the point's unnamed vector.
        let out = vectors_output(VectorOutput::Named(named));
        let Some(pb::vectors_output::VectorsOptions::Vector(v)) = out.vectors_options else {
            panic!("expected an unnamed vector: {out:?}")
        };
        assert!(v.data.is_empty() && v.vectors_count.is_none(), "only the oneof is filled, as Qdrant does");
        assert!(matches!(v.vector, Some(pb::vector_output::Vector::MultiDense(_))));
    }

    #[test]
    fn inference_is_refused_by_name() {
        let doc = pb::Vector { vector: Some(pb::vector::Vector::Document(vec![])), ..Default::default() };
        let e = vector(doc).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("inference"), "{}", e.message());
    }
}
