//! Scroll ordered by a payload value (Qdrant's scroll `order_by`).
//!
//! Qdrant reads the order from a range index on the key; Grape scans the points passing the filter
//! and sorts, so no index is needed. The ordering values are numbers (integers as integers, others as
//! floats) and date-times (microseconds since the epoch, reported as integers, as Qdrant's datetime
//! index does); points with no such value at the key are skipped. As in Qdrant, a point with several
//! values appears once per distinct value that is past `start_from`, and there is no next page offset
//! (page on with `start_from`). Ties go by point id, in the direction of the order.

use std::cmp::Ordering;
use std::collections::HashMap;

use grape::filter::parse_datetime;
use grape::{Collection, Filter, PointId, Record, Result, ScrollRequest, WithPayload, WithVector};
use serde::Serialize;

use crate::error::ApiError;
use crate::Service;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

/// A value points are ordered by.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum OrderValue {
    Int(i64),
    Float(f64),
}

impl OrderValue {
    /// The ordering value of one payload value, if it has one.
    fn of(value: &serde_json::Value) -> Option<OrderValue> {
        match value {
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Some(OrderValue::Int(i)),
                None => n.as_f64().map(OrderValue::Float),
            },
            serde_json::Value::String(s) => parse_datetime(s).map(OrderValue::Int),
            _ => None,
        }
    }
}

impl PartialEq for OrderValue {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for OrderValue {}

impl PartialOrd for OrderValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderValue {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (OrderValue::Int(a), OrderValue::Int(b)) => a.cmp(b),
            (a, b) => a.as_f64().total_cmp(&b.as_f64()),
        }
    }
}

impl OrderValue {
    fn as_f64(self) -> f64 {
        match self {
            OrderValue::Int(i) => i as f64,
            OrderValue::Float(x) => x,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub key: String,
    pub direction: Direction,
    /// First value to return (inclusive): the smallest for `Asc`, the largest for `Desc`.
    pub start_from: Option<OrderValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderedScroll {
    pub order_by: OrderBy,
    pub limit: usize,
    pub filter: Option<Filter>,
    pub with_payload: WithPayload,
    pub with_vector: WithVector,
}

impl Service {
    /// Scrolls one collection in the order of a payload value.
    pub async fn scroll_ordered(
        &self,
        collection: String,
        req: OrderedScroll,
    ) -> Result<Vec<(Record, OrderValue)>, ApiError> {
        self.with_collection(collection, move |_, c| scroll_ordered(c, &req)).await
    }
}

const PAGE: usize = 1024;

pub fn scroll_ordered(c: &Collection, req: &OrderedScroll) -> Result<Vec<(Record, OrderValue)>> {
    if req.limit == 0 {
        return Err(grape::Error::bad_input("limit: must be at least 1"));
    }
    let order = &req.order_by;
    let top_key = order.key.split(['.', '[']).next().unwrap_or(&order.key).to_string();
    let mut scroll = ScrollRequest {
        offset: None,
        limit: PAGE,
        with_payload: WithPayload::Include(vec![top_key]),
        with_vector: WithVector::Enable(false),
        filter: req.filter.clone(),
    };
    let mut entries: Vec<(OrderValue, PointId)> = Vec::new();
    loop {
        let page = c.scroll(&scroll)?;
        for record in &page.points {
            let Some(payload) = &record.payload else { continue };
            let mut values: Vec<OrderValue> = grape::filter::leaf_values(payload, &order.key)
                .into_iter()
                .filter_map(OrderValue::of)
                .filter(|v| match (order.start_from, order.direction) {
                    (None, _) => true,
                    (Some(s), Direction::Asc) => *v >= s,
                    (Some(s), Direction::Desc) => *v <= s,
                })
                .collect();
            values.sort_unstable();
            values.dedup();
            entries.extend(values.into_iter().map(|v| (v, record.id)));
        }
        match page.next_page_offset {
            Some(next) => scroll.offset = Some(next),
            None => break,
        }
    }
    match order.direction {
        Direction::Asc => entries.sort_unstable(),
        Direction::Desc => entries.sort_unstable_by(|a, b| b.cmp(a)),
    }
    entries.truncate(req.limit);
    let mut ids: Vec<PointId> = entries.iter().map(|e| e.1).collect();
    ids.sort_unstable();
    ids.dedup();
    let records: HashMap<PointId, Record> =
        c.retrieve(&ids, &req.with_payload, &req.with_vector)?.into_iter().map(|r| (r.id, r)).collect();
    // A point deleted since the scan is left out.
    Ok(entries.into_iter().filter_map(|(v, id)| Some((records.get(&id)?.clone(), v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ordering_values() {
        assert_eq!(OrderValue::of(&json!(3)), Some(OrderValue::Int(3)));
        assert_eq!(OrderValue::of(&json!(2.5)), Some(OrderValue::Float(2.5)));
        assert_eq!(OrderValue::of(&json!("x")), None);
        assert_eq!(OrderValue::of(&json!(true)), None);
        assert_eq!(OrderValue::of(&json!("1970-01-01T00:00:01Z")), Some(OrderValue::Int(1_000_000)));
        assert!(OrderValue::Int(2) < OrderValue::Float(2.5));
        assert!(OrderValue::Float(-1.0) < OrderValue::Int(0));
        assert_eq!(OrderValue::Int(2), OrderValue::Float(2.0));
        assert_eq!(serde_json::to_string(&OrderValue::Float(2.5)).unwrap(), "2.5");
    }
}
