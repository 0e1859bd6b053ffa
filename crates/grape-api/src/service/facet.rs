//! Facet counts (Qdrant's `/facet`): how many points hold each value at a payload key.
//!
//! Qdrant answers from a payload index on the key; Grape counts exactly by scanning the points that
//! pass the filter, so no index is needed (and `exact` makes no difference). A keyword, integer or
//! bool value counts; a point holding a value several times (an array) counts once for it. Hits are
//! ordered by count, descending, then by value (keywords, then integers, then bools, each ascending),
//! as Qdrant orders them.

use std::collections::HashMap;

use grape::{Collection, Filter, Result, ScrollRequest, WithPayload, WithVector};
use serde::Serialize;

use crate::error::ApiError;
use crate::Service;

/// A counted payload value. The variant order is the order of values with equal counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum FacetValue {
    Keyword(String),
    Int(i64),
    Bool(bool),
}

impl FacetValue {
    fn of(value: &serde_json::Value) -> Option<FacetValue> {
        match value {
            serde_json::Value::String(s) => Some(FacetValue::Keyword(s.clone())),
            serde_json::Value::Number(n) => n.as_i64().map(FacetValue::Int),
            serde_json::Value::Bool(b) => Some(FacetValue::Bool(*b)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FacetHit {
    pub value: FacetValue,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FacetQuery {
    pub key: String,
    pub filter: Option<Filter>,
    pub limit: usize,
    /// The shard keys counted (custom sharding; `None`: every shard).
    pub shard_key: Option<grape::ShardKeySelector>,
}

impl Service {
    /// Counts points per value of a payload key in one collection.
    pub async fn facet(&self, collection: String, req: FacetQuery) -> Result<Vec<FacetHit>, ApiError> {
        let keys = req.shard_key.clone();
        self.with_shards(collection, keys, move |_, c| facet(c, &req)).await
    }
}

const PAGE: usize = 1024;

pub fn facet(c: &Collection, req: &FacetQuery) -> Result<Vec<FacetHit>> {
    if req.limit == 0 {
        return Err(grape::Error::bad_input("limit: must be at least 1"));
    }
    let top_key = req.key.split(['.', '[']).next().unwrap_or(&req.key).to_string();
    let mut scroll = ScrollRequest {
        offset: None,
        limit: PAGE,
        with_payload: WithPayload::Include(vec![top_key]),
        with_vector: WithVector::Enable(false),
        filter: req.filter.clone(),
    };
    let mut counts: HashMap<FacetValue, usize> = HashMap::new();
    loop {
        let page = c.scroll(&scroll)?;
        for record in &page.points {
            let Some(payload) = &record.payload else { continue };
            let mut values: Vec<FacetValue> = grape::filter::leaf_values(payload, &req.key)
                .into_iter()
                .filter_map(FacetValue::of)
                .collect();
            values.sort_unstable();
            values.dedup();
            for v in values {
                *counts.entry(v).or_default() += 1;
            }
        }
        match page.next_page_offset {
            Some(next) => scroll.offset = Some(next),
            None => break,
        }
    }
    Ok(top_hits(counts, req.limit))
}

/// The `limit` most frequent values, by count descending then value ascending.
fn top_hits(counts: HashMap<FacetValue, usize>, limit: usize) -> Vec<FacetHit> {
    let mut hits: Vec<FacetHit> =
        counts.into_iter().map(|(value, count)| FacetHit { value, count }).collect();
    hits.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    hits.truncate(limit);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_count_then_value() {
        let counts = HashMap::from([
            (FacetValue::Bool(true), 3),
            (FacetValue::Int(2), 3),
            (FacetValue::Keyword("b".into()), 3),
            (FacetValue::Keyword("a".into()), 3),
            (FacetValue::Int(-1), 5),
            (FacetValue::Keyword("z".into()), 1),
        ]);
        let got: Vec<(FacetValue, usize)> =
            top_hits(counts, 5).into_iter().map(|h| (h.value, h.count)).collect();
        assert_eq!(
            got,
            vec![
                (FacetValue::Int(-1), 5),
                (FacetValue::Keyword("a".into()), 3),
                (FacetValue::Keyword("b".into()), 3),
                (FacetValue::Int(2), 3),
                (FacetValue::Bool(true), 3),
            ]
        );
    }

    #[test]
    fn values_of_json() {
        assert_eq!(FacetValue::of(&serde_json::json!(1.5)), None);
        assert_eq!(FacetValue::of(&serde_json::json!(null)), None);
        assert_eq!(FacetValue::of(&serde_json::json!(-3)), Some(FacetValue::Int(-3)));
        assert_eq!(serde_json::to_string(&FacetValue::Keyword("x".into())).unwrap(), "\"x\"");
    }
}
