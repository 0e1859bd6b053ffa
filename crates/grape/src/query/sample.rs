//! `query: {"sample": "random"}`: points picked uniformly at random among those passing the filter.

use crate::{Collection, PointId, Result, ScoredPoint, ScrollRequest, WithPayload, WithVector};
use rand::seq::SliceRandom;

use super::PointsQuery;

/// Points read per scroll page while listing the candidates.
const PAGE: usize = 4096;

/// `q.limit` random points passing `q.filter` (score 1, as Qdrant gives them), in random order.
pub(super) fn random(c: &Collection, q: &PointsQuery) -> Result<Vec<ScoredPoint>> {
    let mut ids: Vec<PointId> = Vec::new();
    let mut req = ScrollRequest {
        offset: None,
        limit: PAGE,
        with_payload: WithPayload::Enable(false),
        with_vector: WithVector::Enable(false),
        filter: q.filter.clone(),
    };
    loop {
        let page = c.scroll(&req)?;
        ids.extend(page.points.iter().map(|r| r.id));
        match page.next_page_offset {
            Some(next) => req.offset = Some(next),
            None => break,
        }
    }
    let (picked, _) = ids.partial_shuffle(&mut rand::thread_rng(), q.limit);
    let points = picked
        .iter()
        .map(|&id| ScoredPoint { id, version: 0, score: 1.0, payload: None, vector: None, order_value: None })
        .collect();
    super::hydrate(c, points, &q.with_payload, &q.with_vector)
}
