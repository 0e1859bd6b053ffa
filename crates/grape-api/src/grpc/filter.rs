//! Proto filters -> the engine's [`Filter`]. The proto is first written as Qdrant's JSON filter (the
//! shape the REST API accepts), which the engine's `Filter` reads: one definition of what a filter
//! means, shared by both front ends.

use grape::Filter;
use grape_proto::qdrant as pb;
use serde_json::{json, Map, Value};
use tonic::Status;

use super::convert::point_id_json;
use super::{invalid, unsupported};

/// A request's filter; an empty proto filter (all lists empty) is no filter.
pub(super) fn filter(f: Option<pb::Filter>) -> Result<Option<Filter>, Status> {
    let Some(f) = f else { return Ok(None) };
    if f.must.is_empty() && f.should.is_empty() && f.must_not.is_empty() && f.min_should.is_none() {
        return Ok(None);
    }
    let json = filter_json(f)?;
    serde_json::from_value(json).map(Some).map_err(|e| invalid(format!("filter: {e}")))
}

fn filter_json(f: pb::Filter) -> Result<Value, Status> {
    let mut out = Map::new();
    for (name, conditions) in [("must", f.must), ("should", f.should), ("must_not", f.must_not)] {
        if !conditions.is_empty() {
            out.insert(name.to_owned(), conditions_json(conditions)?);
        }
    }
    if let Some(m) = f.min_should {
        out.insert(
            "min_should".to_owned(),
            json!({"conditions": conditions_json(m.conditions)?, "min_count": m.min_count}),
        );
    }
    Ok(Value::Object(out))
}

fn conditions_json(conditions: Vec<pb::Condition>) -> Result<Value, Status> {
    conditions.into_iter().map(condition_json).collect::<Result<Vec<_>, _>>().map(Value::Array)
}

fn condition_json(c: pb::Condition) -> Result<Value, Status> {
    use pb::condition::ConditionOneOf as C;
    Ok(match c.condition_one_of.ok_or_else(|| invalid("filter: empty condition"))? {
        C::Field(f) => field_json(f)?,
        C::IsEmpty(c) => json!({"is_empty": {"key": c.key}}),
        C::IsNull(c) => json!({"is_null": {"key": c.key}}),
        C::HasId(c) => {
            let ids = c.has_id.into_iter().map(point_id_json).collect::<Result<Vec<_>, _>>()?;
            json!({"has_id": ids})
        }
        C::Filter(f) => filter_json(f)?,
        C::Nested(n) => {
            let inner = filter_json(n.filter.unwrap_or_default())?;
            json!({"nested": {"key": n.key, "filter": inner}})
        }
        C::HasVector(c) => json!({"has_vector": c.has_vector}),
        C::Slice(_) => return Err(unsupported("filter condition `slice`")),
    })
}

/// A field condition; several parts set at once must all hold (as one `must` group).
fn field_json(f: pb::FieldCondition) -> Result<Value, Status> {
    let key = f.key;
    let mut parts = Vec::new();
    if let Some(m) = f.r#match {
        parts.push(json!({"key": key, "match": match_json(m)?}));
    }
    if let Some(r) = f.range {
        let range = bounds(
            r.gt.map(Value::from),
            r.gte.map(Value::from),
            r.lt.map(Value::from),
            r.lte.map(Value::from),
        );
        parts.push(json!({"key": key, "range": range}));
    }
    if let Some(r) = f.datetime_range {
        let range = bounds(
            r.gt.map(timestamp).transpose()?,
            r.gte.map(timestamp).transpose()?,
            r.lt.map(timestamp).transpose()?,
            r.lte.map(timestamp).transpose()?,
        );
        parts.push(json!({"key": key, "range": range}));
    }
    if let Some(b) = f.geo_bounding_box {
        let (tl, br) = (b.top_left.unwrap_or_default(), b.bottom_right.unwrap_or_default());
        parts.push(json!({"key": key, "geo_bounding_box": {
            "top_left": {"lon": tl.lon, "lat": tl.lat},
            "bottom_right": {"lon": br.lon, "lat": br.lat},
        }}));
    }
    if let Some(r) = f.geo_radius {
        let c = r.center.unwrap_or_default();
        parts.push(
            json!({"key": key, "geo_radius": {"center": {"lon": c.lon, "lat": c.lat}, "radius": r.radius}}),
        );
    }
    if let Some(p) = f.geo_polygon {
        let line = |l: pb::GeoLineString| json!({"points": l.points.iter().map(|p| json!({"lon": p.lon, "lat": p.lat})).collect::<Vec<_>>()});
        let interiors: Vec<Value> = p.interiors.into_iter().map(line).collect();
        parts.push(json!({"key": key, "geo_polygon": {
            "exterior": line(p.exterior.unwrap_or_default()),
            "interiors": interiors,
        }}));
    }
    if let Some(v) = f.values_count {
        let range = bounds(
            v.gt.map(Value::from),
            v.gte.map(Value::from),
            v.lt.map(Value::from),
            v.lte.map(Value::from),
        );
        parts.push(json!({"key": key, "values_count": range}));
    }
    if let Some(empty) = f.is_empty {
        let c = json!({"is_empty": {"key": key}});
        parts.push(if empty { c } else { json!({"must_not": [c]}) });
    }
    if let Some(null) = f.is_null {
        let c = json!({"is_null": {"key": key}});
        parts.push(if null { c } else { json!({"must_not": [c]}) });
    }
    match parts.len() {
        0 => Err(invalid(format!("filter: field condition on `{key}` has no condition"))),
        1 => Ok(parts.remove(0)),
        _ => Ok(json!({"must": parts})),
    }
}

fn bounds(gt: Option<Value>, gte: Option<Value>, lt: Option<Value>, lte: Option<Value>) -> Value {
    let mut m = Map::new();
    for (name, v) in [("gt", gt), ("gte", gte), ("lt", lt), ("lte", lte)] {
        if let Some(v) = v {
            m.insert(name.to_owned(), v);
        }
    }
    Value::Object(m)
}

/// A protobuf timestamp as the RFC 3339 text a JSON datetime range carries.
fn timestamp(t: prost_types::Timestamp) -> Result<Value, Status> {
    let nanos = u32::try_from(t.nanos).map_err(|_| invalid("datetime_range: negative nanos"))?;
    chrono::DateTime::from_timestamp(t.seconds, nanos)
        .map(|d| Value::String(d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
        .ok_or_else(|| invalid("datetime_range: timestamp out of range"))
}

fn match_json(m: pb::Match) -> Result<Value, Status> {
    use pb::r#match::MatchValue as M;
    Ok(match m.match_value.ok_or_else(|| invalid("filter: empty match"))? {
        M::Keyword(s) => json!({"value": s}),
        M::Integer(i) => json!({"value": i}),
        M::Boolean(b) => json!({"value": b}),
        M::Text(t) => json!({"text": t}),
        M::Keywords(k) => json!({"any": k.strings}),
        M::Integers(i) => json!({"any": i.integers}),
        M::ExceptIntegers(i) => json!({"except": i.integers}),
        M::ExceptKeywords(k) => json!({"except": k.strings}),
        M::Phrase(p) => json!({"phrase": p}),
        M::TextAny(t) => json!({"text_any": t}),
        M::Prefix(_) => return Err(unsupported("match `prefix`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(key: &str, m: pb::r#match::MatchValue) -> pb::Condition {
        pb::Condition {
            condition_one_of: Some(pb::condition::ConditionOneOf::Field(pb::FieldCondition {
                key: key.into(),
                r#match: Some(pb::Match { match_value: Some(m) }),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn proto_filter_reads_as_the_json_filter() {
        let f = pb::Filter {
            must: vec![field("city", pb::r#match::MatchValue::Keyword("Paris".into()))],
            must_not: vec![pb::Condition {
                condition_one_of: Some(pb::condition::ConditionOneOf::Field(pb::FieldCondition {
                    key: "price".into(),
                    range: Some(pb::Range { gte: Some(100.0), ..Default::default() }),
                    ..Default::default()
                })),
            }],
            ..Default::default()
        };
        let expected: Filter = serde_json::from_value(json!({
            "must": [{"key": "city", "match": {"value": "Paris"}}],
            "must_not": [{"key": "price", "range": {"gte": 100.0}}],
        }))
        .unwrap();
        assert_eq!(filter(Some(f)).unwrap(), Some(expected));
        assert_eq!(filter(Some(pb::Filter::default())).unwrap(), None);
    }

    #[test]
    fn unbuilt_match_kinds_are_refused_by_name() {
        let f = pb::Filter {
            must: vec![field("t", pb::r#match::MatchValue::Prefix("ab".into()))],
            ..Default::default()
        };
        let e = filter(Some(f)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("prefix"), "{}", e.message());
        let f = pb::Filter {
            must: vec![
                field("t", pb::r#match::MatchValue::Phrase("a b".into())),
                field("t", pb::r#match::MatchValue::TextAny("c d".into())),
            ],
            ..Default::default()
        };
        let expected: Filter = serde_json::from_value(json!({"must": [
            {"key": "t", "match": {"phrase": "a b"}}, {"key": "t", "match": {"text_any": "c d"}}]}))
        .unwrap();
        assert_eq!(filter(Some(f)).unwrap(), Some(expected));
    }

    #[test]
    fn datetime_bounds_become_rfc3339() {
        let v = timestamp(prost_types::Timestamp { seconds: 0, nanos: 0 }).unwrap();
        assert_eq!(v, json!("1970-01-01T00:00:00Z"));
    }
}
