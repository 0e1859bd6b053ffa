//! Points in the order of a payload value: scroll's `order_by` and the Query API's `order_by` query.
//!
//! Qdrant reads the order from a range index on the key and refuses the request when the key has
//! none, so Grape asks for the same declared index (integer with `range`, float or datetime); it then
//! scans the points passing the filter and sorts them. As in Qdrant (and its local mode), a point with
//! several values appears once per distinct value that is at or past `start_from`, and points without
//! a number or date-time at the key are left out. Ties go by point id, in the direction of the order.

use std::collections::HashMap;

use crate::{
    Collection, Direction, Error, Filter, OrderBy, OrderValue, PayloadFieldSchema, PayloadSchemaType,
    PointId, Record, Result, ScoredPoint, ScrollRequest, WithPayload, WithVector,
};

/// A scroll in the order of a payload value.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedScroll {
    pub order_by: OrderBy,
    pub limit: usize,
    pub filter: Option<Filter>,
    pub with_payload: WithPayload,
    pub with_vector: WithVector,
}

/// Points read per scroll page while scanning.
const PAGE: usize = 1024;

/// Whether a declared payload index answers range conditions (and so can order points).
fn has_range_index(schema: &PayloadFieldSchema) -> bool {
    match schema.data_type() {
        PayloadSchemaType::Float | PayloadSchemaType::Datetime => true,
        PayloadSchemaType::Integer => schema
            .params()
            .and_then(|p| p.options.get("range"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true),
        _ => false,
    }
}

/// Refuses an order by a key without a range index, with Qdrant's message.
pub fn require_range_index(c: &Collection, key: &str) -> Result<()> {
    if c.config().payload_schema.get(key).is_some_and(has_range_index) {
        return Ok(());
    }
    Err(Error::bad_input(format!(
        "No range index for `order_by` key: `{key}`. Please create one to use `order_by`. Check \
         https://qdrant.tech/documentation/concepts/indexing/#payload-index to see which payload schemas \
         support Range conditions"
    )))
}

/// Scrolls `c` in the order of `req.order_by` (no next page offset: page on with `start_from`).
pub fn scroll_ordered(c: &Collection, req: &OrderedScroll) -> Result<Vec<(Record, OrderValue)>> {
    if req.limit == 0 {
        return Err(Error::bad_input("limit: must be at least 1"));
    }
    require_range_index(c, &req.order_by.key)?;
    let entries = ordered_entries(c, &req.order_by, req.filter.clone(), req.limit)?;
    let mut ids: Vec<PointId> = entries.iter().map(|e| e.1).collect();
    ids.sort_unstable();
    ids.dedup();
    let records: HashMap<PointId, Record> =
        c.retrieve(&ids, &req.with_payload, &req.with_vector)?.into_iter().map(|r| (r.id, r)).collect();
    // A point deleted since the scan is left out.
    Ok(entries.into_iter().filter_map(|(v, id)| Some((records.get(&id)?.clone(), v))).collect())
}

/// The Query API's `order_by`: the first `limit` entries after `offset`, each scored 1 (as Qdrant's
/// local mode answers) and carrying its `order_value`.
pub(super) fn query(c: &Collection, q: &super::PointsQuery, order_by: &OrderBy) -> Result<Vec<ScoredPoint>> {
    require_range_index(c, &order_by.key)?;
    let top = q.limit.saturating_add(q.offset);
    let entries = ordered_entries(c, order_by, q.filter.clone(), top)?;
    let points = entries
        .into_iter()
        .skip(q.offset)
        .map(|(v, id)| ScoredPoint {
            id,
            version: 0,
            score: 1.0,
            payload: None,
            vector: None,
            order_value: Some(v),
        })
        .collect();
    super::hydrate(c, points, &q.with_payload, &q.with_vector)
}

/// The first `top` (value, point) entries in the order, over the points passing `filter`.
fn ordered_entries(
    c: &Collection,
    order: &OrderBy,
    filter: Option<Filter>,
    top: usize,
) -> Result<Vec<(OrderValue, PointId)>> {
    let top_key = order.key.split(['.', '[']).next().unwrap_or(&order.key).to_string();
    let mut scroll = ScrollRequest {
        offset: None,
        limit: PAGE,
        with_payload: WithPayload::Include(vec![top_key]),
        with_vector: WithVector::Enable(false),
        filter,
    };
    let mut entries: Vec<(OrderValue, PointId)> = Vec::new();
    loop {
        let page = c.scroll(&scroll)?;
        for record in &page.points {
            let Some(payload) = &record.payload else { continue };
            let mut values: Vec<OrderValue> = crate::filter::leaf_values(payload, &order.key)
                .into_iter()
                .filter_map(OrderValue::of)
                .filter(|v| order.admits(*v))
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
    entries.truncate(top);
    Ok(entries)
}
