//! Write requests beyond upsert, delete and the payload RPCs: vector updates and deletions, the
//! operations of a batch update, and payload index declarations, as the service layer's requests.

use grape::{PayloadFieldSchema, PayloadSchemaParams, PayloadSchemaType, ShardKeySelector};
use grape_proto::qdrant as pb;
use serde_json::{json, Map, Value};
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
        P::GeoIndexParams(g) => {
            no_memory(g.memory)?;
            (PayloadSchemaType::Geo, options(&[("on_disk", g.on_disk), ("enable_hnsw", g.enable_hnsw)]))
        }
        P::TextIndexParams(t) => {
            no_memory(t.memory)?;
            (PayloadSchemaType::Text, text_options(t)?)
        }
    })
}

/// A text index's parameters in Qdrant's JSON form (what REST takes and collection info reports).
fn text_options(t: pb::TextIndexParams) -> Result<Map<String, Value>, Status> {
    use pb::stemming_algorithm::StemmingParams as S;
    let tokenizer = match pb::TokenizerType::try_from(t.tokenizer) {
        Ok(pb::TokenizerType::Prefix) => "prefix",
        Ok(pb::TokenizerType::Whitespace) => "whitespace",
        Ok(pb::TokenizerType::Word | pb::TokenizerType::Unknown) => "word",
        Ok(pb::TokenizerType::Multilingual) => "multilingual",
        Err(_) => return Err(invalid(format!("text_index_params.tokenizer: unknown value {}", t.tokenizer))),
    };
    let mut o = Map::new();
    o.insert("tokenizer".into(), json!(tokenizer));
    let numbers = [("min_token_len", t.min_token_len), ("max_token_len", t.max_token_len)];
    o.extend(numbers.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), json!(v)))));
    o.extend(options(&[
        ("lowercase", t.lowercase),
        ("ascii_folding", t.ascii_folding),
        ("phrase_matching", t.phrase_matching),
        ("on_disk", t.on_disk),
        ("enable_hnsw", t.enable_hnsw),
    ]));
    if let Some(sw) = t.stopwords {
        o.insert("stopwords".into(), json!({"languages": sw.languages, "custom": sw.custom}));
    }
    match t.stemmer.and_then(|s| s.stemming_params) {
        Some(S::Snowball(p)) => {
            drop(o.insert("stemmer".into(), json!({"type": "snowball", "language": p.language})))
        }
        Some(S::Disabled(_)) => drop(o.insert("stemmer".into(), json!({"type": "none"}))),
        None => {}
    }
    Ok(o)
}

/// The proto form of a text index's JSON parameters (as validated when the index was declared).
fn text_params_out(params: &Value) -> pb::TextIndexParams {
    use pb::stemming_algorithm::StemmingParams as S;
    let flag = |k: &str| params.get(k).and_then(Value::as_bool);
    let number = |k: &str| params.get(k).and_then(Value::as_u64);
    let tokenizer = match params.get("tokenizer").and_then(Value::as_str) {
        Some("prefix") => pb::TokenizerType::Prefix,
        Some("whitespace") => pb::TokenizerType::Whitespace,
        Some("multilingual") => pb::TokenizerType::Multilingual,
        _ => pb::TokenizerType::Word,
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect()
    };
    let stopwords = params.get("stopwords").map(|s| match s {
        Value::String(language) => pb::StopwordsSet { languages: vec![language.clone()], custom: Vec::new() },
        set => {
            pb::StopwordsSet { languages: strings(set.get("languages")), custom: strings(set.get("custom")) }
        }
    });
    let stemmer = params.get("stemmer").map(|s| pb::StemmingAlgorithm {
        stemming_params: Some(match s.get("language").and_then(Value::as_str) {
            Some(language) => S::Snowball(pb::SnowballParams { language: language.to_string() }),
            None => S::Disabled(pb::DisabledStemmer {}),
        }),
    });
    pb::TextIndexParams {
        tokenizer: tokenizer as i32,
        lowercase: flag("lowercase"),
        min_token_len: number("min_token_len"),
        max_token_len: number("max_token_len"),
        on_disk: flag("on_disk"),
        stopwords,
        phrase_matching: flag("phrase_matching"),
        stemmer,
        ascii_folding: flag("ascii_folding"),
        enable_hnsw: flag("enable_hnsw"),
        memory: None,
    }
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
        "geo" => P::GeoIndexParams(pb::GeoIndexParams {
            on_disk: flag("on_disk"),
            enable_hnsw: flag("enable_hnsw"),
            memory: None,
        }),
        "text" => P::TextIndexParams(text_params_out(params)),
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
    fn text_and_geo_params_round_trip() {
        use pb::payload_index_params::IndexParams as P;
        use pb::stemming_algorithm::StemmingParams as S;
        let text = pb::PayloadIndexParams {
            index_params: Some(P::TextIndexParams(pb::TextIndexParams {
                tokenizer: pb::TokenizerType::Prefix as i32,
                min_token_len: Some(2),
                phrase_matching: Some(true),
                stopwords: Some(pb::StopwordsSet {
                    languages: vec!["english".into()],
                    custom: vec!["x".into()],
                }),
                stemmer: Some(pb::StemmingAlgorithm {
                    stemming_params: Some(S::Snowball(pb::SnowballParams { language: "english".into() })),
                }),
                ..Default::default()
            })),
        };
        let schema = field_schema(Some(pb::FieldType::Text as i32), Some(text.clone())).unwrap();
        schema.validate("t").unwrap();
        let params = serde_json::to_value(schema.params().unwrap()).unwrap();
        assert_eq!(
            params,
            json!({"type": "text", "tokenizer": "prefix", "min_token_len": 2, "phrase_matching": true,
                   "stopwords": {"languages": ["english"], "custom": ["x"]},
                   "stemmer": {"type": "snowball", "language": "english"}})
        );
        assert_eq!(index_params_out(&params), Some(text));
        let geo =
            pb::PayloadIndexParams { index_params: Some(P::GeoIndexParams(pb::GeoIndexParams::default())) };
        let schema = field_schema(Some(pb::FieldType::Geo as i32), Some(geo)).unwrap();
        assert_eq!(schema.data_type(), PayloadSchemaType::Geo);
        let mismatch =
            pb::PayloadIndexParams { index_params: Some(P::TextIndexParams(pb::TextIndexParams::default())) };
        assert!(field_schema(Some(pb::FieldType::Keyword as i32), Some(mismatch)).is_err());
    }

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
