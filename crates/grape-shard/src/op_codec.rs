//! WAL record encoding of an [`Operation`]: a version byte, then the postcard encoding.
//!
//! Version 2 (current) stores each named vector as the [`Vector`] enum (dense or sparse). Version 1 logs,
//! written before sparse vectors existed, held dense vectors only; they still decode, through the
//! record types below, which keep the version 1 layout.

use std::collections::BTreeMap;

use grape_types::operation::PointWrite;
use grape_types::{json_bytes, Error, Filter, Operation, Payload, PointId, Result, Vector};
use serde::Deserialize;

const CURRENT: u8 = 2;
const DENSE_ONLY: u8 = 1;

pub fn encode_operation(op: &Operation) -> Result<Vec<u8>> {
    let out = vec![CURRENT];
    postcard::to_extend(op, out).map_err(|e| Error::Internal(format!("operation encoding: {e}")))
}

pub fn decode_operation(bytes: &[u8]) -> Result<Operation> {
    let corrupt = |e: postcard::Error| Error::Corruption(format!("WAL record does not decode: {e}"));
    match bytes.split_first() {
        Some((&CURRENT, body)) => postcard::from_bytes(body).map_err(corrupt),
        Some((&DENSE_ONLY, body)) => {
            postcard::from_bytes::<OperationV1>(body).map(Operation::from).map_err(corrupt)
        }
        Some((v, _)) => Err(Error::Corruption(format!("WAL record has unknown encoding version {v}"))),
        None => Err(Error::Corruption("empty WAL record".into())),
    }
}

type DenseV1 = BTreeMap<String, Vec<f32>>;

fn dense(v: DenseV1) -> grape_types::NamedVectors {
    v.into_iter().map(|(k, v)| (k, Vector::Dense(v))).collect()
}

#[derive(Deserialize)]
struct PointWriteV1 {
    id: PointId,
    vectors: DenseV1,
    #[serde(with = "json_bytes")]
    payload: Option<Payload>,
}

/// The version 1 layout of [`Operation`]: same variants in the same order.
#[derive(Deserialize)]
enum OperationV1 {
    Upsert(Vec<PointWriteV1>),
    Delete(Vec<PointId>),
    SetPayload {
        points: Vec<PointId>,
        #[serde(with = "json_bytes")]
        payload: Payload,
        key: Option<String>,
    },
    OverwritePayload {
        points: Vec<PointId>,
        #[serde(with = "json_bytes")]
        payload: Payload,
    },
    DeletePayloadKeys {
        points: Vec<PointId>,
        keys: Vec<String>,
    },
    ClearPayload {
        points: Vec<PointId>,
    },
    DeleteByFilter {
        #[serde(with = "json_bytes")]
        filter: Filter,
    },
    SetPayloadByFilter {
        #[serde(with = "json_bytes")]
        filter: Filter,
        #[serde(with = "json_bytes")]
        payload: Payload,
        key: Option<String>,
    },
    UpdateVectors {
        points: Vec<(PointId, DenseV1)>,
    },
    DeleteVectors {
        points: Vec<PointId>,
        names: Vec<String>,
    },
}

impl From<OperationV1> for Operation {
    fn from(op: OperationV1) -> Self {
        match op {
            OperationV1::Upsert(points) => Operation::Upsert(
                points
                    .into_iter()
                    .map(|p| PointWrite { id: p.id, vectors: dense(p.vectors), payload: p.payload })
                    .collect(),
            ),
            OperationV1::Delete(ids) => Operation::Delete(ids),
            OperationV1::SetPayload { points, payload, key } => {
                Operation::SetPayload { points, payload, key }
            }
            OperationV1::OverwritePayload { points, payload } => {
                Operation::OverwritePayload { points, payload }
            }
            OperationV1::DeletePayloadKeys { points, keys } => Operation::DeletePayloadKeys { points, keys },
            OperationV1::ClearPayload { points } => Operation::ClearPayload { points },
            OperationV1::DeleteByFilter { filter } => Operation::DeleteByFilter { filter },
            OperationV1::SetPayloadByFilter { filter, payload, key } => {
                Operation::SetPayloadByFilter { filter, payload, key }
            }
            OperationV1::UpdateVectors { points } => Operation::UpdateVectors {
                points: points.into_iter().map(|(id, v)| (id, dense(v))).collect(),
            },
            OperationV1::DeleteVectors { points, names } => Operation::DeleteVectors { points, names },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grape_types::SparseVector;

    /// A version 1 record, encoded with the version 1 layout (dense vectors as plain lists).
    #[test]
    fn version_1_records_still_decode() {
        #[derive(serde::Serialize)]
        struct P {
            id: PointId,
            vectors: DenseV1,
            #[serde(with = "json_bytes")]
            payload: Option<Payload>,
        }
        #[derive(serde::Serialize)]
        enum Op {
            Upsert(Vec<P>),
        }
        let payload: Payload = serde_json::from_str(r#"{"a": 1}"#).unwrap();
        let old = Op::Upsert(vec![P {
            id: PointId::Num(7),
            vectors: BTreeMap::from([(String::new(), vec![1.0, 2.0])]),
            payload: Some(payload.clone()),
        }]);
        let mut bytes = vec![DENSE_ONLY];
        bytes.extend(postcard::to_allocvec(&old).unwrap());
        let op = decode_operation(&bytes).unwrap();
        assert_eq!(
            op,
            Operation::Upsert(vec![PointWrite {
                id: PointId::Num(7),
                vectors: BTreeMap::from([(String::new(), Vector::Dense(vec![1.0, 2.0]))]),
                payload: Some(payload),
            }])
        );
    }

    #[test]
    fn current_records_round_trip() {
        let op = Operation::UpdateVectors {
            points: vec![(
                PointId::Num(1),
                BTreeMap::from([
                    ("d".to_string(), Vector::Dense(vec![0.5])),
                    ("s".to_string(), Vector::Sparse(SparseVector::new(vec![1, 9], vec![0.1, 0.2]))),
                    ("m".to_string(), Vector::Multi(vec![vec![1.0, 2.0], vec![3.0, 4.0]])),
                ]),
            )],
        };
        assert_eq!(decode_operation(&encode_operation(&op).unwrap()).unwrap(), op);
        assert!(decode_operation(&[9, 0]).is_err());
        assert!(decode_operation(&[]).is_err());
    }
}
