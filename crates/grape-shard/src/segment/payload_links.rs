//! Payload-aware HNSW links of a sealed segment (filterable HNSW, Qdrant's `payload_m`): which indexed
//! payload values have links, how the optimizer builds them, and which filters they cover.
//!
//! When the optimizer builds a vector's graph and the collection declares keyword or integer payload
//! indexes, every value of such a field held by at least `min_points` points (the `full_scan_threshold`
//! in points: smaller sets are answered by the exact plan) gets a graph over just its points, whose
//! level-0 links are added to the main graph as payload links (`grape_index::hnsw::payload_links`).
//! The fields and the threshold are recorded in `meta.bin` ([`LinkedField`]); since a payload index is
//! a pure function of the segment's payloads, "value `v` of `key` is linked" is exactly "`v` has at
//! least `min_points` points", nothing else needs storing. When the declared indexes change after the
//! graph was built (see [`SegmentData::links_out_of_date`]), the optimizer's "links" plan rebuilds them.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use grape_index::hnsw::{HnswGraph, HnswParams};
use grape_index::payload_index::{union, FieldIndex};
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
    /// The payload fields whose values get links in vector `name`'s graph under `config`, with their
    /// indexes: every declared keyword / integer index with `enable_hnsw` (default true), when
    /// `payload_m` (default `m`) is not 0. What [`SegmentData::build_payload_links`] records, so a
    /// segment whose recorded fields differ is out of date (the optimizer's "links" plan).
    fn linkable_indexes(&self, config: &CollectionConfig, name: &str) -> Vec<(LinkedField, Arc<FieldIndex>)> {
        let hnsw = config.hnsw_for(name);
        let Some(store) = self.vectors.get(name) else { return Vec::new() };
        if hnsw.payload_m.unwrap_or(hnsw.m) == 0 {
            return Vec::new();
        }
        let min_points = scan_points(store, hnsw.full_scan_threshold).max(2);
        config
            .payload_schema
            .iter()
            .filter(|(_, schema)| linkable(schema.data_type()) && schema.enable_hnsw())
            .filter_map(|(key, schema)| {
                let kind = schema.data_type();
                let index = self.field_index_for(key, schema)?;
                Some((LinkedField { key: key.clone(), kind, min_points }, index))
            })
            .collect()
    }

    /// The linked fields vector `name`'s graph should have under `config` (see
    /// [`SegmentData::build_payload_links`]).
    pub fn wanted_links(&self, config: &CollectionConfig, name: &str) -> Vec<LinkedField> {
        self.linkable_indexes(config, name).into_iter().map(|(field, _)| field).collect()
    }

    /// Whether some graph's payload links do not match `config` (an index declared, dropped or
    /// changed after the graph was built, or another `payload_m` / `full_scan_threshold`).
    pub fn links_out_of_date(&self, config: &CollectionConfig) -> bool {
        self.graphs.keys().any(|name| {
            self.linked_fields.get(name).map_or(&[][..], Vec::as_slice) != self.wanted_links(config, name)
        })
    }

    /// Builds the payload links of `graph` (the graph of vector `name` of this sealed segment) for the
    /// keyword and integer indexes `config` declares, with `payload_m` (default `m`; 0 builds none),
    /// replacing any it had. Returns the linked fields to record, or `None` when `stop` interrupted the
    /// build.
    pub fn build_payload_links(
        &self,
        config: &CollectionConfig,
        name: &str,
        graph: &mut HnswGraph,
        seed: u64,
        stop: &AtomicBool,
    ) -> Option<Vec<LinkedField>> {
        let hnsw = config.hnsw_for(name);
        let linkable = self.linkable_indexes(config, name);
        let Some(store) = self.vectors.get(name).filter(|_| !linkable.is_empty()) else {
            graph.clear_payload_links();
            return Some(Vec::new());
        };
        let mut groups: Vec<&[u32]> = linkable
            .iter()
            .flat_map(|(field, index)| {
                index.value_groups().into_iter().filter(|g| g.len() >= field.min_points)
            })
            .collect();
        // Value maps have no order; sorting makes the build a function of the data and the seed.
        groups.sort_unstable();
        let params = HnswParams {
            m: hnsw.payload_m.unwrap_or(hnsw.m),
            ef_construct: hnsw.ef_construct,
            max_threads: hnsw.max_indexing_threads,
            seed,
        };
        let fields = linkable.iter().map(|(field, _)| field.clone()).collect();
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
