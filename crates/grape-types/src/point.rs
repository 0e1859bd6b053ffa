//! Points as written and as read: vectors, payloads, selectors and results.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, PointId, Result, SparseVector};

/// Name of the unnamed (default) vector.
pub const DEFAULT_VECTOR_NAME: &str = "";

/// A point's JSON payload: always an object at the top level.
pub type Payload = serde_json::Map<String, serde_json::Value>;

/// One vector of a point: dense (a JSON array), sparse (`{indices, values}`) or a multivector (an
/// array of dense vectors, scored by late interaction).
///
/// JSON tells them apart by shape (Qdrant's form); binary encodings (the WAL's postcard), which
/// cannot look ahead, get an explicit variant tag instead (0 dense, 1 sparse, 2 multi).
#[derive(Debug, Clone, PartialEq)]
pub enum Vector {
    Dense(Vec<f32>),
    Sparse(SparseVector),
    Multi(Vec<Vec<f32>>),
}

/// The JSON form of [`Vector`]. (`Multi` is tried before `Sparse`: serde would also read an array of two
/// arrays as the struct `{indices, values}`, field by field.)
#[derive(Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
enum VectorJson {
    Dense(Vec<f32>),
    Multi(Vec<Vec<f32>>),
    Sparse(SparseVector),
}

/// The binary form of [`Vector`]. Variants are only appended: `Dense` (a list of f32, written before
/// `DenseBytes`) is still read; a dense vector is written as `DenseBytes`, its f32 values as one byte
/// string, little-endian, which postcard copies in one piece instead of value by value.
#[derive(Deserialize)]
enum VectorBin {
    Dense(Vec<f32>),
    Sparse(SparseVector),
    Multi(Vec<Vec<f32>>),
    DenseBytes(DenseBytes),
}

/// A dense vector as a byte string: its f32 values, little-endian.
struct DenseBytes(Vec<f32>);

/// Serializes a dense vector as [`DenseBytes`].
struct AsDenseBytes<'a>(&'a [f32]);

impl Serialize for AsDenseBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self.0.iter().flat_map(|x| x.to_le_bytes()).collect();
        s.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for DenseBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = DenseBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a dense vector as little-endian f32 bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> std::result::Result<DenseBytes, E> {
                if !b.len().is_multiple_of(4) {
                    return Err(E::invalid_length(b.len(), &self));
                }
                let values = b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                Ok(DenseBytes(values.collect()))
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

impl Serialize for Vector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match (self, s.is_human_readable()) {
            (Vector::Dense(v), true) => v.serialize(s),
            (Vector::Sparse(v), true) => v.serialize(s),
            (Vector::Multi(v), true) => v.serialize(s),
            (Vector::Dense(v), false) => {
                s.serialize_newtype_variant("Vector", 3, "DenseBytes", &AsDenseBytes(v))
            }
            (Vector::Sparse(v), false) => s.serialize_newtype_variant("Vector", 1, "Sparse", v),
            (Vector::Multi(v), false) => s.serialize_newtype_variant("Vector", 2, "Multi", v),
        }
    }
}

impl<'de> Deserialize<'de> for Vector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        if d.is_human_readable() {
            Ok(match VectorJson::deserialize(d)? {
                VectorJson::Dense(v) => Vector::Dense(v),
                VectorJson::Sparse(v) => Vector::Sparse(v),
                VectorJson::Multi(v) => Vector::Multi(v),
            })
        } else {
            Ok(match VectorBin::deserialize(d)? {
                VectorBin::Dense(v) => Vector::Dense(v),
                VectorBin::Sparse(v) => Vector::Sparse(v),
                VectorBin::Multi(v) => Vector::Multi(v),
                VectorBin::DenseBytes(DenseBytes(v)) => Vector::Dense(v),
            })
        }
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Vector {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Vector".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        VectorJson::json_schema(generator)
    }
}

impl Vector {
    pub fn as_dense(&self) -> Option<&[f32]> {
        match self {
            Vector::Dense(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_sparse(&self) -> Option<&SparseVector> {
        match self {
            Vector::Sparse(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_multi(&self) -> Option<&[Vec<f32>]> {
        match self {
            Vector::Multi(v) => Some(v),
            _ => None,
        }
    }
}

impl From<Vec<f32>> for Vector {
    fn from(v: Vec<f32>) -> Self {
        Vector::Dense(v)
    }
}

impl From<SparseVector> for Vector {
    fn from(v: SparseVector) -> Self {
        Vector::Sparse(v)
    }
}

/// Vectors of one point by vector name (`""` for the unnamed vector).
pub type NamedVectors = BTreeMap<String, Vector>;

/// Vectors as they appear in Qdrant's JSON: a bare array for the unnamed vector or an object by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum VectorStruct {
    Single(Vec<f32>),
    Named(NamedVectors),
}

impl VectorStruct {
    pub fn into_named(self) -> NamedVectors {
        match self {
            VectorStruct::Single(v) => BTreeMap::from([(DEFAULT_VECTOR_NAME.to_string(), Vector::Dense(v))]),
            VectorStruct::Named(m) => m,
        }
    }
}

impl From<Vec<f32>> for VectorStruct {
    fn from(v: Vec<f32>) -> Self {
        VectorStruct::Single(v)
    }
}

/// A point to upsert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PointStruct {
    pub id: PointId,
    #[serde(rename = "vector")]
    pub vectors: VectorStruct,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
}

impl PointStruct {
    pub fn new(id: impl Into<PointId>, vector: impl Into<VectorStruct>) -> Self {
        PointStruct { id: id.into(), vectors: vector.into(), payload: None }
    }

    pub fn with_payload(mut self, payload: serde_json::Value) -> Result<Self> {
        match payload {
            serde_json::Value::Object(map) => {
                self.payload = Some(map);
                Ok(self)
            }
            other => Err(Error::bad_input(format!("payload must be a JSON object, got {other}"))),
        }
    }
}

/// Which payload keys to return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum WithPayload {
    Enable(bool),
    Include(Vec<String>),
    Selector(PayloadSelector),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum PayloadSelector {
    Include(Vec<String>),
    Exclude(Vec<String>),
}

impl Default for WithPayload {
    fn default() -> Self {
        WithPayload::Enable(false)
    }
}

impl WithPayload {
    pub fn is_enabled(&self) -> bool {
        !matches!(self, WithPayload::Enable(false))
    }

    /// Applies the selector to a stored payload. Keys are top-level names or dotted paths.
    pub fn select(&self, payload: &Payload) -> Option<Payload> {
        match self {
            WithPayload::Enable(false) => None,
            WithPayload::Enable(true) => Some(payload.clone()),
            WithPayload::Include(keys) | WithPayload::Selector(PayloadSelector::Include(keys)) => {
                let mut out = Payload::new();
                for key in keys {
                    copy_path(payload, &mut out, key);
                }
                Some(out)
            }
            WithPayload::Selector(PayloadSelector::Exclude(keys)) => {
                let mut out = payload.clone();
                for key in keys {
                    remove_path(&mut out, key);
                }
                Some(out)
            }
        }
    }
}

fn copy_path(src: &Payload, dst: &mut Payload, path: &str) {
    let (head, rest) = split_path(path);
    let Some(value) = src.get(head) else { return };
    match (rest, value) {
        (None, v) => {
            dst.insert(head.to_string(), v.clone());
        }
        (Some(rest), serde_json::Value::Object(inner)) => {
            let slot =
                dst.entry(head.to_string()).or_insert_with(|| serde_json::Value::Object(Payload::new()));
            if let serde_json::Value::Object(slot) = slot {
                copy_path(inner, slot, rest);
            }
        }
        _ => {}
    }
}

fn remove_path(target: &mut Payload, path: &str) {
    let (head, rest) = split_path(path);
    match rest {
        None => {
            target.remove(head);
        }
        Some(rest) => {
            if let Some(serde_json::Value::Object(inner)) = target.get_mut(head) {
                remove_path(inner, rest);
            }
        }
    }
}

fn split_path(path: &str) -> (&str, Option<&str>) {
    match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    }
}

/// Which vectors to return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum WithVector {
    Enable(bool),
    Include(Vec<String>),
}

impl Default for WithVector {
    fn default() -> Self {
        WithVector::Enable(false)
    }
}

impl WithVector {
    pub fn is_enabled(&self) -> bool {
        !matches!(self, WithVector::Enable(false))
    }

    pub fn wants(&self, name: &str) -> bool {
        match self {
            WithVector::Enable(b) => *b,
            WithVector::Include(names) => names.iter().any(|n| n == name),
        }
    }
}

/// Vectors as returned to users: a bare array when the collection has only the unnamed vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum VectorOutput {
    Single(Vec<f32>),
    Named(NamedVectors),
}

impl VectorOutput {
    pub fn from_named(mut named: NamedVectors) -> Self {
        if named.len() == 1 && matches!(named.get(DEFAULT_VECTOR_NAME), Some(Vector::Dense(_))) {
            if let Some(Vector::Dense(v)) = named.remove(DEFAULT_VECTOR_NAME) {
                return VectorOutput::Single(v);
            }
        }
        VectorOutput::Named(named)
    }
}

/// A stored point as returned by retrieve and scroll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Record {
    pub id: PointId,
    #[serde(default)]
    pub payload: Option<Payload>,
    #[serde(default)]
    pub vector: Option<VectorOutput>,
}

/// A search hit. `score` is reported with the metric's convention (distance for Euclid and Manhattan).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ScoredPoint {
    pub id: PointId,
    pub version: u64,
    pub score: f32,
    #[serde(default)]
    pub payload: Option<Payload>,
    #[serde(default)]
    pub vector: Option<VectorOutput>,
    /// The payload value the point was ordered by (an `order_by` query only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_value: Option<crate::OrderValue>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vector_struct_forms() {
        let p: PointStruct = serde_json::from_value(json!({"id": 1, "vector": [1.0, 2.0]})).unwrap();
        assert_eq!(p.vectors.into_named()[""], Vector::Dense(vec![1.0, 2.0]));
        let p: PointStruct = serde_json::from_value(
            json!({"id": 1, "vector": {"d": [1.0], "s": {"indices": [3], "values": [0.5]}}}),
        )
        .unwrap();
        let named = p.vectors.into_named();
        assert_eq!(named["s"], Vector::Sparse(SparseVector::new(vec![3], vec![0.5])));
        // Two rows are a multivector, not `{indices, values}` read field by field.
        let p: PointStruct =
            serde_json::from_value(json!({"id": 1, "vector": {"m": [[1.0, 2.0], [3.0, 4.0]]}})).unwrap();
        assert_eq!(p.vectors.into_named()["m"], Vector::Multi(vec![vec![1.0, 2.0], vec![3.0, 4.0]]));
        assert_eq!(named["d"], Vector::Dense(vec![1.0]));
        let p: PointStruct =
            serde_json::from_value(json!({"id": 1, "vector": {"a": [1.0]}, "payload": {"k": 1}})).unwrap();
        assert!(p.vectors.into_named().contains_key("a"));
    }

    /// The binary form: a dense vector is written as variant 3 (its f32 bytes), every value bit for
    /// bit; variant 0 (a list of f32, written before) still reads; a byte string that is not whole
    /// f32 values is refused.
    #[test]
    fn binary_form_of_vectors() {
        let values = vec![0.0, -0.0, 1.5, -2.25e-38, f32::MAX, f32::MIN_POSITIVE, 1e-45, 3.0e38];
        let bytes = postcard::to_allocvec(&Vector::Dense(values.clone())).unwrap();
        // Tag 3, length 32 (one varint byte), then the values' little-endian bytes.
        assert_eq!(&bytes[..2], &[3, 32]);
        assert_eq!(&bytes[2..6], &values[0].to_le_bytes());
        let back: Vector = postcard::from_bytes(&bytes).unwrap();
        let Vector::Dense(back) = back else { panic!("not dense") };
        assert_eq!(
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            values.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(postcard::from_bytes::<Vector>(&[3, 0]).unwrap(), Vector::Dense(Vec::new()));

        #[derive(Serialize)]
        enum Old {
            Dense(Vec<f32>),
        }
        let old = postcard::to_allocvec(&Old::Dense(vec![1.0, 2.0])).unwrap();
        assert_eq!(old[0], 0);
        assert_eq!(postcard::from_bytes::<Vector>(&old).unwrap(), Vector::Dense(vec![1.0, 2.0]));

        assert!(postcard::from_bytes::<Vector>(&[3, 3, 0, 0, 128]).is_err());
        for v in [
            Vector::Sparse(SparseVector::new(vec![1, 7], vec![0.5, 0.25])),
            Vector::Multi(vec![vec![1.0, 2.0], vec![3.0, 4.0]]),
        ] {
            assert_eq!(postcard::from_bytes::<Vector>(&postcard::to_allocvec(&v).unwrap()).unwrap(), v);
        }
    }

    #[test]
    fn payload_selectors() {
        let payload: Payload = serde_json::from_value(json!({"a": 1, "b": {"c": 2, "d": 3}})).unwrap();
        let inc = WithPayload::Include(vec!["b.c".into()]).select(&payload).unwrap();
        assert_eq!(serde_json::Value::Object(inc), json!({"b": {"c": 2}}));
        let exc: WithPayload = serde_json::from_value(json!({"exclude": ["a"]})).unwrap();
        let out = exc.select(&payload).unwrap();
        assert_eq!(serde_json::Value::Object(out), json!({"b": {"c": 2, "d": 3}}));
        assert!(WithPayload::Enable(false).select(&payload).is_none());
    }
}
