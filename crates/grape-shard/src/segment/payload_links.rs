//! Payload-aware HNSW links of a sealed segment (filterable HNSW, Qdrant's `payload_m`): which indexed
//! payload values have links, how the optimizer builds them, and which filters they cover.
//!
//! When the optimizer builds a vector's graph and the collection declares keyword or integer payload
//! indexes, every value of such a field held by at least `min_points` points (the `full_scan_threshold`
//! in points: smaller sets are answered by the exact plan) gets a graph over just its points, whose
//! level-0 links are added to the main graph as payload links (`grape_index::hnsw::payload_links`).
//! The fields and the threshold are recorded in `meta.bin` ([`LinkedField`]); since a payload index is
//! a pure function of the segment's payloads, "value `v` of `key` is linked" is exactly "`v` has at
//! least `min_points` points", nothing else needs storing. An index declared after the graph was built
//! gets links when the optimizer next builds the segment's graph (index, merge or vacuum).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use grape_index::hnsw::{HnswGraph, HnswParams};
use grape_index::payload_index::union;
use grape_types::filter::{Condition, Match};
use grape_types::{CollectionConfig, Filter, PayloadFieldSchema, PayloadSchemaType};
use serde::{Deserialize, Serialize};

use super::{DenseVectors, SegmentData};

/// A payload field whose values (those with at least `min_points` points) have payload links in a
/// vector's graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedField {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: PayloadSchemaType,
    pub min_points: usize,
}

/// Whether payload links are built for an index of `kind` (values a `match` answers exactly).
fn linkable(kind: PayloadSchemaType) -> bool {
    matches!(kind, PayloadSchemaType::Keyword | PayloadSchemaType::Integer)
}

/// Points of `store` below which a search is planned as an exact scan: `full_scan_threshold` (KB) in
/// rows of this vector.
pub fn scan_points(store: &DenseVectors, full_scan_threshold_kb: usize) -> usize {
    let row_bytes = (store.data_bytes() / store.len().max(1)).max(1);
    full_scan_threshold_kb.saturating_mul(1024) / row_bytes
}

impl SegmentData {
    /// Builds the payload links of `graph` (the new graph of vector `name` of this sealed segment) for
    /// the keyword and integer indexes `config` declares, with `payload_m` (default `m`; 0 builds none).
    /// Returns the linked fields to record, or `None` when `stop` interrupted the build.
    pub fn build_payload_links(
        &self,
        config: &CollectionConfig,
        name: &str,
        graph: &mut HnswGraph,
        seed: u64,
        stop: &AtomicBool,
    ) -> Option<Vec<LinkedField>> {
        let hnsw = config.hnsw_for(name);
        let payload_m = hnsw.payload_m.unwrap_or(hnsw.m);
        let Some(store) = self.vectors.get(name) else { return Some(Vec::new()) };
        if payload_m == 0 {
            return Some(Vec::new());
        }
        let min_points = scan_points(store, hnsw.full_scan_threshold).max(2);
        let mut fields = Vec::new();
        let mut indexes = Vec::new();
        for (key, schema) in &config.payload_schema {
            let kind = schema.data_type();
            if !linkable(kind) {
                continue;
            }
            if let Some(index) = self.field_index(key, kind) {
                fields.push(LinkedField { key: key.clone(), kind, min_points });
                indexes.push(index);
            }
        }
        let mut groups: Vec<&[u32]> =
            indexes.iter().flat_map(|i| i.value_groups()).filter(|g| g.len() >= min_points).collect();
        // Value maps have no order; sorting makes the build a function of the data and the seed.
        groups.sort_unstable();
        let params = HnswParams {
            m: payload_m,
            ef_construct: hnsw.ef_construct,
            max_threads: hnsw.max_indexing_threads,
            seed,
        };
        graph.build_payload_links(store, &groups, &params, stop).then_some(fields)
    }

    /// A traversal set for a graph search with `filter` on vector `vector`: the points of one `must`
    /// condition whose every value has payload links (a `match` of a keyword or integer value, or
    /// `any` of such values), the smallest if several. It holds every point passing the filter, and
    /// payload links connect its points among themselves, so a search may expand only its points.
    /// Sorted offsets, deleted points included (they keep the set connected); `None` when no
    /// condition is covered.
    pub fn linked_cover(
        &self,
        filter: &Filter,
        schema: &BTreeMap<String, PayloadFieldSchema>,
        vector: &str,
    ) -> Option<Vec<u32>> {
        let linked = self.linked_fields.get(vector).filter(|f| !f.is_empty())?;
        let mut best: Option<Vec<u32>> = None;
        for c in filter.must.iter().flatten() {
            let Condition::Field(f) = c else { continue };
            let only_match = f.range.is_none()
                && f.geo_radius.is_none()
                && f.geo_bounding_box.is_none()
                && f.geo_polygon.is_none()
                && f.values_count.is_none();
            let Some(m) = f.r#match.as_ref().filter(|_| only_match) else { continue };
            let Some(field) = linked.iter().find(|l| l.key == f.key) else { continue };
            if schema.get(&f.key).map(PayloadFieldSchema::data_type) != Some(field.kind) {
                continue;
            }
            let Some(index) = self.field_index(&f.key, field.kind) else { continue };
            let values = match m {
                Match::Value { value } => std::slice::from_ref(value),
                Match::Any { any } => any.as_slice(),
                _ => continue,
            };
            let mut parts = Vec::with_capacity(values.len());
            for v in values {
                let single = Match::Value { value: v.clone() };
                match index.lookup_match(&single) {
                    Some(set) if set.is_empty() || set.len() >= field.min_points => parts.push(set),
                    _ => {
                        parts.clear();
                        break;
                    }
                }
            }
            if parts.is_empty() {
                continue;
            }
            let set = union(parts);
            if best.as_ref().is_none_or(|b| set.len() < b.len()) {
                best = Some(set);
            }
        }
        best
    }
}
