//! `filter_expr`: Grape's filter expression (a string in the syntax of `grape_types::filter_expr`)
//! accepted by REST next to every `filter` a request body takes. Qdrant clients never send it.
//!
//! The body is rewritten before it is read into its request type: an object with `filter_expr` gets
//! the parsed expression as its `filter`; when it also has a `filter`, both must hold (the new filter
//! is `{"must": [filter, expression]}`). Objects are looked for at the top of the body and under the
//! keys of [`NESTED_KEYS`] only (batch entries, prefetches, batch update operations), never inside
//! payloads, vectors or filters. The OpenAPI document marks the same objects ([`document`]).

use serde_json::{json, Map, Value};

use crate::error::ApiError;

/// The field's name.
pub(crate) const FIELD: &str = "filter_expr";

/// Keys under which a body nests more objects that may carry a filter.
const NESTED_KEYS: &[&str] = &[
    "searches",
    "prefetch",
    "operations",
    "delete",
    "set_payload",
    "overwrite_payload",
    "delete_payload",
    "clear_payload",
    "delete_vectors",
];

/// Replaces every `filter_expr` of `body` by the filter it means (see the module doc).
pub(crate) fn resolve(body: &mut Value, path: &str) -> Result<(), ApiError> {
    match body {
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve(item, &format!("{path}[{i}]"))?;
            }
        }
        Value::Object(map) => {
            if let Some(expr) = map.remove(FIELD) {
                let at = if path.is_empty() { FIELD.to_string() } else { format!("{path}.{FIELD}") };
                let parsed = parse(&expr, &at)?;
                let combined = match map.remove("filter") {
                    None | Some(Value::Null) => parsed,
                    Some(filter) => json!({"must": [filter, parsed]}),
                };
                map.insert("filter".into(), combined);
            }
            for key in NESTED_KEYS {
                if let Some(inner) = map.get_mut(*key) {
                    let inner_path =
                        if path.is_empty() { (*key).to_string() } else { format!("{path}.{key}") };
                    resolve(inner, &inner_path)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn parse(expr: &Value, at: &str) -> Result<Value, ApiError> {
    let bad = |msg: String| ApiError::bad_request(format!("Bad request: {at}: {msg}"));
    let Value::String(text) = expr else { return Err(bad(format!("expected a string, found {expr}"))) };
    let filter = grape::Filter::from_expression(text).map_err(|e| match e {
        grape::Error::BadInput(msg) => bad(msg),
        other => bad(other.to_string()),
    })?;
    serde_json::to_value(filter).map_err(|e| bad(e.to_string()))
}

/// Documents `filter_expr` in every request schema reachable from `schema` the way [`resolve`] walks
/// bodies (named schemas are changed in `schemas`).
pub(crate) fn document(schemas: &mut Map<String, Value>, schema: &Value) {
    let mut seen = Vec::new();
    document_in(schemas, schema, &mut seen);
}

fn document_in(schemas: &mut Map<String, Value>, schema: &Value, seen: &mut Vec<String>) {
    if let Some(name) = schema.get("$ref").and_then(Value::as_str).and_then(|r| r.rsplit('/').next()) {
        if seen.iter().any(|s| s == name) {
            return;
        }
        seen.push(name.to_string());
        let Some(mut named) = schemas.remove(name) else { return };
        document_here(schemas, &mut named, seen);
        schemas.insert(name.to_string(), named);
        return;
    }
    let mut copy = schema.clone();
    document_here(schemas, &mut copy, seen);
}

fn document_here(schemas: &mut Map<String, Value>, schema: &mut Value, seen: &mut Vec<String>) {
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = schema.get_mut(key) {
            for b in branches.iter_mut() {
                if b.get("$ref").is_some() {
                    document_in(schemas, b, seen);
                } else {
                    document_here(schemas, b, seen);
                }
            }
        }
    }
    if let Some(items) = schema.get_mut("items") {
        if items.get("$ref").is_some() {
            let items = items.clone();
            document_in(schemas, &items, seen);
        } else {
            document_here(schemas, items, seen);
        }
    }
    let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else { return };
    if props.contains_key("filter") && !props.contains_key(FIELD) {
        props.insert(
            FIELD.into(),
            json!({
                "description": "Grape extension: a filter expression (Grape's text syntax). With `filter` \
                                also given, a point must pass both.",
                "type": "string"
            }),
        );
    }
    for key in NESTED_KEYS {
        if let Some(inner) = props.get_mut(*key) {
            if inner.get("$ref").is_some() {
                let inner = inner.clone();
                document_in(schemas, &inner, seen);
            } else {
                document_here(schemas, inner, seen);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_become_filters_where_filters_are_read() {
        let mut body = json!({
            "filter_expr": "city = \"Paris\"",
            "prefetch": [{"filter": {"must": [{"has_id": [1]}]}, "filter_expr": "n < 3",
                          "prefetch": {"filter_expr": "ok = true"}}],
            "payload": {"filter_expr": "left alone"}
        });
        resolve(&mut body, "").unwrap();
        assert_eq!(body["filter"], json!({"must": [{"key": "city", "match": {"value": "Paris"}}]}));
        assert_eq!(
            body["prefetch"][0]["filter"],
            json!({"must": [{"must": [{"has_id": [1]}]}, {"must": [{"key": "n", "range": {"lt": 3.0}}]}]})
        );
        assert_eq!(body["prefetch"][0]["prefetch"]["filter"]["must"][0]["key"], json!("ok"));
        assert_eq!(body["payload"], json!({"filter_expr": "left alone"}));
        let mut batch = json!({"operations": [{"delete": {"filter_expr": "a = 1"}}]});
        resolve(&mut batch, "").unwrap();
        assert!(batch["operations"][0]["delete"]["filter"].is_object());
    }

    #[test]
    fn errors_say_where() {
        let mut body = json!({"searches": [{}, {"filter_expr": "a = "}]});
        let e = resolve(&mut body, "").unwrap_err();
        assert!(e.message.contains("searches[1].filter_expr: 1:5:"), "{}", e.message);
        let mut body = json!({"filter_expr": 3});
        assert!(resolve(&mut body, "").unwrap_err().message.contains("expected a string"));
    }
}
