//! The `query` field of Query API bodies, read without buffering the common bare-vector form.

use grape::PointId;
use serde::Deserialize;

use super::wire::{QueryWire, VectorInputWire};

/// Reads a `query` field. A bare dense vector or multivector (what clients send for a nearest query)
/// or a point id is read directly; object forms go through `QueryWire`'s untagged derive, which buffers
/// its input and tries each form in turn (costly for a vector of hundreds of floats, so not used for
/// the common case). Accepts exactly what the derive accepts, with the same meaning.
pub(crate) fn query_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<QueryWire>, D::Error> {
    use serde::de::{self, value::MapAccessDeserializer, IntoDeserializer};

    /// One element of a bare array: a number (dense vector) or a row (multivector).
    enum Elem {
        Num(f64),
        Row(Vec<f32>),
    }
    impl<'de> Deserialize<'de> for Elem {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct ElemVisitor;
            impl<'de> de::Visitor<'de> for ElemVisitor {
                type Value = Elem;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a number or an array of numbers")
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Elem, E> {
                    Ok(Elem::Num(v))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Elem, E> {
                    Ok(Elem::Num(v as f64))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Elem, E> {
                    Ok(Elem::Num(v as f64))
                }
                fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Elem, A::Error> {
                    Vec::<f32>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Elem::Row)
                }
            }
            d.deserialize_any(ElemVisitor)
        }
    }

    struct QueryVisitor;
    impl<'de> de::Visitor<'de> for QueryVisitor {
        type Value = Option<QueryWire>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a query: a vector, a point id or a query object")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(QueryVisitor)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(QueryWire::Vector(VectorInputWire::Id(PointId::Num(v)))))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            let id = u64::try_from(v).map_err(|_| E::custom(format!("invalid point id {v}")))?;
            self.visit_u64(id)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let id = PointId::deserialize(v.into_deserializer())?;
            Ok(Some(QueryWire::Vector(VectorInputWire::Id(id))))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let (mut dense, mut multi) = (Vec::new(), Vec::new());
            while let Some(e) = seq.next_element::<Elem>()? {
                match e {
                    Elem::Num(x) if multi.is_empty() => dense.push(x as f32),
                    Elem::Row(r) if dense.is_empty() => multi.push(r),
                    _ => return Err(de::Error::custom("a vector mixes numbers and arrays")),
                }
            }
            let v =
                if multi.is_empty() { VectorInputWire::Dense(dense) } else { VectorInputWire::Multi(multi) };
            Ok(Some(QueryWire::Vector(v)))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            QueryWire::deserialize(MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_option(QueryVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::wire::QueryBody;
    use crate::service::{QueryInput, VectorInput};

    fn query(json: &str) -> Result<Option<QueryInput>, String> {
        let body: QueryBody = serde_json::from_str(json).map_err(|e| e.to_string())?;
        body.query.map(QueryWire::into_input).transpose().map_err(|e| format!("{e:?}"))
    }

    /// The direct reading of bare vectors and ids gives what the untagged forms give.
    #[test]
    fn query_field_reads_every_form() {
        assert!(
            matches!(query(r#"{"query": [1, 2.5, -3]}"#), Ok(Some(QueryInput::Nearest(VectorInput::Dense(v)))) if v == [1.0, 2.5, -3.0])
        );
        assert!(
            matches!(query(r#"{"query": [[1, 2], [3, 4]]}"#), Ok(Some(QueryInput::Nearest(VectorInput::Multi(v)))) if v == [vec![1.0, 2.0], vec![3.0, 4.0]])
        );
        assert!(matches!(
            query(r#"{"query": 7}"#),
            Ok(Some(QueryInput::Nearest(VectorInput::Point(PointId::Num(7)))))
        ));
        let uuid = "550e8400-e29b-41d4-a716-446655440000";
        assert!(matches!(
            query(&format!(r#"{{"query": "{uuid}"}}"#)),
            Ok(Some(QueryInput::Nearest(VectorInput::Point(PointId::Uuid(_)))))
        ));
        assert!(
            matches!(query(r#"{"query": {"nearest": [0.5, 1]}}"#), Ok(Some(QueryInput::Nearest(VectorInput::Dense(v)))) if v == [0.5, 1.0])
        );
        assert!(matches!(
            query(r#"{"query": {"nearest": {"indices": [1], "values": [0.5]}}}"#),
            Ok(Some(QueryInput::Nearest(VectorInput::Sparse(_))))
        ));
        assert!(matches!(query(r#"{"query": {"fusion": "rrf"}}"#), Ok(Some(QueryInput::Fusion(_)))));
        assert!(matches!(query(r#"{"query": null}"#), Ok(None)));
        assert!(matches!(query(r#"{"limit": 3}"#), Ok(None)));
        for bad in [
            r#"{"query": [1, [2]]}"#,
            r#"{"query": [[1], 2]}"#,
            r#"{"query": ["a"]}"#,
            r#"{"query": -1}"#,
            r#"{"query": "x"}"#,
            r#"{"query": true}"#,
        ] {
            assert!(query(bad).is_err(), "{bad} was accepted");
        }
    }
}
