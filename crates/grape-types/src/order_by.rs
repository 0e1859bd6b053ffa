//! Ordering points by a payload value (Qdrant's `order_by` of scroll and of the Query API).
//!
//! The ordering values are numbers (integers kept as integers, others as floats) and date-times
//! (microseconds since the epoch, reported as integers, as Qdrant's datetime index reports them).
//! Integers and floats compare on one number line.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::filter::parse_datetime;

/// Ascending (Qdrant's default) or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

/// A value points are ordered by; reported as `order_value` beside each point.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum OrderValue {
    Int(i64),
    Float(f64),
}

impl OrderValue {
    /// The ordering value of one payload value: a number, or a date-time string.
    pub fn of(value: &Value) -> Option<OrderValue> {
        match value {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Some(OrderValue::Int(i)),
                None => n.as_f64().map(OrderValue::Float),
            },
            Value::String(s) => parse_datetime(s).map(OrderValue::Int),
            _ => None,
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            OrderValue::Int(i) => i as f64,
            OrderValue::Float(x) => x,
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

/// `order_by`: the payload key, the direction and the first value to return.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub key: String,
    pub direction: Direction,
    /// First value to return (inclusive): the smallest for `Asc`, the largest for `Desc`.
    pub start_from: Option<OrderValue>,
}

impl OrderBy {
    /// Ordering by `key`, ascending, from the start.
    pub fn key(key: impl Into<String>) -> Self {
        OrderBy { key: key.into(), direction: Direction::Asc, start_from: None }
    }

    /// Whether `value` is at or past `start_from` in this order's direction.
    pub fn admits(&self, value: OrderValue) -> bool {
        match (self.start_from, self.direction) {
            (None, _) => true,
            (Some(s), Direction::Asc) => value >= s,
            (Some(s), Direction::Desc) => value <= s,
        }
    }
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
        let desc =
            OrderBy { key: "k".into(), direction: Direction::Desc, start_from: Some(OrderValue::Int(5)) };
        assert!(desc.admits(OrderValue::Float(4.5)) && desc.admits(OrderValue::Int(5)));
        assert!(!desc.admits(OrderValue::Int(6)));
    }
}
