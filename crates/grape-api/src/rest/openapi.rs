//! The OpenAPI 3.1 document of what Grape serves, generated from the route table ([`super::routes`]) and
//! the JSON Schemas of the wire types (schemars reads their serde attributes: untagged, rename, default,
//! flatten), and served at `GET /openapi.json`.
//!
//! Request schemas follow the types' deserialize contract (a field with a default is optional), response
//! schemas their serialize contract (a field skipped when empty is optional). Every JSON answer is
//! wrapped in Qdrant's envelope `{result, status, time}`; errors are `{status: {error}, time}`.

use axum::http::Method;
use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// Makes the schema of one type with a generator (which collects the named types it refers to).
pub(crate) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn reference<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

fn inline<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    T::json_schema(g)
}

/// A request body.
#[derive(Clone, Copy)]
pub(crate) enum RequestBody {
    None,
    Json(SchemaFn),
    /// `multipart/form-data` with a `snapshot` file field.
    SnapshotUpload,
}

/// What a successful call answers.
#[derive(Clone, Copy)]
pub(crate) enum Reply {
    /// JSON wrapped in Qdrant's envelope.
    Envelope(SchemaFn),
    /// JSON as it is (`GET /`, this document).
    Json(SchemaFn),
    /// Plain text (probes, Prometheus metrics).
    Text,
    /// A file (snapshot downloads).
    File,
}

/// How one operation is described.
#[derive(Clone, Copy)]
pub(crate) struct Operation {
    pub id: &'static str,
    pub tag: &'static str,
    /// A struct whose fields are the query parameters.
    pub query: Option<SchemaFn>,
    pub body: RequestBody,
    pub reply: Reply,
    /// Answers without an API key.
    pub public: bool,
    /// May answer 202 `{"result": null, "status": "accepted"}` (`?wait=false`).
    pub accepted: bool,
}

impl Operation {
    pub fn new(tag: &'static str, id: &'static str) -> Self {
        Operation {
            id,
            tag,
            query: None,
            body: RequestBody::None,
            reply: Reply::Envelope(reference::<bool>),
            public: false,
            accepted: false,
        }
    }

    pub fn query<T: JsonSchema>(mut self) -> Self {
        self.query = Some(inline::<T>);
        self
    }

    pub fn body<T: JsonSchema>(mut self) -> Self {
        self.body = RequestBody::Json(reference::<T>);
        self
    }

    pub fn upload(mut self) -> Self {
        self.body = RequestBody::SnapshotUpload;
        self
    }

    /// The `result` of the envelope.
    pub fn reply<T: JsonSchema>(mut self) -> Self {
        self.reply = Reply::Envelope(reference::<T>);
        self
    }

    pub fn raw_json<T: JsonSchema>(mut self) -> Self {
        self.reply = Reply::Json(reference::<T>);
        self
    }

    pub fn text(mut self) -> Self {
        self.reply = Reply::Text;
        self
    }

    pub fn file(mut self) -> Self {
        self.reply = Reply::File;
        self
    }

    pub fn public(mut self) -> Self {
        self.public = true;
        self
    }

    pub fn accepted(mut self) -> Self {
        self.accepted = true;
        self
    }
}

const COMPONENTS: &str = "/components/schemas";

fn generator(contract: Contract) -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = COMPONENTS.into();
            s.meta_schema = None;
            s.contract = contract;
        })
        .into_generator()
}

/// Removes `null` from a schema (an `Option` query parameter is absent, never null).
fn non_null(mut schema: Value) -> Value {
    if let Some(obj) = schema.as_object_mut() {
        if obj.get("default") == Some(&Value::Null) {
            obj.remove("default");
        }
        if let Some(Value::Array(types)) = obj.get_mut("type") {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                let only = types.remove(0);
                obj.insert("type".into(), only);
            }
        }
        if let Some(Value::Array(any)) = obj.get_mut("anyOf") {
            any.retain(|s| s.get("type").is_none_or(|t| t != "null"));
            if any.len() == 1 {
                return any.remove(0);
            }
        }
    }
    schema
}

fn path_parameters(path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else { break };
        let name = &rest[start + 1..start + len];
        let schema = if name == "id" {
            json!({ "$ref": format!("#{COMPONENTS}/ExtendedPointId") })
        } else {
            json!({ "type": "string" })
        };
        out.push(json!({ "name": name, "in": "path", "required": true, "schema": schema }));
        rest = &rest[start + len + 1..];
    }
    out
}

fn query_parameters(g: &mut SchemaGenerator, query: SchemaFn) -> Vec<Value> {
    let schema = query(g).to_value();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
    props
        .iter()
        .map(|(name, s)| {
            json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": non_null(s.clone()),
            })
        })
        .collect()
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn envelope(result: Value) -> Value {
    json!({
        "type": "object",
        "required": ["result", "status", "time"],
        "properties": {
            "result": result,
            "status": { "type": "string", "enum": ["ok"] },
            "time": { "type": "number", "description": "Seconds spent on the request" }
        }
    })
}

fn error_body() -> Value {
    json!({
        "type": "object",
        "required": ["status", "time"],
        "properties": {
            "status": {
                "type": "object",
                "required": ["error"],
                "properties": { "error": { "type": "string" } }
            },
            "time": { "type": "number" }
        }
    })
}

fn operation(req: &mut SchemaGenerator, resp: &mut SchemaGenerator, path: &str, op: &Operation) -> Value {
    let mut parameters = path_parameters(path);
    if let Some(query) = op.query {
        parameters.extend(query_parameters(req, query));
    }
    let error = json!({
        "description": "Qdrant's error body",
        "content": json_content(json!({ "$ref": format!("#{COMPONENTS}/ErrorResponse") }))
    });
    let ok = match op.reply {
        Reply::Envelope(f) => json!({
            "description": "Success, in Qdrant's envelope",
            "content": json_content(envelope(f(resp).to_value()))
        }),
        Reply::Json(f) => json!({ "description": "Success", "content": json_content(f(resp).to_value()) }),
        Reply::Text => json!({
            "description": "Success",
            "content": { "text/plain": { "schema": { "type": "string" } } }
        }),
        Reply::File => json!({
            "description": "The file",
            "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } }
        }),
    };
    let mut responses = Map::new();
    responses.insert("200".into(), ok);
    if op.accepted {
        let accepted = json!({
            "type": "object",
            "required": ["result", "status", "time"],
            "properties": {
                "result": { "type": "null" },
                "status": { "type": "string", "enum": ["accepted"] },
                "time": { "type": "number" }
            }
        });
        responses.insert(
            "202".into(),
            json!({ "description": "Accepted, running in the background", "content": json_content(accepted) }),
        );
    }
    if !matches!(op.reply, Reply::Text) {
        responses.insert("4XX".into(), error);
    }
    let mut out = json!({
        "operationId": op.id,
        "tags": [op.tag],
        "parameters": parameters,
        "responses": responses,
    });
    match op.body {
        RequestBody::None => {}
        RequestBody::Json(f) => {
            out["requestBody"] = json!({ "required": true, "content": json_content(f(req).to_value()) });
        }
        RequestBody::SnapshotUpload => {
            out["requestBody"] = json!({
                "required": true,
                "content": { "multipart/form-data": { "schema": {
                    "type": "object",
                    "required": ["snapshot"],
                    "properties": { "snapshot": { "type": "string", "format": "binary" } }
                } } }
            });
        }
    }
    if op.public {
        out["security"] = json!([]);
    }
    out
}

/// Points `$ref`s to `from` at `to` instead.
fn rename_refs(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(s) if k == "$ref" && s == from => *s = to.to_string(),
                    _ => rename_refs(v, from, to),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, from, to)),
        _ => {}
    }
}

/// The document for a route table of (method, path, operation).
pub(crate) fn document<'a>(routes: impl IntoIterator<Item = (&'a Method, &'a str, &'a Operation)>) -> Value {
    let mut req = generator(Contract::Deserialize);
    let mut resp = generator(Contract::Serialize);
    let mut paths = Map::new();
    for (method, path, op) in routes {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method.as_str().to_ascii_lowercase()] = operation(&mut req, &mut resp, path, op);
    }
    let mut paths = Value::Object(paths);
    // A type named on both sides whose two contracts differ gets a second name for its output form.
    let mut schemas = req.take_definitions(true);
    // Grape's `filter_expr` next to the filters of request bodies.
    for (_, methods) in paths.as_object().into_iter().flatten() {
        for (_, op) in methods.as_object().into_iter().flatten() {
            if let Some(body) = op.pointer("/requestBody/content/application~1json/schema") {
                super::filter_expr::document(&mut schemas, body);
            }
        }
    }
    let mut outputs = resp.take_definitions(true);
    // Renaming changes the schemas that refer to a renamed one, which may make them clash in turn.
    loop {
        let clashes: Vec<String> = outputs
            .iter()
            .filter(|(name, schema)| schemas.get(*name).is_some_and(|s| s != *schema))
            .map(|(name, _)| name.clone())
            .collect();
        if clashes.is_empty() {
            break;
        }
        for name in clashes {
            let (from, to) = (format!("#{COMPONENTS}/{name}"), format!("#{COMPONENTS}/{name}Output"));
            let Some(schema) = outputs.remove(&name) else { continue };
            outputs.insert(format!("{name}Output"), schema);
            for s in outputs.values_mut() {
                rename_refs(s, &from, &to);
            }
            for (_, methods) in paths.as_object_mut().into_iter().flatten() {
                for (_, op) in methods.as_object_mut().into_iter().flatten() {
                    if let Some(responses) = op.get_mut("responses") {
                        rename_refs(responses, &from, &to);
                    }
                }
            }
        }
    }
    schemas.extend(outputs);
    schemas.insert("ErrorResponse".into(), error_body());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Grape",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "Qdrant's REST API (version {}) as Grape serves it. Qdrant endpoints not listed here answer \
                 501 (not built yet) or 404.",
                crate::QDRANT_API_VERSION
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "api-key": { "type": "apiKey", "in": "header", "name": "api-key" },
                "bearer": { "type": "http", "scheme": "bearer" }
            }
        },
        // With keys configured, one of them; without, none.
        "security": [{ "api-key": [] }, { "bearer": [] }, {}],
    })
}
