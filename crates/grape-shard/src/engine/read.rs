//! Reads: search, retrieve, scroll, count. Each holds the segment lock shared for the whole request, so
//! it sees whole batches only.

use std::collections::HashSet;
use std::sync::Arc;

use grape_index::distance::MetricKernel;
use grape_index::ScoredOffset;
use grape_types::{
    Distance, Filter, MultiSearchRequest, NamedVectorSearch, PointId, Record, Result, ScoredPoint,
    ScrollRequest, ScrollResult, SearchRequest, SparseSearchRequest, VectorOutput, VectorsConfig,
    WithPayload, WithVector,
};
use rayon::prelude::*;

use super::ShardEngine;
use crate::segment::{FilterCheck, Segment, SegmentData, SegmentSearch};

/// The per-segment part of a search: `(segment, top, accept) -> (offset, internal score)`, best first.
type SegmentSearchFn<'a> = dyn Fn(&SegmentData, usize, &dyn Fn(u32) -> bool) -> Vec<(u32, f32)> + Sync + 'a;

/// A search hit inside a shard, before payloads and vectors are attached.
#[derive(Debug, Clone, Copy)]
pub struct SearchHit {
    pub id: PointId,
    pub version: u64,
    /// Internal score (larger is better).
    pub score: f32,
}

impl ShardEngine {
    /// Nearest neighbours of `req.vector`, which must already be validated and preprocessed (normalised
    /// for cosine). Scores are reported with the metric's convention.
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        let (distance, default_ef, full_scan_threshold_kb) = {
            let config = self.config.read();
            let params =
                config.params.vectors.get(&req.using).ok_or_else(|| VectorsConfig::missing(&req.using))?;
            let diff = params.hnsw_config.as_ref();
            (
                params.distance,
                diff.and_then(|d| d.ef_construct).unwrap_or(config.hnsw_config.ef_construct),
                diff.and_then(|d| d.full_scan_threshold).unwrap_or(config.hnsw_config.full_scan_threshold),
            )
        };
        let top = req.limit.saturating_add(req.offset);
        // The declared indexes (cloned only for filtered searches).
        let schema = match &req.filter {
            Some(_) => self.config.read().payload_schema.clone(),
            None => Default::default(),
        };
        let filter = req.filter.as_ref().map(|f| FilterCheck::with_schema(f, &schema));
        let seg_req = SegmentSearch {
            vector: &req.using,
            query: &req.vector,
            top,
            ef: req.params.hnsw_ef.unwrap_or(default_ef).max(top),
            exact: req.params.exact,
            full_scan_threshold_kb,
            filter: filter.as_ref(),
            quantization: req.params.quantization.unwrap_or_default(),
        };
        let guard = self.segments.read();
        let segments: Vec<&Arc<Segment>> = guard.0.all().filter(|s| s.data.read().live_count() > 0).collect();
        let per_segment: Vec<(usize, Vec<ScoredOffset>)> = if segments.len() <= 1 {
            segments.iter().enumerate().map(|(i, s)| (i, s.data.read().search(&seg_req))).collect()
        } else {
            segments.par_iter().enumerate().map(|(i, s)| (i, s.data.read().search(&seg_req))).collect()
        };
        let mut hits: Vec<(f32, PointId, usize, u32)> = Vec::new();
        for (i, found) in per_segment {
            let data = segments[i].data.read();
            hits.extend(found.into_iter().map(|h| {
                // The version is read for each result below, one at a time between other work: start
                // loading it now (a cache miss per result otherwise).
                grape_index::distance::prefetch(std::slice::from_ref(&data.versions[h.offset as usize]));
                (h.score, data.ids[h.offset as usize], i, h.offset)
            }));
        }
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(req.limit);
        for (score, id, seg, offset) in hits {
            // Scores arrive best first and postprocessing is monotone, so the first miss ends it.
            if req.score_threshold.is_some_and(|t| !distance.passes_threshold(distance.postprocess(score), t))
            {
                break;
            }
            if !seen.insert(id) {
                continue;
            }
            if seen.len() <= req.offset {
                continue;
            }
            let data = segments[seg].data.read();
            out.push(ScoredPoint {
                id,
                version: data.versions[offset as usize],
                score: distance.postprocess(score),
                payload: select_payload(&data, offset, &req.with_payload)?,
                vector: select_vectors(&data, offset, &req.with_vector),
                order_value: None,
            });
            if out.len() == req.limit {
                break;
            }
        }
        Ok(out)
    }

    /// Points sharing an index with the sparse query `req.vector` (validated, sorted, and already
    /// weighted by IDF when the vector's modifier asks for it), by dot product.
    pub fn search_sparse(&self, req: &SparseSearchRequest) -> Result<Vec<ScoredPoint>> {
        self.search_named(req, Distance::Dot, &|data, top, accept| {
            data.sparse.get(&req.using).map_or_else(Vec::new, |store| store.search(&req.vector, top, accept))
        })
    }

    /// Points having the multivector `req.using`, by MaxSim against `req.vector` (validated rows,
    /// normalised for cosine), exactly. Scores follow the metric's convention.
    pub fn search_multi(&self, req: &MultiSearchRequest) -> Result<Vec<ScoredPoint>> {
        let (_, distance) = self.vector_params(&req.using)?;
        let kernel = MetricKernel::new(distance);
        self.search_named(req, distance, &|data, top, accept| {
            let Some(store) = data.multi.get(&req.using) else { return Vec::new() };
            let scored =
                (0..store.len() as u32).filter_map(|o| Some((o, store.max_sim(&kernel, &req.vector, o)?)));
            crate::segment::best(scored, top, accept)
        })
    }

    /// A search whose per-segment part is `search_segment(data, top, accept)` (internal scores, best
    /// first); segments run in parallel and merge as dense searches do.
    fn search_named<V>(
        &self,
        req: &NamedVectorSearch<V>,
        distance: Distance,
        search_segment: &SegmentSearchFn<'_>,
    ) -> Result<Vec<ScoredPoint>> {
        let top = req.limit.saturating_add(req.offset);
        let schema = match &req.filter {
            Some(_) => self.config.read().payload_schema.clone(),
            None => Default::default(),
        };
        let filter = req.filter.as_ref().map(|f| FilterCheck::with_schema(f, &schema));
        let guard = self.segments.read();
        let segments: Vec<&Arc<Segment>> = guard.0.all().filter(|s| s.data.read().live_count() > 0).collect();
        let run = |seg: &Arc<Segment>| -> Vec<(u32, f32)> {
            let data = seg.data.read();
            match filter.as_ref().and_then(|f| data.candidates(f)) {
                Some(c) => {
                    let check = if c.exact { None } else { filter.as_ref() };
                    let mut allowed = crate::segment::BitSet::default();
                    c.offsets.iter().for_each(|&o| allowed.set(o));
                    search_segment(&data, top, &|o| allowed.get(o) && data.passes(o, check))
                }
                None => {
                    search_segment(&data, top, &|o| !data.deleted.get(o) && data.passes(o, filter.as_ref()))
                }
            }
        };
        // Segments are searched in parallel, as dense searches are.
        let per_segment: Vec<Vec<(u32, f32)>> = if segments.len() <= 1 {
            segments.iter().map(|s| run(s)).collect()
        } else {
            segments.par_iter().map(|s| run(s)).collect()
        };
        let mut hits: Vec<(f32, PointId, usize, u32)> = Vec::new();
        for (i, found) in per_segment.into_iter().enumerate() {
            let data = segments[i].data.read();
            hits.extend(
                found.into_iter().map(|(offset, score)| (score, data.ids[offset as usize], i, offset)),
            );
        }
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(req.limit);
        for (score, id, seg, offset) in hits {
            let score = distance.postprocess(score);
            if req.score_threshold.is_some_and(|t| !distance.passes_threshold(score, t)) {
                break;
            }
            if !seen.insert(id) || seen.len() <= req.offset {
                continue;
            }
            let data = segments[seg].data.read();
            out.push(ScoredPoint {
                id,
                version: data.versions[offset as usize],
                score,
                payload: select_payload(&data, offset, &req.with_payload)?,
                vector: select_vectors(&data, offset, &req.with_vector),
                order_value: None,
            });
            if out.len() == req.limit {
                break;
            }
        }
        Ok(out)
    }

    /// IDF statistics of the sparse vector `name` over live points: how many have the vector, and
    /// for each of `indices` how many contain it.
    pub fn sparse_document_frequencies(&self, name: &str, indices: &[u32]) -> (u64, Vec<u64>) {
        self.with_segments(|set| {
            let mut docs = 0;
            let mut df = vec![0u64; indices.len()];
            for seg in set.all() {
                let data = seg.data.read();
                let Some(store) = data.sparse.get(name) else { continue };
                let (n, d) = store.document_frequencies(indices, &data.deleted);
                docs += n;
                df.iter_mut().zip(d).for_each(|(a, b)| *a += b);
            }
            (docs, df)
        })
    }

    /// Points by id, in request order; missing ids are skipped.
    pub fn retrieve(
        &self,
        ids: &[PointId],
        with_payload: &WithPayload,
        with_vector: &WithVector,
    ) -> Result<Vec<Record>> {
        let guard = self.segments.read();
        let mut out = Vec::with_capacity(ids.len());
        let mut seen = HashSet::new();
        for id in ids {
            if !seen.insert(*id) {
                continue;
            }
            for seg in guard.0.all() {
                let data = seg.data.read();
                if let Some(offset) = data.find(id) {
                    out.push(record(&data, offset, with_payload, with_vector)?);
                    break;
                }
            }
        }
        Ok(out)
    }

    /// A page of points in id order starting at `req.offset`.
    pub fn scroll(&self, req: &ScrollRequest) -> Result<ScrollResult> {
        let guard = self.segments.read();
        let want = req.limit.saturating_add(1);
        let config = self.config();
        let filter = req.filter.as_ref().map(|f| FilterCheck::with_schema(f, &config.payload_schema));
        let mut candidates: Vec<(PointId, usize, u32)> = Vec::new();
        let segments: Vec<&Arc<Segment>> = guard.0.all().collect();
        for (i, seg) in segments.iter().enumerate() {
            let data = seg.data.read();
            if let Some(found) = filter.as_ref().and_then(|f| data.candidates(f)) {
                // Indexed: the passing candidates, in id order from the offset.
                let check = if found.exact { None } else { filter.as_ref() };
                let mut passing: Vec<(PointId, u32)> = found
                    .offsets
                    .into_iter()
                    .map(|o| (data.ids[o as usize], o))
                    .filter(|(id, o)| req.offset.is_none_or(|start| *id >= start) && data.passes(*o, check))
                    .collect();
                passing.sort_unstable();
                candidates.extend(passing.into_iter().take(want).map(|(id, off)| (id, i, off)));
                continue;
            }
            let iter: Box<dyn Iterator<Item = (&PointId, &u32)>> = match &req.offset {
                Some(start) => Box::new(data.lookup.range(*start..)),
                None => Box::new(data.lookup.iter()),
            };
            let passing = iter.filter(|(_, off)| data.passes(**off, filter.as_ref()));
            candidates.extend(passing.take(want).map(|(id, off)| (*id, i, *off)));
        }
        candidates.sort_by_key(|c| c.0);
        candidates.dedup_by_key(|c| c.0);
        let next_page_offset = candidates.get(req.limit).map(|c| c.0);
        candidates.truncate(req.limit);
        let points = candidates
            .into_iter()
            .map(|(_, seg, offset)| {
                record(&segments[seg].data.read(), offset, &req.with_payload, &req.with_vector)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ScrollResult { points, next_page_offset })
    }

    /// Number of live points passing `filter` (all live points without one).
    pub fn count(&self, filter: Option<&Filter>) -> usize {
        let config = self.config();
        let filter = filter.map(|f| FilterCheck::with_schema(f, &config.payload_schema));
        let guard = self.segments.read();
        guard
            .0
            .all()
            .map(|s| {
                let data = s.data.read();
                match &filter {
                    None => data.live_count(),
                    Some(f) => match data.candidates(f) {
                        Some(c) if c.exact => c.offsets.len(),
                        Some(c) => c.offsets.into_iter().filter(|&o| data.passes(o, Some(f))).count(),
                        None => data.lookup.values().filter(|&&o| data.passes(o, Some(f))).count(),
                    },
                }
            })
            .sum()
    }
}

fn record(
    data: &SegmentData,
    offset: u32,
    with_payload: &WithPayload,
    with_vector: &WithVector,
) -> Result<Record> {
    Ok(Record {
        id: data.ids[offset as usize],
        payload: select_payload(data, offset, with_payload)?,
        vector: select_vectors(data, offset, with_vector),
    })
}

fn select_payload(
    data: &SegmentData,
    offset: u32,
    with: &WithPayload,
) -> Result<Option<grape_types::Payload>> {
    if !with.is_enabled() {
        return Ok(None);
    }
    Ok(with.select(&data.payload(offset)?.unwrap_or_default()))
}

fn select_vectors(data: &SegmentData, offset: u32, with: &WithVector) -> Option<VectorOutput> {
    if !with.is_enabled() {
        return None;
    }
    Some(VectorOutput::from_named(data.vectors_of_where(offset, |name| with.wants(name))))
}

/// Size and state of one segment, for health and collection info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentStats {
    pub id: u64,
    pub appendable: bool,
    pub live_points: usize,
    pub deleted_points: usize,
    /// Live points times the number of vectors with an HNSW graph in this segment.
    pub indexed_vectors: usize,
    pub ram_bytes: usize,
    pub memory: crate::segment::VectorMemory,
}

impl ShardEngine {
    /// Builds the declared payload indexes of every sealed segment now and drops undeclared ones.
    pub fn sync_payload_indexes(&self) {
        let schema = self.config().payload_schema;
        self.with_segments(|set| {
            for seg in set.all() {
                let data = seg.data.read();
                data.retain_indexes(&schema);
                for (key, s) in &schema {
                    data.field_index_for(key, s);
                }
            }
        });
    }

    /// Live points with at least one value of the index's type at `key` (collection info's `points`).
    pub fn indexed_points(&self, key: &str, kind: grape_types::PayloadSchemaType) -> usize {
        // The declared index itself (a text index's parameters make it), when it is of this type.
        let declared = self.config().payload_schema.get(key).filter(|s| s.data_type() == kind).cloned();
        let schema = declared.unwrap_or(grape_types::PayloadFieldSchema::Type(kind));
        self.with_segments(|set| {
            set.all()
                .map(|seg| {
                    let data = seg.data.read();
                    match data.field_index_for(key, &schema) {
                        Some(idx) => {
                            idx.offsets_with_value().iter().filter(|&&o| !data.deleted.get(o)).count()
                        }
                        None => data
                            .lookup
                            .values()
                            .filter(|&&o| {
                                data.payloads.get(o).ok().flatten().is_some_and(|p| {
                                    grape_types::filter::leaf_values(&p, key)
                                        .into_iter()
                                        .any(|v| grape_index::payload_index::indexes_value(kind, v))
                                })
                            })
                            .count(),
                    }
                })
                .sum()
        })
    }

    pub fn segment_stats(&self) -> Vec<SegmentStats> {
        self.with_segments(|set| {
            set.all()
                .map(|s| {
                    let d = s.data.read();
                    SegmentStats {
                        id: s.id,
                        appendable: d.appendable,
                        live_points: d.live_count(),
                        deleted_points: d.deleted_count(),
                        indexed_vectors: d.live_count() * d.graphs.len(),
                        ram_bytes: d.ram_bytes(),
                        memory: d.memory(),
                    }
                })
                .collect()
        })
    }
}
