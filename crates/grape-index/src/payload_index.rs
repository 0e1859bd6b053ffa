//! Payload field indexes of an immutable segment: value -> sorted offsets.
//!
//! An index answers "which offsets may pass this condition" with a **superset** of the points that
//! pass it; callers still check the whole filter on every candidate. So a lookup is allowed to be loose
//! (it never decides a result on its own), but it must never leave out a passing point. A condition an
//! index cannot answer completely (say, an integer match against a keyword index) gets `None`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound as RangeBound;
use std::sync::Arc;

use grape_types::filter::{FieldCondition, GeoPoint, Match, MatchValue, Range};
use grape_types::text::Tokenizer;
use grape_types::{Payload, PayloadFieldSchema, PayloadSchemaType};
use serde_json::Value;

use crate::geo_index::GeoIndex;
use crate::text_index::TextIndex;

/// An index over one payload key of one segment.
#[derive(Debug)]
pub struct FieldIndex {
    kind: PayloadSchemaType,
    /// The declaration it was built for (a text index's tokenizer comes from its parameters).
    schema: PayloadFieldSchema,
    values: Values,
    /// Integer indexes also keep the values that are JSON integers, so an integer match is answered
    /// exactly (a float 2.0 does not match the integer 2, as in the filter check).
    ints: HashMap<i64, Vec<u32>>,
    /// Offsets with at least one indexed value, sorted.
    with_value: Vec<u32>,
}

#[derive(Debug)]
enum Values {
    /// Keyword and uuid: exact strings (uuid strings as given).
    Strings(HashMap<String, Vec<u32>>),
    /// Integer, float and datetime: every value on one ordered axis (numbers as f64, date-times as
    /// microseconds), so ranges are complete whatever the number's JSON type.
    Ordered(BTreeMap<OrdF64, Vec<u32>>),
    /// Bool: offsets of `false` and of `true`.
    Bools([Vec<u32>; 2]),
    /// Geo: points on a Z-ordered grid.
    Geo(GeoIndex),
    /// Text: tokens -> offsets.
    Text(TextIndex),
}

/// An f64 with a total order (NaN never enters: JSON numbers are finite).
#[derive(Debug, Clone, Copy)]
struct OrdF64(f64);

impl PartialEq for OrdF64 {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for OrdF64 {}

impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl FieldIndex {
    /// Builds the index of `key` over `points` (offset, payload), in any offset order.
    pub fn build<'a>(
        kind: PayloadSchemaType,
        key: &str,
        points: impl Iterator<Item = (u32, &'a Payload)>,
    ) -> Self {
        Self::build_for(&PayloadFieldSchema::Type(kind), key, points)
    }

    /// Builds the index `schema` declares for `key` over `points` (offset, payload), in any order.
    pub fn build_for<'a>(
        schema: &PayloadFieldSchema,
        key: &str,
        points: impl Iterator<Item = (u32, &'a Payload)>,
    ) -> Self {
        let kind = schema.data_type();
        match kind {
            PayloadSchemaType::Geo => return Self::build_geo(schema, key, points),
            PayloadSchemaType::Text => return Self::build_text(schema, key, points),
            _ => {}
        }
        let mut values = match kind {
            PayloadSchemaType::Keyword | PayloadSchemaType::Uuid => Values::Strings(HashMap::new()),
            PayloadSchemaType::Bool => Values::Bools([Vec::new(), Vec::new()]),
            _ => Values::Ordered(BTreeMap::new()),
        };
        let mut with_value = Vec::new();
        let mut ints: HashMap<i64, Vec<u32>> = HashMap::new();
        for (offset, payload) in points {
            let mut any = false;
            for v in grape_types::filter::leaf_values(payload, key) {
                if kind == PayloadSchemaType::Integer {
                    if let Some(i) = v.as_i64() {
                        ints.entry(i).or_default().push(offset);
                    }
                }
                let added = match (&mut values, v) {
                    (Values::Strings(m), Value::String(s)) => {
                        m.entry(s.clone()).or_default().push(offset);
                        true
                    }
                    (Values::Bools(b), Value::Bool(x)) => {
                        b[usize::from(*x)].push(offset);
                        true
                    }
                    (Values::Ordered(m), v) => match ordered_key(kind, v) {
                        Some(k) => {
                            m.entry(OrdF64(k)).or_default().push(offset);
                            true
                        }
                        None => false,
                    },
                    _ => false,
                };
                any |= added;
            }
            if any {
                with_value.push(offset);
            }
        }
        let tidy = |v: &mut Vec<u32>| {
            v.sort_unstable();
            v.dedup();
        };
        match &mut values {
            Values::Strings(m) => m.values_mut().for_each(tidy),
            Values::Ordered(m) => m.values_mut().for_each(tidy),
            Values::Bools(b) => b.iter_mut().for_each(tidy),
            Values::Geo(_) | Values::Text(_) => {}
        }
        ints.values_mut().for_each(tidy);
        tidy(&mut with_value);
        FieldIndex { kind, schema: schema.clone(), values, ints, with_value }
    }

    fn build_geo<'a>(
        schema: &PayloadFieldSchema,
        key: &str,
        points: impl Iterator<Item = (u32, &'a Payload)>,
    ) -> Self {
        let mut located = Vec::new();
        let mut with_value = Vec::new();
        for (offset, payload) in points {
            let before = located.len();
            let leaves = grape_types::filter::leaf_values(payload, key);
            located.extend(leaves.into_iter().filter_map(GeoPoint::from_value).map(|p| (offset, p)));
            if located.len() > before {
                with_value.push(offset);
            }
        }
        with_value.sort_unstable();
        let values = Values::Geo(GeoIndex::build(located.into_iter()));
        FieldIndex {
            kind: PayloadSchemaType::Geo,
            schema: schema.clone(),
            values,
            ints: HashMap::new(),
            with_value,
        }
    }

    fn build_text<'a>(
        schema: &PayloadFieldSchema,
        key: &str,
        points: impl Iterator<Item = (u32, &'a Payload)>,
    ) -> Self {
        let tokenizer = Arc::new(schema.tokenizer().unwrap_or_else(|_| Tokenizer::word()));
        let mut with_value = Vec::new();
        let texts = points.map(|(offset, payload)| {
            let strings: Vec<&str> = grape_types::filter::leaf_values(payload, key)
                .into_iter()
                .filter_map(Value::as_str)
                .collect();
            if !strings.is_empty() {
                with_value.push(offset);
            }
            (offset, strings)
        });
        let values = Values::Text(TextIndex::build(tokenizer, texts));
        with_value.sort_unstable();
        FieldIndex {
            kind: PayloadSchemaType::Text,
            schema: schema.clone(),
            values,
            ints: HashMap::new(),
            with_value,
        }
    }

    /// The declaration this index was built for.
    pub fn schema(&self) -> &PayloadFieldSchema {
        &self.schema
    }

    /// Candidates for the geo parts of a field condition (`None` when it has none or this is not a
    /// geo index): a superset, never exact.
    pub fn lookup_geo(&self, f: &FieldCondition) -> Option<Vec<u32>> {
        match &self.values {
            Values::Geo(g) => g.lookup(f),
            _ => None,
        }
    }

    pub fn kind(&self) -> PayloadSchemaType {
        self.kind
    }

    /// Offsets that have at least one indexed value.
    pub fn offsets_with_value(&self) -> &[u32] {
        &self.with_value
    }

    /// Candidates for a `match` condition, or `None` when this index cannot answer it completely.
    pub fn lookup_match(&self, m: &Match) -> Option<Vec<u32>> {
        if let Values::Text(t) = &self.values {
            return t.lookup(m);
        }
        match m {
            Match::Value { value } => self.lookup_value(value),
            Match::Any { any } => {
                let parts = any.iter().map(|v| self.lookup_value(v)).collect::<Option<Vec<_>>>()?;
                Some(union(parts))
            }
            _ => None,
        }
    }

    fn lookup_value(&self, value: &MatchValue) -> Option<Vec<u32>> {
        match (&self.values, value) {
            (Values::Strings(m), MatchValue::Keyword(s)) => Some(m.get(s).cloned().unwrap_or_default()),
            (Values::Bools(b), MatchValue::Bool(x)) => Some(b[usize::from(*x)].clone()),
            (Values::Ordered(_), MatchValue::Integer(i)) if self.kind == PayloadSchemaType::Integer => {
                Some(self.ints.get(i).cloned().unwrap_or_default())
            }
            (Values::Ordered(m), MatchValue::Integer(i)) if self.kind == PayloadSchemaType::Float => {
                Some(m.get(&OrdF64(*i as f64)).cloned().unwrap_or_default())
            }
            _ => None,
        }
    }

    /// Whether [`FieldIndex::lookup_match`] returns exactly the points that pass `m` (not a superset),
    /// so callers may skip checking the condition.
    pub fn match_is_exact(&self, m: &Match) -> bool {
        if let Values::Text(t) = &self.values {
            return t.is_exact(m);
        }
        let exact_kind = matches!(
            self.kind,
            PayloadSchemaType::Keyword
                | PayloadSchemaType::Uuid
                | PayloadSchemaType::Bool
                | PayloadSchemaType::Integer
        );
        exact_kind && matches!(m, Match::Value { .. } | Match::Any { .. })
    }

    /// Candidates for a `range` condition, or `None` when this index cannot answer it completely.
    pub fn lookup_range(&self, range: &Range) -> Option<Vec<u32>> {
        let Values::Ordered(m) = &self.values else { return None };
        // A datetime range is answered by a datetime index only, a numeric range by a numeric one.
        if range.is_datetime() != (self.kind == PayloadSchemaType::Datetime) {
            return None;
        }
        let value = |b: &Option<grape_types::filter::Bound>| b.as_ref().map(|b| b.value());
        let (lower, upper) = match (value(&range.gt), value(&range.gte), value(&range.lt), value(&range.lte))
        {
            // A bound that is not a value (an unparsable date-time) is refused by validation; answer
            // nothing rather than guess.
            (Some(None), ..) | (_, Some(None), ..) | (_, _, Some(None), _) | (.., Some(None)) => return None,
            (gt, gte, lt, lte) => {
                // Inclusive outer bounds (the tighter of gt/gte, lt/lte, loosely): exactness comes from
                // the filter check that follows.
                let lo = [gt.flatten(), gte.flatten()].into_iter().flatten().reduce(f64::max);
                let hi = [lt.flatten(), lte.flatten()].into_iter().flatten().reduce(f64::min);
                (lo, hi)
            }
        };
        let lo = lower.map_or(RangeBound::Unbounded, |x| RangeBound::Included(OrdF64(x)));
        let hi = upper.map_or(RangeBound::Unbounded, |x| RangeBound::Included(OrdF64(x)));
        if let (Some(l), Some(h)) = (lower, upper) {
            if l > h {
                return Some(Vec::new());
            }
        }
        Some(union(m.range((lo, hi)).map(|(_, v)| v.clone()).collect()))
    }

    /// The points of each distinct value a `match` answers exactly, for keyword and integer indexes
    /// (sorted offsets per value, values in no particular order); empty for other kinds. These are the
    /// groups payload-aware HNSW links are built for.
    pub fn value_groups(&self) -> Vec<&[u32]> {
        match (&self.values, self.kind) {
            (Values::Strings(m), PayloadSchemaType::Keyword) => m.values().map(Vec::as_slice).collect(),
            (_, PayloadSchemaType::Integer) => self.ints.values().map(Vec::as_slice).collect(),
            _ => Vec::new(),
        }
    }

    /// Number of distinct offsets a lookup would return, without building it (for plans).
    pub fn len(&self) -> usize {
        self.with_value.len()
    }

    pub fn is_empty(&self) -> bool {
        self.with_value.is_empty()
    }

    pub fn ram_bytes(&self) -> usize {
        let ints: usize = self.ints.values().map(|v| 48 + v.len() * 4).sum();
        let lists: usize = match &self.values {
            Values::Strings(m) => m.iter().map(|(k, v)| k.len() + 48 + v.len() * 4).sum(),
            Values::Ordered(m) => m.values().map(|v| 48 + v.len() * 4).sum(),
            Values::Bools(b) => b.iter().map(|v| v.len() * 4).sum::<usize>(),
            Values::Geo(g) => g.ram_bytes(),
            Values::Text(t) => t.ram_bytes(),
        };
        ints + lists + self.with_value.len() * 4
    }
}

/// Whether an index of `kind` holds `v` (the values [`FieldIndex::build`] indexes).
pub fn indexes_value(kind: PayloadSchemaType, v: &Value) -> bool {
    match kind {
        PayloadSchemaType::Keyword | PayloadSchemaType::Uuid => v.is_string(),
        PayloadSchemaType::Bool => v.is_boolean(),
        PayloadSchemaType::Geo => GeoPoint::from_value(v).is_some(),
        PayloadSchemaType::Text => v.is_string(),
        _ => ordered_key(kind, v).is_some(),
    }
}

/// The position of a value on the ordered axis of an integer, float or datetime index.
fn ordered_key(kind: PayloadSchemaType, v: &Value) -> Option<f64> {
    match kind {
        PayloadSchemaType::Datetime => {
            v.as_str().and_then(grape_types::filter::parse_datetime).map(|t| t as f64)
        }
        _ => v.as_f64(),
    }
}

/// Sorted, deduplicated union of sorted lists.
pub fn union(mut parts: Vec<Vec<u32>>) -> Vec<u32> {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    let total: usize = parts.iter().map(Vec::len).sum();
    let max = parts.iter().flatten().copied().max().unwrap_or(0) as usize;
    if max / 64 > total {
        let mut all: Vec<u32> = parts.into_iter().flatten().collect();
        all.sort_unstable();
        all.dedup();
        return all;
    }
    // Dense enough for a bit map over 0..=max: linear, where sorting tens of thousands of offsets per
    // query (a filter's `any` of frequent values) cost a millisecond.
    let mut words = vec![0u64; max / 64 + 1];
    for x in parts.iter().flatten() {
        words[*x as usize / 64] |= 1 << (x % 64);
    }
    let mut out = Vec::with_capacity(total);
    for (i, &word) in words.iter().enumerate() {
        let mut w = word;
        while w != 0 {
            out.push((i * 64) as u32 + w.trailing_zeros());
            w &= w - 1;
        }
    }
    out
}

/// Intersection of two sorted, deduplicated lists.
pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    small.iter().copied().filter(|x| large.binary_search(x).is_ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Both ways of `union` (bit map when dense, sort otherwise) against a BTreeSet.
    #[test]
    fn union_matches_a_set() {
        let mut state = 7u64;
        let mut next = move |n: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for round in 0..200 {
            let range = if round % 2 == 0 { 1_000 } else { 10_000_000 };
            let parts: Vec<Vec<u32>> = (0..next(5))
                .map(|_| {
                    let mut p: Vec<u32> = (0..next(300)).map(|_| next(range) as u32).collect();
                    p.sort_unstable();
                    p.dedup();
                    p
                })
                .collect();
            let expected: Vec<u32> = parts
                .iter()
                .flatten()
                .copied()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(union(parts), expected);
        }
    }

    fn payloads(values: &[Value]) -> Vec<Payload> {
        values.iter().map(|v| json!({"f": v}).as_object().cloned().unwrap()).collect()
    }

    fn build(kind: PayloadSchemaType, values: &[Value]) -> FieldIndex {
        let p = payloads(values);
        FieldIndex::build(kind, "f", p.iter().enumerate().map(|(i, p)| (i as u32, p)))
    }

    #[test]
    fn keyword_lookups_and_arrays() {
        let idx = build(PayloadSchemaType::Keyword, &[json!("a"), json!(["a", "b"]), json!(3), json!("b")]);
        let m = |v: Value| serde_json::from_value::<Match>(v).unwrap();
        assert_eq!(idx.lookup_match(&m(json!({"value": "a"}))), Some(vec![0, 1]));
        assert_eq!(idx.lookup_match(&m(json!({"any": ["b", "zzz"]}))), Some(vec![1, 3]));
        // An integer match cannot be answered by a keyword index (point 2 would be missed).
        assert_eq!(idx.lookup_match(&m(json!({"value": 3}))), None);
        assert_eq!(idx.offsets_with_value(), &[0, 1, 3]);
        assert!(indexes_value(PayloadSchemaType::Keyword, &json!("a")));
        assert!(!indexes_value(PayloadSchemaType::Keyword, &json!(3)));
    }

    #[test]
    fn ranges_are_supersets_over_ints_and_floats() {
        let idx =
            build(PayloadSchemaType::Integer, &[json!(1), json!(2.5), json!(3), json!([10, -4]), json!("x")]);
        let r = |v: Value| serde_json::from_value::<Range>(v).unwrap();
        assert_eq!(idx.lookup_range(&r(json!({"gte": 2, "lt": 3}))), Some(vec![1, 2]));
        assert_eq!(idx.lookup_range(&r(json!({"gt": 5}))), Some(vec![3]));
        assert_eq!(idx.lookup_range(&r(json!({"lt": 0}))), Some(vec![3]));
        assert_eq!(idx.lookup_range(&r(json!({"gt": 5, "lt": 1}))), Some(vec![]));
        assert_eq!(idx.lookup_range(&r(json!({"gte": "2020-01-01T00:00:00Z"}))), None);
        let m = serde_json::from_value::<Match>(json!({"value": 3})).unwrap();
        assert_eq!(idx.lookup_match(&m), Some(vec![2]));
    }

    #[test]
    fn datetime_and_bool() {
        let idx = build(
            PayloadSchemaType::Datetime,
            &[json!("2024-01-01T00:00:00Z"), json!("2024-06-01T12:00:00+02:00"), json!("not a date")],
        );
        let r = serde_json::from_value::<Range>(json!({"gt": "2024-03-01T00:00:00Z"})).unwrap();
        assert_eq!(idx.lookup_range(&r), Some(vec![1]));
        let b = build(PayloadSchemaType::Bool, &[json!(true), json!(false), json!([true, false])]);
        let m = serde_json::from_value::<Match>(json!({"value": false})).unwrap();
        assert_eq!(b.lookup_match(&m), Some(vec![1, 2]));
    }
}
