//! Payload filters in Qdrant's JSON shape, and their evaluation against one point.
//!
//! Semantics (as Qdrant's): `must` needs every condition, `should` at least one (when not empty),
//! `must_not` none, `min_should` at least `min_count` of its conditions. A field condition holds when any
//! value found at its key holds it; keys are dotted paths where `name[]` walks into every element of an
//! array (arrays are also walked implicitly). A missing field makes a field condition false.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::collections::HashMap;
use std::sync::Arc;

mod geo;

use crate::text::{TextMatch, Tokenizer};
use crate::{Payload, PointId};
use geo::{check_point, check_ring};
pub use geo::{GeoBoundingBox, GeoLineString, GeoPoint, GeoPolygon, GeoRadius};

/// A filter: Qdrant's `Filter` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<ConditionList>"))]
    pub must: Option<Vec<Condition>>,
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<ConditionList>"))]
    pub should: Option<Vec<Condition>>,
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<ConditionList>"))]
    pub must_not: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_should: Option<MinShould>,
}

/// At least `min_count` of `conditions` must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MinShould {
    pub conditions: Vec<Condition>,
    pub min_count: usize,
}

/// Qdrant accepts a single condition where a list is expected.
#[derive(Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
enum ConditionList {
    Many(Vec<Condition>),
    One(Box<Condition>),
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<Condition>>, D::Error> {
    Ok(match Option::<ConditionList>::deserialize(d)? {
        None => None,
        Some(ConditionList::Many(v)) => Some(v),
        Some(ConditionList::One(c)) => Some(vec![*c]),
    })
}

/// One condition of a filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Condition {
    Field(Box<FieldCondition>),
    IsEmpty { is_empty: KeyRef },
    IsNull { is_null: KeyRef },
    HasId { has_id: Vec<PointId> },
    HasVector { has_vector: String },
    Nested { nested: Nested },
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeyRef {
    pub key: String,
}

/// Conditions on the elements of the array at `key`: one element must satisfy all of `filter`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Nested {
    pub key: String,
    pub filter: Filter,
}

/// A condition on the values at `key`. Exactly one of the optional parts is expected; when several are
/// given, all must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    pub key: String,
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Match>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_radius: Option<GeoRadius>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_bounding_box: Option<GeoBoundingBox>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_polygon: Option<GeoPolygon>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_count: Option<Range>,
}

/// A value to match: keyword/string, integer or bool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum MatchValue {
    Bool(bool),
    Integer(i64),
    Keyword(String),
}

impl MatchValue {
    fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (MatchValue::Bool(b), Value::Bool(x)) => b == x,
            (MatchValue::Integer(i), Value::Number(n)) => n.as_i64() == Some(*i),
            (MatchValue::Keyword(s), Value::String(x)) => s == x,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Match {
    Value {
        value: MatchValue,
    },
    /// Every token of `text` is a token of the value (see [`crate::text`]).
    Text {
        text: String,
    },
    /// At least one token of `text_any` is a token of the value.
    TextAny {
        text_any: String,
    },
    /// The tokens of `phrase` appear in the value consecutively and in order.
    Phrase {
        phrase: String,
    },
    Any {
        any: Vec<MatchValue>,
    },
    Except {
        except: Vec<MatchValue>,
    },
}

/// A range bound: a number, or a date-time (Qdrant's datetime range) given as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Bound {
    Number(f64),
    Datetime(DatetimeBound),
}

/// A date-time bound as given, parsed once when the filter is read (`micros` is `None` when the text is
/// not a date-time; `Filter::validate` reports it).
#[derive(Debug, Clone, PartialEq)]
pub struct DatetimeBound {
    pub text: String,
    micros: Option<i64>,
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for DatetimeBound {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DatetimeBound".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An RFC 3339 date-time, or a date-time or date without an offset (UTC)",
            "type": "string",
            "format": "date-time"
        })
    }
}

impl Serialize for DatetimeBound {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl DatetimeBound {
    /// A bound from its text, parsed as JSON filters parse it.
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        let micros = parse_datetime(&text);
        DatetimeBound { text, micros }
    }

    /// Whether the text is a date-time Grape understands.
    pub fn is_valid(&self) -> bool {
        self.micros.is_some()
    }
}

impl<'de> Deserialize<'de> for DatetimeBound {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let micros = parse_datetime(&text);
        Ok(DatetimeBound { text, micros })
    }
}

impl Bound {
    /// The bound on the number line: numbers as they are, date-times as microseconds since the epoch.
    pub fn value(&self) -> Option<f64> {
        match self {
            Bound::Number(x) => Some(*x),
            Bound::Datetime(t) => t.micros.map(|t| t as f64),
        }
    }
}

/// Microseconds since the Unix epoch of an RFC 3339 date-time (any offset), or of a date-time / date
/// without an offset (taken as UTC), as Qdrant accepts them.
pub fn parse_datetime(s: &str) -> Option<i64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Some(t.timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
}

/// Range bounds (`values_count` uses the same shape, with numbers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Range {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<Bound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<Bound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<Bound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<Bound>,
}

/// How a value compares with one bound.
type Comparison = fn(f64, f64) -> bool;

impl Range {
    fn bounds(&self) -> [(&Option<Bound>, Comparison); 4] {
        [
            (&self.gt, |x, b| x > b),
            (&self.gte, |x, b| x >= b),
            (&self.lt, |x, b| x < b),
            (&self.lte, |x, b| x <= b),
        ]
    }

    fn contains(&self, x: f64) -> bool {
        self.bounds()
            .iter()
            .all(|(bound, holds)| bound.as_ref().is_none_or(|b| b.value().is_some_and(|b| holds(x, b))))
    }

    pub fn is_datetime(&self) -> bool {
        self.bounds().iter().any(|(b, _)| matches!(b, Some(Bound::Datetime(_))))
    }

    /// Whether a payload value falls in the range: numbers for a numeric range, date-time strings for a
    /// datetime range.
    fn contains_value(&self, v: &Value) -> bool {
        if self.is_datetime() {
            v.as_str().and_then(parse_datetime).is_some_and(|t| self.contains(t as f64))
        } else {
            v.as_f64().is_some_and(|x| self.contains(x))
        }
    }

    fn validate(&self, key: &str, what: &str) -> Result<(), String> {
        let mut any = false;
        for (bound, _) in self.bounds() {
            match bound {
                None => {}
                Some(Bound::Number(x)) if x.is_finite() => any = true,
                Some(Bound::Number(x)) => {
                    return Err(format!("{key}: {what} bound {x} is not a finite number"))
                }
                Some(Bound::Datetime(t)) => {
                    if t.micros.is_none() {
                        return Err(format!(
                            "{key}: {what} bound {:?} is not a number or an RFC 3339 date-time",
                            t.text
                        ));
                    }
                    any = true;
                }
            }
        }
        if any {
            Ok(())
        } else {
            Err(format!("{key}: {what} needs at least one of gt, gte, lt, lte"))
        }
    }
}

/// The tokenizers of the declared text indexes, by payload key: text conditions on these keys are
/// tokenized as the index tokenizes, others by [`Tokenizer::unindexed`].
#[derive(Debug, Clone, Default)]
pub struct TextRules(HashMap<String, Arc<Tokenizer>>);

impl TextRules {
    pub fn insert(&mut self, key: String, tokenizer: Arc<Tokenizer>) {
        self.0.insert(key, tokenizer);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where a condition is checked: the text rules and, inside `nested`, the key of the array its keys
/// are relative to (a text index on `a[].b` serves `nested{key: a, filter: {key: b ..}}`).
struct Scope<'a> {
    rules: &'a TextRules,
    prefix: Option<&'a str>,
}

impl Scope<'_> {
    fn full_key(&self, key: &str) -> String {
        match self.prefix {
            Some(p) => format!("{p}[].{key}"),
            None => key.to_string(),
        }
    }

    fn tokenizer(&self, key: &str) -> &Tokenizer {
        if self.rules.is_empty() {
            return Tokenizer::unindexed();
        }
        let found = match self.prefix {
            None => self.rules.0.get(key),
            Some(_) => self.rules.0.get(&self.full_key(key)),
        };
        found.map_or(Tokenizer::unindexed(), |t| t.as_ref())
    }
}

/// What a filter is checked against: one point.
pub trait PointView {
    fn id(&self) -> PointId;
    fn payload(&self) -> Option<&Payload>;
    fn has_vector(&self, name: &str) -> bool;
}

/// Values at a dotted `key` of `payload`. Arrays along the path are walked into; `[]` after a segment
/// says so explicitly. The last value is not flattened (callers decide how arrays count).
pub fn values_at<'a>(payload: &'a Payload, key: &str) -> Vec<&'a Value> {
    let mut current: Vec<&Value> = Vec::new();
    let mut first = true;
    for segment in key.split('.') {
        // `name`, `name[]` (every element) or `name[i]` (element i).
        let (name, explicit_array, index) = match segment.strip_suffix(']').and_then(|s| s.split_once('[')) {
            Some((n, "")) => (n, true, None),
            Some((n, i)) => (n, false, i.parse::<usize>().ok()),
            None => (segment, false, None),
        };
        let mut next = Vec::new();
        let mut step = |v: &'a Value| match v {
            Value::Object(o) => next.extend(o.get(name)),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(o) = item {
                        next.extend(o.get(name));
                    }
                }
            }
            _ => {}
        };
        if first {
            next.extend(payload.get(name));
            first = false;
        } else {
            current.iter().for_each(|v| step(v));
        }
        current = if let Some(i) = index {
            next.into_iter().filter_map(|v| v.as_array().and_then(|a| a.get(i))).collect()
        } else if explicit_array {
            next.into_iter()
                .flat_map(|v| if let Value::Array(a) = v { a.iter().collect() } else { vec![v] })
                .collect()
        } else {
            next
        };
    }
    current
}

/// The values a field condition looks at: arrays contribute their elements.
pub fn leaf_values<'a>(payload: &'a Payload, key: &str) -> Vec<&'a Value> {
    values_at(payload, key)
        .into_iter()
        .flat_map(|v| if let Value::Array(a) = v { a.iter().collect() } else { vec![v] })
        .collect()
}

impl Filter {
    /// Combines a parent's filter with a child's (a Query API prefetch inherits its parent's filter):
    /// clause lists are concatenated clause by clause, as Qdrant merges them, so the `should`
    /// conditions of both become alternatives of one `should`; `min_should` lists are joined and keep
    /// the larger count.
    pub fn merge(outer: Option<&Filter>, inner: Option<&Filter>) -> Option<Filter> {
        let (outer, inner) = match (outer, inner) {
            (None, None) => return None,
            (Some(f), None) | (None, Some(f)) => return Some(f.clone()),
            (Some(o), Some(i)) => (o, i),
        };
        let join = |a: &Option<Vec<Condition>>, b: &Option<Vec<Condition>>| match (a, b) {
            (None, None) => None,
            _ => Some(a.iter().chain(b.iter()).flatten().cloned().collect()),
        };
        let min_should = match (&outer.min_should, &inner.min_should) {
            (None, None) => None,
            (Some(m), None) | (None, Some(m)) => Some(m.clone()),
            (Some(a), Some(b)) => Some(MinShould {
                conditions: a.conditions.iter().chain(&b.conditions).cloned().collect(),
                min_count: a.min_count.max(b.min_count),
            }),
        };
        Some(Filter {
            must: join(&outer.must, &inner.must),
            should: join(&outer.should, &inner.should),
            must_not: join(&outer.must_not, &inner.must_not),
            min_should,
        })
    }

    /// Checks what serde cannot: every field condition says something, ranges have a bound, geo values
    /// are on the globe, polygons are closed rings. The message names the key.
    pub fn validate(&self) -> crate::Result<()> {
        self.check_shape().map_err(|e| crate::Error::bad_input(format!("filter: {e}")))
    }

    fn check_shape(&self) -> Result<(), String> {
        let all = self.must.iter().chain(&self.should).chain(&self.must_not).flatten();
        let min = self.min_should.iter().flat_map(|m| &m.conditions);
        all.chain(min).try_for_each(Condition::check_shape)
    }

    /// The top-level payload keys this filter reads (a point's other keys need not be decoded).
    pub fn payload_keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        self.collect_keys(&mut keys);
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    fn collect_keys<'a>(&'a self, keys: &mut Vec<&'a str>) {
        let top = |key: &'a str| key.split(['.', '[']).next().unwrap_or(key);
        let all = self.must.iter().chain(&self.should).chain(&self.must_not).flatten();
        for c in all.chain(self.min_should.iter().flat_map(|m| &m.conditions)) {
            match c {
                Condition::Field(f) => keys.push(top(&f.key)),
                Condition::IsEmpty { is_empty: k } | Condition::IsNull { is_null: k } => {
                    keys.push(top(&k.key))
                }
                Condition::Nested { nested } => keys.push(top(&nested.key)),
                Condition::Filter(f) => f.collect_keys(keys),
                Condition::HasId { .. } | Condition::HasVector { .. } => {}
            }
        }
    }

    /// Whether some condition, at any depth, is a text match (`text`, `text_any`, `phrase`).
    pub fn has_text_conditions(&self) -> bool {
        let all = self.must.iter().chain(&self.should).chain(&self.must_not).flatten();
        all.chain(self.min_should.iter().flat_map(|m| &m.conditions)).any(|c| match c {
            Condition::Field(f) => {
                matches!(f.r#match, Some(Match::Text { .. } | Match::TextAny { .. } | Match::Phrase { .. }))
            }
            Condition::Nested { nested } => nested.filter.has_text_conditions(),
            Condition::Filter(f) => f.has_text_conditions(),
            _ => false,
        })
    }

    /// Whether `point` passes this filter, with text conditions tokenized as on fields without a text
    /// index.
    pub fn check(&self, point: &dyn PointView) -> bool {
        self.check_in(point, &TextRules::default())
    }

    /// Whether `point` passes this filter, text conditions on the keys of `rules` tokenized by their
    /// text indexes.
    pub fn check_in(&self, point: &dyn PointView, rules: &TextRules) -> bool {
        let empty = Payload::new();
        let payload = point.payload().unwrap_or(&empty);
        self.check_with(point, payload, &Scope { rules, prefix: None })
    }

    fn check_with(&self, point: &dyn PointView, payload: &Payload, scope: &Scope<'_>) -> bool {
        let holds = |c: &Condition| c.check(point, payload, scope);
        self.must.iter().flatten().all(holds)
            && self.should.as_ref().is_none_or(|s| s.is_empty() || s.iter().any(holds))
            && !self.must_not.iter().flatten().any(holds)
            && self
                .min_should
                .as_ref()
                .is_none_or(|m| m.conditions.iter().filter(|c| holds(c)).count() >= m.min_count)
    }
}

impl Condition {
    fn check_shape(&self) -> Result<(), String> {
        match self {
            Condition::Field(f) => f.check_shape(),
            Condition::Nested { nested } => nested.filter.check_shape(),
            Condition::Filter(f) => f.check_shape(),
            _ => Ok(()),
        }
    }

    fn check(&self, point: &dyn PointView, payload: &Payload, scope: &Scope<'_>) -> bool {
        match self {
            Condition::Field(f) => f.check(payload, scope),
            Condition::IsEmpty { is_empty } => {
                let values = values_at(payload, &is_empty.key);
                values.iter().all(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty))
            }
            Condition::IsNull { is_null } => values_at(payload, &is_null.key).iter().any(|v| v.is_null()),
            Condition::HasId { has_id } => has_id.contains(&point.id()),
            Condition::HasVector { has_vector } => point.has_vector(has_vector),
            Condition::Nested { nested } => values_at(payload, &nested.key)
                .into_iter()
                .flat_map(|v| if let Value::Array(a) = v { a.iter().collect() } else { vec![v] })
                .any(|element| {
                    let full;
                    let inner = if scope.rules.is_empty() {
                        Scope { rules: scope.rules, prefix: None }
                    } else {
                        full = scope.full_key(&nested.key);
                        Scope { rules: scope.rules, prefix: Some(&full) }
                    };
                    element.as_object().is_some_and(|o| nested.filter.check_with(point, o, &inner))
                }),
            Condition::Filter(f) => f.check_with(point, payload, scope),
        }
    }
}

impl FieldCondition {
    fn check_shape(&self) -> Result<(), String> {
        let key = &self.key;
        if self.r#match.is_none()
            && self.range.is_none()
            && self.geo_radius.is_none()
            && self.geo_bounding_box.is_none()
            && self.geo_polygon.is_none()
            && self.values_count.is_none()
        {
            return Err(format!("{key}: a field condition needs match, range, geo_* or values_count"));
        }
        if let Some(r) = &self.range {
            r.validate(key, "range")?;
        }
        if let Some(r) = &self.values_count {
            r.validate(key, "values_count")?;
        }
        if let Some(g) = &self.geo_radius {
            check_point(key, &g.center)?;
            if !(g.radius.is_finite() && g.radius >= 0.0) {
                return Err(format!("{key}: radius must be a non-negative number of metres"));
            }
        }
        if let Some(b) = &self.geo_bounding_box {
            check_point(key, &b.top_left)?;
            check_point(key, &b.bottom_right)?;
        }
        if let Some(p) = &self.geo_polygon {
            check_ring(key, &p.exterior)?;
            p.interiors.iter().flatten().try_for_each(|r| check_ring(key, r))?;
        }
        Ok(())
    }

    fn check(&self, payload: &Payload, scope: &Scope<'_>) -> bool {
        let values = leaf_values(payload, &self.key);
        let any = |f: &dyn Fn(&Value) -> bool| values.iter().any(|v| f(v));
        let text = |how: TextMatch, query: &str| {
            let tokenizer = scope.tokenizer(&self.key);
            let query = tokenizer.query(query);
            !query.is_empty()
                && any(&|v| {
                    v.as_str().is_some_and(|s| crate::text::tokens_match(how, &query, &tokenizer.document(s)))
                })
        };
        self.r#match.as_ref().is_none_or(|m| match m {
            Match::Value { value } => any(&|v| value.matches(v)),
            Match::Text { text: q } => text(TextMatch::All, q),
            Match::TextAny { text_any } => text(TextMatch::Any, text_any),
            Match::Phrase { phrase } => text(TextMatch::Phrase, phrase),
            Match::Any { any: options } => any(&|v| options.iter().any(|o| o.matches(v))),
            // Qdrant: a point passes `except` when some value is none of the listed ones.
            Match::Except { except } => any(&|v| !v.is_null() && !except.iter().any(|o| o.matches(v))),
        }) && self.range.as_ref().is_none_or(|r| any(&|v| r.contains_value(v)))
            && self.geo_radius.as_ref().is_none_or(|g| {
                any(&|v| GeoPoint::from_value(v).is_some_and(|p| p.distance_m(&g.center) <= g.radius))
            })
            && self
                .geo_bounding_box
                .as_ref()
                .is_none_or(|b| any(&|v| GeoPoint::from_value(v).is_some_and(|p| b.contains(&p))))
            && self
                .geo_polygon
                .as_ref()
                .is_none_or(|g| any(&|v| GeoPoint::from_value(v).is_some_and(|p| g.contains(&p))))
            && self.values_count.as_ref().is_none_or(|r| {
                let n: usize = values_at(payload, &self.key)
                    .iter()
                    .map(|v| match v {
                        Value::Array(a) => a.len(),
                        Value::Null => 0,
                        _ => 1,
                    })
                    .sum();
                r.contains(n as f64)
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct P(u64, Value);

    impl PointView for P {
        fn id(&self) -> PointId {
            PointId::Num(self.0)
        }
        fn payload(&self) -> Option<&Payload> {
            self.1.as_object()
        }
        fn has_vector(&self, name: &str) -> bool {
            name.is_empty()
        }
    }

    fn f(v: Value) -> Filter {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn qdrant_semantics() {
        let paris = P(
            1,
            json!({"city": "Paris", "n": 5, "tags": ["a", "b"], "loc": {"lon": 2.35, "lat": 48.86},
                   "country": {"cities": [{"name": "Lyon", "pop": 500}, {"name": "Nice", "pop": 340}]},
                   "empty": [], "nul": null}),
        );
        let yes = |v: Value| assert!(f(v.clone()).check(&paris), "{v}");
        let no = |v: Value| assert!(!f(v.clone()).check(&paris), "{v}");
        yes(json!({"must": [{"key": "city", "match": {"value": "Paris"}}]}));
        yes(json!({"must": {"key": "city", "match": {"value": "Paris"}}}));
        no(json!({"must": [{"key": "city", "match": {"value": "Rome"}}]}));
        yes(json!({"must": [{"key": "tags", "match": {"value": "b"}}]}));
        yes(json!({"must": [{"key": "n", "match": {"any": [4, 5]}}]}));
        no(json!({"must": [{"key": "n", "match": {"except": [5]}}]}));
        yes(json!({"must": [{"key": "tags", "match": {"except": ["a"]}}]}));
        yes(json!({"must": [{"key": "n", "range": {"gt": 4, "lte": 5}}]}));
        no(json!({"must": [{"key": "n", "range": {"gt": 5}}]}));
        // A missing field fails a field condition, so must_not of it passes.
        no(json!({"must": [{"key": "missing", "range": {"gte": 0}}]}));
        yes(json!({"must_not": [{"key": "missing", "match": {"value": 1}}]}));
        yes(json!({"should": [{"key": "city", "match": {"value": "Rome"}}, {"has_id": [1]}]}));
        no(json!({"should": [{"key": "city", "match": {"value": "Rome"}}, {"has_id": [2]}]}));
        yes(json!({"min_should": {"conditions": [{"has_id": [1]}, {"key": "n", "match": {"value": 5}},
                   {"has_id": [3]}], "min_count": 2}}));
        no(json!({"min_should": {"conditions": [{"has_id": [1]}, {"has_id": [3]}], "min_count": 2}}));
        yes(
            json!({"must": [{"is_empty": {"key": "empty"}}, {"is_empty": {"key": "missing"}}, {"is_null": {"key": "nul"}}]}),
        );
        no(json!({"must": [{"is_empty": {"key": "tags"}}]}));
        yes(json!({"must": [{"key": "country.cities[].name", "match": {"value": "Nice"}}]}));
        yes(json!({"must": [{"key": "country.cities.pop", "range": {"gt": 400}}]}));
        // Nested: one element must satisfy the whole inner filter.
        no(json!({"must": [{"nested": {"key": "country.cities", "filter": {"must": [
            {"key": "name", "match": {"value": "Nice"}}, {"key": "pop", "range": {"gt": 400}}]}}}]}));
        yes(json!({"must": [{"nested": {"key": "country.cities", "filter": {"must": [
            {"key": "name", "match": {"value": "Lyon"}}, {"key": "pop", "range": {"gt": 400}}]}}}]}));
        yes(json!({"must": [{"key": "tags", "values_count": {"gte": 2}}]}));
        // Text conditions compare tokens (lowercased words), never substrings.
        yes(json!({"must": [{"key": "city", "match": {"text": "PARIS"}}]}));
        no(json!({"must": [{"key": "city", "match": {"text": "ari"}}]}));
        yes(json!({"must": [{"key": "city", "match": {"text_any": "rome paris"}}]}));
        no(json!({"must": [{"key": "city", "match": {"phrase": "rome paris"}}]}));
        yes(
            json!({"must": [{"key": "loc", "geo_radius": {"center": {"lon": 2.29, "lat": 48.86}, "radius": 5000.0}}]}),
        );
        no(
            json!({"must": [{"key": "loc", "geo_radius": {"center": {"lon": 2.29, "lat": 48.86}, "radius": 3000.0}}]}),
        );
        yes(json!({"must": [{"key": "loc", "geo_bounding_box": {"top_left": {"lon": 2.0, "lat": 49.0},
            "bottom_right": {"lon": 3.0, "lat": 48.0}}}]}));
        yes(
            json!({"must": [{"key": "loc", "geo_polygon": {"exterior": {"points": [{"lon": 2.0, "lat": 48.0},
            {"lon": 3.0, "lat": 48.0}, {"lon": 3.0, "lat": 49.0}, {"lon": 2.0, "lat": 49.0}]}}}]}),
        );
        no(json!({"must": [{"key": "loc", "geo_polygon": {"exterior": {"points": [{"lon": 2.0, "lat": 48.0},
            {"lon": 3.0, "lat": 48.0}, {"lon": 3.0, "lat": 49.0}, {"lon": 2.0, "lat": 49.0}]},
            "interiors": [{"points": [{"lon": 2.3, "lat": 48.8}, {"lon": 2.4, "lat": 48.8},
            {"lon": 2.4, "lat": 48.9}, {"lon": 2.3, "lat": 48.9}]}]}}]}));
        yes(json!({"must": [{"has_vector": ""}], "must_not": [{"must": [{"has_id": [2]}]}]}));
        yes(json!({"must": [{"key": "tags[1]", "match": {"value": "b"}}]}));
        no(json!({"must": [{"key": "tags[0]", "match": {"value": "b"}}]}));
        yes(json!({"must": [{"key": "country.cities[0].name", "match": {"value": "Lyon"}}]}));
    }

    #[test]
    fn payload_keys_are_the_top_level_names_read() {
        let filter = f(json!({"must": [{"key": "a.b", "match": {"value": 1}}, {"has_id": [1]}],
            "should": [{"must_not": [{"is_null": {"key": "c[0]"}}]}, {"nested": {"key": "d[].e", "filter": {}}}],
            "min_should": {"conditions": [{"key": "a", "values_count": {"gt": 1}}], "min_count": 1}}));
        assert_eq!(filter.payload_keys(), vec!["a", "c", "d"]);
    }

    #[test]
    fn datetime_ranges() {
        let p = P(1, json!({"at": "2023-02-08T10:49:00+01:00", "day": "2023-02-08"}));
        let yes = |v: Value| assert!(f(v.clone()).check(&p), "{v}");
        let no = |v: Value| assert!(!f(v.clone()).check(&p), "{v}");
        // 10:49+01:00 is 09:49Z.
        yes(
            json!({"must": [{"key": "at", "range": {"gt": "2023-02-08T09:48:59Z", "lt": "2023-02-08T09:49:01Z"}}]}),
        );
        no(json!({"must": [{"key": "at", "range": {"gt": "2023-02-08T10:00:00Z"}}]}));
        yes(json!({"must": [{"key": "at", "range": {"gte": "2023-02-08 09:49:00"}}]}));
        yes(json!({"must": [{"key": "day", "range": {"gte": "2023-02-08", "lt": "2023-02-08T00:00:01Z"}}]}));
        assert!(parse_datetime("not a date").is_none());
    }

    #[test]
    fn validation_names_the_problem() {
        for (bad, says) in [
            (json!({"must": [{"key": "a", "range": {}}]}), "needs at least one"),
            (json!({"must": [{"key": "a", "range": {"gt": "yesterday"}}]}), "RFC 3339"),
            (json!({"must": [{"key": "a"}]}), "needs match"),
            (
                json!({"must": [{"key": "g", "geo_radius": {"center": {"lon": 200.0, "lat": 0.0}, "radius": 1.0}}]}),
                "lon/lat",
            ),
            (
                json!({"should": [{"key": "g", "geo_polygon": {"exterior": {"points": [{"lon": 0.0, "lat": 0.0},
                {"lon": 1.0, "lat": 0.0}, {"lon": 1.0, "lat": 1.0}]}}}]}),
                "ring",
            ),
            (
                json!({"must": [{"nested": {"key": "n", "filter": {"must": [{"key": "x", "values_count": {}}]}}}]}),
                "values_count",
            ),
        ] {
            let err = f(bad.clone()).validate().unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn malformed_filters_are_rejected() {
        for bad in [
            json!({"must": [{"key": "a", "match": {"value": 1}, "extra": 1}]}),
            json!({"must": [{"key": "a", "range": {"gt": [1]}}]}),
            json!({"mustt": []}),
        ] {
            assert!(serde_json::from_value::<Filter>(bad.clone()).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod model_tests;
