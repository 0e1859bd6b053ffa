//! Grouped queries (Qdrant's `group_by`): the best `limit` groups of points sharing a payload value,
//! each with its best `group_size` hits.
//!
//! Semantics, as Qdrant's groups aggregator: a point belongs to the group of every distinct value at
//! `group_by` (a keyword or an integer; arrays contribute each element); a point with a value of any
//! other type is left out. Groups are ranked by their best hit, hits inside a group best first.
//!
//! Execution: the query runs with a growing limit (`limit * group_size`, then 4x per round) and the
//! results are grouped in score order. Once the first `limit` groups of a prefix of the full ranking
//! are all full, no later point can change them; a round that returns fewer points than asked has
//! exhausted the collection. Either way the answer is the same as grouping the full ranking.

use std::collections::HashMap;

use grape::filter::{Condition, KeyRef};
use grape::{Collection, Database, PointId, Record, Result, ScoredPoint, WithPayload, WithVector};
use serde::Serialize;

use super::{run_query, PointsQuery};
use crate::error::ApiError;
use crate::Service;

/// A group's value at `group_by`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum GroupId {
    Keyword(String),
    Int(i64),
    UInt(u64),
}

impl GroupId {
    fn of(value: &serde_json::Value) -> Option<GroupId> {
        match value {
            serde_json::Value::String(s) => Some(GroupId::Keyword(s.clone())),
            serde_json::Value::Number(n) => {
                n.as_i64().map(GroupId::Int).or_else(|| n.as_u64().map(GroupId::UInt))
            }
            _ => None,
        }
    }

    /// The point id this value names in a `with_lookup` collection, if it is one.
    fn point_id(&self) -> Option<PointId> {
        match self {
            GroupId::Keyword(s) => s.parse().ok(),
            GroupId::Int(i) => u64::try_from(*i).ok().map(PointId::Num),
            GroupId::UInt(u) => Some(PointId::Num(*u)),
        }
    }
}

/// Where group ids are looked up as point ids (Qdrant's `with_lookup`).
#[derive(Debug, Clone, PartialEq)]
pub struct WithLookup {
    pub collection: String,
    pub with_payload: WithPayload,
    pub with_vector: WithVector,
}

/// A grouped query: `query`'s own limit and offset are not used.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupsQuery {
    pub query: PointsQuery,
    pub group_by: String,
    pub group_size: usize,
    /// Number of groups.
    pub limit: usize,
    pub with_lookup: Option<WithLookup>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PointGroup {
    pub id: GroupId,
    pub hits: Vec<ScoredPoint>,
    pub lookup: Option<Record>,
}

impl Service {
    /// Runs a grouped query against one collection.
    pub async fn query_groups(
        &self,
        collection: String,
        req: GroupsQuery,
        consistency: grape::ReadConsistency,
    ) -> Result<Vec<PointGroup>, ApiError> {
        self.with_collection(collection, move |db, c| {
            query_groups(db, &c.with_consistency(consistency, None), req)
        })
        .await
    }
}

/// Rounds grow the fetched prefix by this factor.
const GROWTH: usize = 4;

pub fn query_groups(db: &Database, c: &Collection, req: GroupsQuery) -> Result<Vec<PointGroup>> {
    if req.group_size == 0 {
        return Err(grape::Error::bad_input("group_size: must be at least 1"));
    }
    if req.limit == 0 {
        return Err(grape::Error::bad_input("limit: must be at least 1"));
    }
    let mut round = req.query.clone();
    // Only the grouping key is needed while grouping; payloads and vectors are fetched at the end.
    let top_key = req.group_by.split(['.', '[']).next().unwrap_or(&req.group_by).to_string();
    round.with_payload = WithPayload::Include(vec![top_key]);
    round.with_vector = WithVector::Enable(false);
    round.offset = 0;
    let mut filter = round.filter.take().unwrap_or_default();
    filter
        .must_not
        .get_or_insert_with(Vec::new)
        .push(Condition::IsEmpty { is_empty: KeyRef { key: req.group_by.clone() } });
    round.filter = Some(filter);
    let mut fetch = req.limit.saturating_mul(req.group_size);
    let groups = loop {
        round.limit = fetch;
        let hits = run_query(db, c, round.clone())?;
        let exhausted = hits.len() < fetch;
        let groups = group_hits(hits, &req.group_by, req.group_size, req.limit);
        let settled = groups.len() == req.limit && groups.iter().all(|g| g.hits.len() == req.group_size);
        if exhausted || settled || fetch == usize::MAX {
            break groups;
        }
        fetch = fetch.saturating_mul(GROWTH);
    };
    finish(db, c, &req, groups)
}

/// Groups hits that arrive best first: the first `limit` distinct values open the groups, and each
/// takes hits until it holds `group_size`.
pub(crate) fn group_hits(
    hits: Vec<ScoredPoint>,
    group_by: &str,
    group_size: usize,
    limit: usize,
) -> Vec<PointGroup> {
    let mut groups: Vec<PointGroup> = Vec::new();
    let mut index: HashMap<GroupId, usize> = HashMap::new();
    for hit in hits {
        let Some(ids) = group_ids(&hit, group_by) else { continue };
        for id in ids {
            let slot = match index.get(&id) {
                Some(&i) => i,
                None if groups.len() < limit => {
                    index.insert(id.clone(), groups.len());
                    groups.push(PointGroup { id, hits: Vec::new(), lookup: None });
                    groups.len() - 1
                }
                None => continue,
            };
            if groups[slot].hits.len() < group_size {
                groups[slot].hits.push(hit.clone());
            }
        }
    }
    groups
}

/// The distinct group values of a hit, in payload order; `None` when it has none or one that cannot
/// be a group id (the point is then left out, as in Qdrant).
fn group_ids(hit: &ScoredPoint, group_by: &str) -> Option<Vec<GroupId>> {
    let payload = hit.payload.as_ref()?;
    let mut ids: Vec<GroupId> = Vec::new();
    for value in grape::filter::values_at(payload, group_by) {
        let items = match value {
            serde_json::Value::Array(items) => items.iter().collect(),
            v => vec![v],
        };
        for item in items {
            let id = GroupId::of(item)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    (!ids.is_empty()).then_some(ids)
}

/// Fills the hits with the requested payload and vectors and attaches the lookups.
fn finish(
    db: &Database,
    c: &Collection,
    req: &GroupsQuery,
    mut groups: Vec<PointGroup>,
) -> Result<Vec<PointGroup>> {
    let (with_payload, with_vector) = (&req.query.with_payload, &req.query.with_vector);
    if with_payload.is_enabled() || with_vector.is_enabled() {
        let mut ids: Vec<PointId> = groups.iter().flat_map(|g| g.hits.iter().map(|h| h.id)).collect();
        ids.sort_unstable();
        ids.dedup();
        let records: HashMap<PointId, Record> =
            c.retrieve(&ids, with_payload, with_vector)?.into_iter().map(|r| (r.id, r)).collect();
        for hit in groups.iter_mut().flat_map(|g| g.hits.iter_mut()) {
            let record = records.get(&hit.id);
            hit.payload = record.and_then(|r| r.payload.clone());
            hit.vector = record.and_then(|r| r.vector.clone());
        }
    } else {
        groups.iter_mut().flat_map(|g| g.hits.iter_mut()).for_each(|h| h.payload = None);
    }
    if let Some(lookup) = &req.with_lookup {
        let source = db.collection(&lookup.collection)?;
        let ids: Vec<PointId> = groups.iter().filter_map(|g| g.id.point_id()).collect();
        let mut found: HashMap<PointId, Record> = source
            .retrieve(&ids, &lookup.with_payload, &lookup.with_vector)?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        for g in &mut groups {
            g.lookup = g.id.point_id().and_then(|id| found.remove(&id));
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hit(id: u64, score: f32, doc: serde_json::Value) -> ScoredPoint {
        let payload = json!({ "doc": doc }).as_object().cloned();
        ScoredPoint { id: PointId::Num(id), version: 0, score, payload, vector: None, order_value: None }
    }

    fn ids(g: &PointGroup) -> Vec<u64> {
        g.hits.iter().map(|h| if let PointId::Num(n) = h.id { n } else { 0 }).collect()
    }

    #[test]
    fn groups_in_score_order_with_multi_values() {
        let hits = vec![
            hit(1, 0.99, json!(["a", "a"])),
            hit(2, 0.9, json!(["a", "b"])),
            hit(3, 0.8, json!(7)),
            hit(4, 0.7, json!(false)), // not a group id: left out
            hit(5, 0.6, json!("b")),
            hit(6, 0.5, json!("c")),        // a fourth group, over the limit
            hit(7, 0.4, json!(["b", 1.5])), // an array with a float: left out
            hit(8, 0.3, json!(7)),
            hit(9, 0.2, json!("a")),
        ];
        let groups = group_hits(hits, "doc", 2, 3);
        let got: Vec<(GroupId, Vec<u64>)> = groups.iter().map(|g| (g.id.clone(), ids(g))).collect();
        assert_eq!(
            got,
            vec![
                (GroupId::Keyword("a".into()), vec![1, 2]),
                (GroupId::Keyword("b".into()), vec![2, 5]),
                (GroupId::Int(7), vec![3, 8]),
            ]
        );
    }

    #[test]
    fn group_id_lookups() {
        assert_eq!(GroupId::Int(5).point_id(), Some(PointId::Num(5)));
        assert_eq!(GroupId::Int(-5).point_id(), None);
        assert_eq!(GroupId::Keyword("x".into()).point_id(), None);
        let u = "550e8400-e29b-41d4-a716-446655440000";
        assert!(matches!(GroupId::Keyword(u.into()).point_id(), Some(PointId::Uuid(_))));
    }
}
