//! Write requests beyond upsert, delete and the payload RPCs: vector updates and deletions, the
//! operations of a batch update, and payload index declarations, as the service layer's requests.

use grape::{PayloadFieldSchema, PayloadSchemaParams, PayloadSchemaType, ShardKeySelector};
use grape_proto::qdrant as pb;
use serde_json::{Map, Value};
use tonic::Status;

use super::convert::{map_to_payload, point, point_id, point_ids, shard_keys, vectors};
use super::filter::filter;
use super::{invalid, unsupported};
use crate::service::{PointsSelector, UpdateOperation};

pub(super) fn selector(s: Option<pb::PointsSelector>) -> Result<PointsSelector, Status> {
    use pb::points_selector::PointsSelectorOneOf as S;
    match s.and_then(|s| s.points_selector_one_of) {
        Some(S::Points(ids)) => Ok(PointsSelector::Ids(point_ids(ids.ids)?)),
        Some(S::Filter(f)) => Ok(PointsSelector::Filter(filter(Some(f))?.unwrap_or_default())),
        None => Err(invalid("points selector: one of points or filter is required")),
    }
}

fn no_update_filter(f: &Option<pb::Filter>) -> Result<(), Status> {
    match f {
        Some(_) => Err(unsupported("update_filter (conditional update)")),
        None => Ok(()),
    }
}

pub(super) fn update_vectors(
    points: Vec<pb::PointVectors>,
    update_filter: &Option<pb::Filter>,
) -> Result<UpdateOperation, Status> {
    no_update_filter(update_filter)?;
    let points = points
        .into_iter()
        .map(|p| {
            let id = point_id(p.id.ok_or_else(|| invalid("PointVectors: id is required"))?)?;
            if p.vectors.is_none() {
                return Err(invalid("PointVectors: vectors are required"));
            }
            Ok((id, vectors(p.vectors)?))
        })
        .collect::<Result<Vec<_>, Status>>()?;
    Ok(UpdateOperation::UpdateVectors(points))
}

pub(super) fn delete_vectors(
    points: Option<pb::PointsSelector>,
    names: Option<pb::VectorsSelector>,
) -> Result<UpdateOperation, Status> {
    let names = names.ok_or_else(|| invalid("vectors: the names of the vectors to delete are required"))?;
    Ok(UpdateOperation::DeleteVectors { selector: selector(points)?, names: names.names })
}

/// One operation of `UpdateBatch`, with the shard keys it goes to.
pub(super) fn batch_operation(
    op: pb::PointsUpdateOperation,
) -> Result<(UpdateOperation, Option<ShardKeySelector>), Status> {
    use pb::points_update_operation::Operation as O;
    Ok(match op.operation.ok_or_else(|| invalid("operations: each operation needs one of its kinds"))? {
        O::Upsert(u) => {
            no_update_filter(&u.update_filter)?;
            if u.update_mode.is_some_and(|m| m != pb::UpdateMode::Upsert as i32) {
                return Err(unsupported("update_mode other than Upsert"));
            }
            let points = u.points.into_iter().map(point).collect::<Result<_, _>>()?;
            (UpdateOperation::Upsert(points), shard_keys(u.shard_key_selector)?)
        }
        O::DeleteDeprecated(s) => (UpdateOperation::Delete(selector(Some(s))?), None),
        O::DeletePoints(d) => {
            (UpdateOperation::Delete(selector(d.points)?), shard_keys(d.shard_key_selector)?)
        }
        O::SetPayload(p) => {
            let op = UpdateOperation::SetPayload {
                selector: selector(p.points_selector)?,
                payload: map_to_payload(p.payload)?,
                key: p.key,
            };
            (op, shard_keys(p.shard_key_selector)?)
        }
        O::OverwritePayload(p) => {
            if p.key.is_some() {
                return Err(unsupported("key with overwrite_payload"));
            }
            let op = UpdateOperation::OverwritePayload {
                selector: selector(p.points_selector)?,
                payload: map_to_payload(p.payload)?,
            };
            (op, shard_keys(p.shard_key_selector)?)
        }
        O::DeletePayload(p) => {
            let op = UpdateOperation::DeletePayload { selector: selector(p.points_selector)?, keys: p.keys };
            (op, shard_keys(p.shard_key_selector)?)
        }
        O::ClearPayloadDeprecated(s) => (UpdateOperation::ClearPayload(selector(Some(s))?), None),
        O::ClearPayload(c) => {
            (UpdateOperation::ClearPayload(selector(c.points)?), shard_keys(c.shard_key_selector)?)
        }
        O::UpdateVectors(u) => {
            (update_vectors(u.points, &u.update_filter)?, shard_keys(u.shard_key_selector)?)
        }
        O::DeleteVectors(d) => {
            (delete_vectors(d.points_selector, d.vectors)?, shard_keys(d.shard_key_selector)?)
        }
    })
}

// ---- payload indexes ----

fn schema_type(t: i32) -> Result<PayloadSchemaType, Status> {
    use pb::FieldType as F;
    Ok(match F::try_from(t) {
        Ok(F::Keyword) => PayloadSchemaType::Keyword,
        Ok(F::Integer) => PayloadSchemaType::Integer,
        Ok(F::Float) => PayloadSchemaType::Float,
        Ok(F::Geo) => PayloadSchemaType::Geo,
        Ok(F::Text) => PayloadSchemaType::Text,
        Ok(F::Bool) => PayloadSchemaType::Bool,
        Ok(F::Datetime) => PayloadSchemaType::Datetime,
        Ok(F::Uuid) => PayloadSchemaType::Uuid,
        Err(_) => return Err(invalid(format!("field_type: unknown value {t}"))),
    })
}

fn no_memory(memory: Option<i32>) -> Result<(), Status> {
    match memory {
        None => Ok(()),
        Some(m) if m == pb::Memory::Unknown as i32 => Ok(()),
        Some(_) => Err(unsupported("field_index_params memory (storage tier)")),
    }
}

/// Index options in the JSON form collection info reports (only the ones the request set).
fn options(pairs: &[(&str, Option<bool>)]) -> Map<String, Value> {
    pairs.iter().filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), Value::Bool(v)))).collect()
}

fn index_params(p: pb::PayloadIndexParams) -> Result<(PayloadSchemaType, Map<String, Value>), Status> {
    use pb::payload_index_params::IndexParams as P;
    Ok(match p.index_params.ok_or_else(|| invalid("field_index_params: the index kind is required"))? {
        P::KeywordIndexParams(k) => {
            no_memory(k.memory)?;
            if k.prefix.is_some() {
                return Err(unsupported("keyword index prefix"));
            }
            let o = options(&[
                ("is_tenant", k.is_tenant),
                ("on_disk", k.on_disk),
                ("enable_hnsw", k.enable_hnsw),
            ]);
            (PayloadSchemaType::Keyword, o)
        }
        P::IntegerIndexParams(i) => {
            no_memory(i.memory)?;
            let o = options(&[
                ("lookup", i.lookup),
                ("range", i.range),
                ("is_principal", i.is_principal),
                ("on_disk", i.on_disk),
                ("enable_hnsw", i.enable_hnsw),
            ]);
            (PayloadSchemaType::Integer, o)
        }
        P::FloatIndexParams(f) => {
            no_memory(f.memory)?;
            let o = options(&[
                ("is_principal", f.is_principal),
                ("on_disk", f.on_disk),
                ("enable_hnsw", f.enable_hnsw),
            ]);
            (PayloadSchemaType::Float, o)
        }
        P::BoolIndexParams(b) => {
            no_memory(b.memory)?;
            (PayloadSchemaType::Bool, options(&[("on_disk", b.on_disk), ("enable_hnsw", b.enable_hnsw)]))
        }
        P::DatetimeIndexParams(d) => {
            no_memory(d.memory)?;
            let o = options(&[
                ("is_principal", d.is_principal),
                ("on_disk", d.on_disk),
                ("enable_hnsw", d.enable_hnsw),
            ]);
            (PayloadSchemaType::Datetime, o)
        }
        P::UuidIndexParams(u) => {
            no_memory(u.memory)?;
            let o = options(&[
                ("is_tenant", u.is_tenant),
                ("on_disk", u.on_disk),
                ("enable_hnsw", u.enable_hnsw),
            ]);
            (PayloadSchemaType::Uuid, o)
        }
        P::TextIndexParams(_) => return Err(unsupported("text payload index")),
        P::GeoIndexParams(_) => return Err(unsupported("geo payload index")),
    })
}

/// The parameters collection info reports for an index (`{"type", options...}` as created) as the proto
/// message of its kind; `None` for kinds without one in Grape.
pub(super) fn index_params_out(params: &Value) -> Option<pb::PayloadIndexParams> {
    use pb::payload_index_params::IndexParams as P;
    let flag = |k: &str| params.get(k).and_then(Value::as_bool);
    let index = match params.get("type").and_then(Value::as_str)? {
        "keyword" => P::KeywordIndexParams(pb::KeywordIndexParams {
            is_tenant: flag("is_tenant"),
            on_disk: flag("on_disk"),
            enable_hnsw: flag("enable_hnsw"),
            ..Default::default()
        }),
        "integer" => P::IntegerIndexParams(pb::IntegerIndexParams {
            lookup: flag("lookup"),
            range: flag("range"),
            is_principal: flag("is_principal"),
            on_disk: flag("on_disk"),
            enable_hnsw: flag("enable_hnsw"),
            memory: None,
        }),
        "float" => P::FloatIndexParams(pb::FloatIndexParams {
            on_disk: flag("on_disk"),
            is_principal: flag("is_principal"),
            enable_hnsw: flag("enable_hnsw"),
            memory: None,
        }),
        "bool" => P::BoolIndexParams(pb::BoolIndexParams {
            on_disk: flag("on_disk"),
            enable_hnsw: flag("enable_hnsw"),
            memory: None,
        }),
        "datetime" => P::DatetimeIndexParams(pb::DatetimeIndexParams {
            on_disk: flag("on_disk"),
            is_principal: flag("is_principal"),
            enable_hnsw: flag("enable_hnsw"),
            memory: None,
        }),
        "uuid" => P::UuidIndexParams(pb::UuidIndexParams {
            is_tenant: flag("is_tenant"),
            on_disk: flag("on_disk"),
            enable_hnsw: flag("enable_hnsw"),
            memory: None,
        }),
        _ => return None,
    };
    Some(pb::PayloadIndexParams { index_params: Some(index) })
}

/// `CreateFieldIndex`'s type and parameters as the engine's schema. The type is required (Grape does
/// not infer it); parameters must be of the same kind.
pub(super) fn field_schema(
    field_type: Option<i32>,
    params: Option<pb::PayloadIndexParams>,
) -> Result<PayloadFieldSchema, Status> {
    let kind = field_type
        .map(schema_type)
        .transpose()?
        .ok_or_else(|| invalid("field_type is required (Grape does not infer the index type)"))?;
    let Some(params) = params else { return Ok(PayloadFieldSchema::Type(kind)) };
    let (params_kind, options) = index_params(params)?;
    if params_kind != kind {
        return Err(invalid(format!(
            "field_index_params: {params_kind:?} parameters do not fit a {kind:?} index"
        )));
    }
    Ok(PayloadFieldSchema::Params(PayloadSchemaParams { kind, options }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_schemas() {
        let keyword = pb::FieldType::Keyword as i32;
        assert_eq!(
            field_schema(Some(keyword), None).unwrap(),
            PayloadFieldSchema::Type(PayloadSchemaType::Keyword)
        );
        let tenant = pb::PayloadIndexParams {
            index_params: Some(pb::payload_index_params::IndexParams::KeywordIndexParams(
                pb::KeywordIndexParams { is_tenant: Some(true), ..Default::default() },
            )),
        };
        let PayloadFieldSchema::Params(p) = field_schema(Some(keyword), Some(tenant.clone())).unwrap() else {
            panic!("expected parameters")
        };
        assert_eq!(p.options.get("is_tenant"), Some(&Value::Bool(true)));
        assert_eq!(p.options.len(), 1);
        // Reported back as it was given.
        let reported = serde_json::to_value(&p).unwrap();
        assert_eq!(index_params_out(&reported), Some(tenant.clone()));
        let mismatch = field_schema(Some(pb::FieldType::Integer as i32), Some(tenant));
        assert_eq!(mismatch.unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(field_schema(None, None).unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(field_schema(Some(99), None).unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn batch_operations() {
        let ids = pb::PointsSelector {
            points_selector_one_of: Some(pb::points_selector::PointsSelectorOneOf::Points(
                pb::PointsIdsList {
                    ids: vec![pb::PointId { point_id_options: Some(pb::point_id::PointIdOptions::Num(3)) }],
                },
            )),
        };
        let op = pb::PointsUpdateOperation {
            operation: Some(pb::points_update_operation::Operation::DeleteVectors(
                pb::points_update_operation::DeleteVectors {
                    points_selector: Some(ids),
                    vectors: Some(pb::VectorsSelector { names: vec!["a".into()] }),
                    shard_key_selector: None,
                },
            )),
        };
        assert_eq!(
            batch_operation(op).unwrap(),
            (
                UpdateOperation::DeleteVectors {
                    selector: PointsSelector::Ids(vec![grape::PointId::Num(3)]),
                    names: vec!["a".into()]
                },
                None
            )
        );
        let empty = batch_operation(pb::PointsUpdateOperation { operation: None });
        assert_eq!(empty.unwrap_err().code(), tonic::Code::InvalidArgument);
    }
}
