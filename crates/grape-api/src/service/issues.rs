//! Qdrant's issues report (`GET/DELETE /issues`, beta): problems the server noticed in how it is used,
//! each with a suggested fix. Grape detects Qdrant's "unindexed field": a filtered read on a collection
//! of at least [`UNINDEXED_POINTS_THRESHOLD`] points whose filter uses a payload key that no suitable
//! payload index covers, so every such read checks payloads point by point.
//!
//! The detector is a [`FilterWatch`] on the collection handles the service layer hands out for reads:
//! reads without a filter never reach it, and for a filtered read it walks the filter once and looks
//! each key up in the declared indexes; the collection's point count (a sum of per-segment counters) is
//! read only for a key not reported yet. An issue is resolved when a suitable index is declared or the
//! collection is deleted (checked again whenever the report is read), or by `DELETE /issues`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use grape::filter::{Bound, Condition, FieldCondition, Match, MatchValue};
use grape::{Collection, CountRequest, Database, Filter, PayloadSchemaType};
use grape_collection::FilterWatch;
use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Collections with fewer points are not reported: a scan of them is cheap.
pub const UNINDEXED_POINTS_THRESHOLD: usize = 10_000;

const ISSUE_TYPE: &str = "UNINDEXED_FIELD";

/// Qdrant's `IssuesReport`, the result of `GET /issues`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IssuesReport {
    pub issues: Vec<IssueRecord>,
}

/// One issue as Qdrant reports it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IssueRecord {
    /// `UNINDEXED_FIELD/<collection>/<field>`.
    pub id: String,
    pub description: String,
    pub solution: Solution,
    /// When it was first noticed (RFC 3339, UTC).
    pub timestamp: String,
    pub related_collection: Option<String>,
}

/// How to fix an issue: one action, or several to choose from (Qdrant's `Solution`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Solution {
    Immediate(ImmediateSolution),
    ImmediateChoice(Vec<ImmediateSolution>),
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ImmediateSolution {
    pub message: String,
    pub action: Action,
}

/// The HTTP request that applies a solution.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Action {
    pub method: String,
    pub uri: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<Map<String, Value>>,
}

/// A recorded issue and what resolves it.
#[derive(Debug, Clone)]
struct Entry {
    record: IssueRecord,
    collection: String,
    field: String,
    /// Index types any of which answers the conditions seen on the field.
    suitable: Vec<PayloadSchemaType>,
}

/// How long a collection's point count is reused by the detector (a count of a clustered collection
/// may ask other nodes).
const COUNT_TTL: Duration = Duration::from_secs(5);

/// The issues of one server.
#[derive(Debug, Default)]
pub struct Issues {
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Point counts by collection, with when they were taken.
    counts: Mutex<HashMap<String, (Instant, usize)>>,
}

impl Issues {
    /// The current report: issues whose collection is gone or whose field got a suitable index are
    /// dropped first.
    pub fn report(&self, db: &Database) -> IssuesReport {
        let mut entries = self.entries.lock();
        entries.retain(|_, e| match db.collection(&e.collection) {
            Ok(c) if c.name() == e.collection => !indexed(&c, &e.field, &e.suitable),
            _ => false,
        });
        IssuesReport { issues: entries.values().map(|e| e.record.clone()).collect() }
    }

    /// `DELETE /issues`.
    pub fn clear(&self) {
        self.entries.lock().clear();
    }

    /// Drops the issues of a deleted collection.
    pub fn collection_deleted(&self, name: &str) {
        self.entries.lock().retain(|_, e| e.collection != name);
        self.counts.lock().remove(name);
    }

    /// Drops the issue of `field` once it has an index.
    pub fn index_created(&self, collection: &str, field: &str) {
        self.entries.lock().remove(&issue_id(collection, field));
    }
}

impl Issues {
    /// The collection's point count, at most [`COUNT_TTL`] old.
    fn points(&self, c: &Collection) -> usize {
        if let Some(&(at, n)) = self.counts.lock().get(c.name()) {
            if at.elapsed() < COUNT_TTL {
                return n;
            }
        }
        let n = c.count(&CountRequest { exact: true, filter: None }).unwrap_or(0);
        self.counts.lock().insert(c.name().to_string(), (Instant::now(), n));
        n
    }
}

impl FilterWatch for Issues {
    fn filtered_read(&self, c: &Collection, filter: &Filter) {
        let mut needs: Vec<(String, Vec<PayloadSchemaType>)> = Vec::new();
        visit(filter, "", &mut needs);
        if needs.is_empty() {
            return;
        }
        let name = c.name();
        {
            let entries = self.entries.lock();
            needs.retain(|(key, kinds)| {
                !entries.contains_key(&issue_id(name, key)) && !indexed(c, key, kinds)
            });
        }
        if needs.is_empty() {
            return;
        }
        let points = self.points(c);
        if points < UNINDEXED_POINTS_THRESHOLD {
            return;
        }
        let timestamp = now_rfc3339();
        let mut entries = self.entries.lock();
        for (field, suitable) in needs {
            let id = issue_id(name, &field);
            entries.entry(id.clone()).or_insert_with(|| Entry {
                record: IssueRecord {
                    id,
                    description: format!(
                        "Unindexed field '{field}' might be slowing queries down in collection '{name}': \
                         filters on it check the payload of each of its {points} points"
                    ),
                    solution: solution(name, &field, &suitable),
                    timestamp: timestamp.clone(),
                    related_collection: Some(name.to_string()),
                },
                collection: name.to_string(),
                field,
                suitable,
            });
        }
    }
}

fn issue_id(collection: &str, field: &str) -> String {
    format!("{ISSUE_TYPE}/{collection}/{field}")
}

/// Whether `key` has a declared index of one of the `suitable` types.
fn indexed(c: &Collection, key: &str, suitable: &[PayloadSchemaType]) -> bool {
    c.payload_index(key).is_some_and(|schema| suitable.contains(&schema.data_type()))
}

/// Creating an index of one of the suitable types, as the request that does it.
fn solution(collection: &str, field: &str, suitable: &[PayloadSchemaType]) -> Solution {
    let encoded: String = collection
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut choices: Vec<ImmediateSolution> = suitable
        .iter()
        .filter(|kind| **kind != PayloadSchemaType::Uuid)
        .map(|kind| {
            let schema = json!(kind);
            ImmediateSolution {
                message: format!(
                    "Create a payload index of type {schema} on field '{field}' of collection \
                     '{collection}' (https://qdrant.tech/documentation/concepts/indexing/#payload-index)"
                ),
                action: Action {
                    method: "PUT".to_string(),
                    uri: format!("/collections/{encoded}/index"),
                    headers: BTreeMap::from([("content-type".to_string(), "application/json".to_string())]),
                    body: json!({ "field_name": field, "field_schema": schema }).as_object().cloned(),
                },
            }
        })
        .collect();
    if choices.len() == 1 {
        Solution::Immediate(choices.remove(0))
    } else {
        Solution::ImmediateChoice(choices)
    }
}

/// Index types Qdrant suggests when nothing narrows the choice (conditions any index answers).
const ANY_INDEX: [PayloadSchemaType; 7] = [
    PayloadSchemaType::Keyword,
    PayloadSchemaType::Integer,
    PayloadSchemaType::Float,
    PayloadSchemaType::Geo,
    PayloadSchemaType::Text,
    PayloadSchemaType::Bool,
    PayloadSchemaType::Datetime,
];

/// Collects the payload keys of `filter`'s conditions with the index types that would answer them.
/// `prefix` is the path of the enclosing `nested` conditions (`arr[].`).
fn visit(filter: &Filter, prefix: &str, out: &mut Vec<(String, Vec<PayloadSchemaType>)>) {
    let lists = [&filter.must, &filter.should, &filter.must_not];
    let conditions = lists
        .into_iter()
        .flatten()
        .flatten()
        .chain(filter.min_should.iter().flat_map(|m| m.conditions.iter()));
    for condition in conditions {
        let (key, kinds) = match condition {
            Condition::Field(field) => (&field.key, field_needs(field)),
            Condition::IsEmpty { is_empty: k } => (&k.key, ANY_INDEX.to_vec()),
            Condition::IsNull { is_null: k } => (&k.key, ANY_INDEX.to_vec()),
            Condition::Nested { nested } => {
                visit(&nested.filter, &format!("{prefix}{}[].", nested.key), out);
                continue;
            }
            Condition::Filter(inner) => {
                visit(inner, prefix, out);
                continue;
            }
            Condition::HasId { .. } | Condition::HasVector { .. } => continue,
        };
        if kinds.is_empty() {
            continue;
        }
        let full = format!("{prefix}{key}");
        match out.iter_mut().find(|(k, _)| *k == full) {
            Some((_, existing)) => {
                for kind in kinds {
                    if !existing.contains(&kind) {
                        existing.push(kind);
                    }
                }
            }
            None => out.push((full, kinds)),
        }
    }
}

/// Index types that answer a field condition (empty: the condition needs none, e.g. `any: []`).
fn field_needs(field: &FieldCondition) -> Vec<PayloadSchemaType> {
    use PayloadSchemaType as T;
    let mut kinds = Vec::new();
    let of_value = |v: &MatchValue| match v {
        MatchValue::Bool(_) => T::Bool,
        MatchValue::Integer(_) => T::Integer,
        MatchValue::Keyword(_) => T::Keyword,
    };
    match &field.r#match {
        Some(Match::Value { value }) => kinds.push(of_value(value)),
        Some(Match::Text { .. } | Match::TextAny { .. } | Match::Phrase { .. }) => kinds.push(T::Text),
        Some(Match::Any { any: values } | Match::Except { except: values }) => {
            kinds.extend(values.first().map(of_value));
        }
        None => {}
    }
    if let Some(range) = &field.range {
        let datetime = [&range.gt, &range.gte, &range.lt, &range.lte]
            .into_iter()
            .flatten()
            .any(|b| matches!(b, Bound::Datetime(_)));
        if datetime {
            kinds.push(T::Datetime);
        } else {
            kinds.extend([T::Float, T::Integer]);
        }
    }
    if field.geo_radius.is_some() || field.geo_bounding_box.is_some() || field.geo_polygon.is_some() {
        kinds.push(T::Geo);
    }
    if field.values_count.is_some() {
        kinds.extend(ANY_INDEX);
    }
    // A keyword match is also answered by a uuid index (never suggested, as in Qdrant).
    if kinds.contains(&T::Keyword) {
        kinds.push(T::Uuid);
    }
    kinds.dedup();
    kinds
}

fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    chrono::DateTime::from_timestamp(now.as_secs() as i64, now.subsec_nanos())
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(filter: Value) -> Vec<(String, Vec<PayloadSchemaType>)> {
        let filter: Filter = serde_json::from_value(filter).unwrap();
        let mut out = Vec::new();
        visit(&filter, "", &mut out);
        out
    }

    #[test]
    fn keys_and_suitable_indexes_of_a_filter() {
        use PayloadSchemaType as T;
        let out = needs(json!({
            "must": [{"key": "city", "match": {"value": "Paris"}}, {"has_id": [1]}],
            "should": [{"key": "price", "range": {"lt": 10}}],
            "must_not": [{"nested": {"key": "tags", "filter": {"must": [{"key": "n", "match": {"value": 3}}]}}}],
            "min_should": {"conditions": [{"key": "loc", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 1}}], "min_count": 1}
        }));
        assert_eq!(
            out,
            vec![
                ("city".to_string(), vec![T::Keyword, T::Uuid]),
                ("price".to_string(), vec![T::Float, T::Integer]),
                ("tags[].n".to_string(), vec![T::Integer]),
                ("loc".to_string(), vec![T::Geo]),
            ]
        );
        assert!(needs(json!({"must": [{"key": "x", "match": {"any": []}}]})).is_empty());
        assert_eq!(needs(json!({"must": [{"is_empty": {"key": "e"}}]}))[0].1.len(), ANY_INDEX.len());
    }

    #[test]
    fn one_suitable_type_is_an_immediate_solution_several_a_choice() {
        let one = serde_json::to_value(solution("my docs", "city", &[PayloadSchemaType::Keyword])).unwrap();
        let action = &one["immediate"]["action"];
        assert_eq!(action["method"], "PUT");
        assert_eq!(action["uri"], "/collections/my%20docs/index");
        assert_eq!(action["body"], json!({"field_name": "city", "field_schema": "keyword"}));
        assert_eq!(action["headers"]["content-type"], "application/json");
        let two = serde_json::to_value(solution(
            "c",
            "price",
            &[PayloadSchemaType::Float, PayloadSchemaType::Integer],
        ))
        .unwrap();
        assert_eq!(two["immediate_choice"].as_array().unwrap().len(), 2);
    }
}
