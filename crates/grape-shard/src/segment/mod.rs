//! A segment: a set of points with their vectors, payloads, versions and (when indexed) HNSW graphs.
//!
//! The shard's one appendable segment takes new writes in RAM. Sealed segments are immutable on disk
//! except for their deletion bit set, which lives in the shard manifest. A point that changes while in a
//! sealed segment is copied to the appendable segment and deleted from the sealed one.

mod bitset;
mod multi;
mod payload_links;
mod payloads;
mod persist;
mod quantized;
mod search;
mod sparse;
mod vectors;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use grape_index::hnsw::HnswGraph;
use grape_index::payload_index::{intersect, union, FieldIndex};
use grape_index::quantization::QuantizedVectors;
use grape_types::filter::{Condition, TextRules};
use grape_types::{
    Error, Filter, NamedVectors, OpNum, Payload, PayloadFieldSchema, PayloadSchemaType, PointId, PointView,
    Result, Vector, VectorShape,
};
use parking_lot::{Mutex, RwLock};

pub use bitset::BitSet;
pub use multi::MultiVectors;
pub use payload_links::{scan_points, LinkedField};
pub use payloads::PayloadStore;
pub use persist::{open_segment, write_segment, write_segment_with, SegmentFiles, VectorFileMeta};
pub use quantized::{open_quantized, write_quantized};
pub use search::SegmentSearch;
pub use sparse::{best, SparseVectors};
pub use vectors::DenseVectors;

/// Numeric id of a segment within its shard; also its directory name.
pub type SegmentId = u64;

/// A segment shared between readers and the shard's writer.
pub struct Segment {
    pub id: SegmentId,
    pub data: RwLock<SegmentData>,
}

impl Segment {
    pub fn new(id: SegmentId, data: SegmentData) -> Self {
        Segment { id, data: RwLock::new(data) }
    }
}

/// Contents of a segment. Offsets are dense `0..len`; deleted offsets stay allocated.
pub struct SegmentData {
    /// Whether this segment accepts writes (the shard's appendable segment).
    pub appendable: bool,
    pub ids: Vec<PointId>,
    pub versions: Vec<OpNum>,
    /// Live points only.
    pub lookup: BTreeMap<PointId, u32>,
    pub deleted: BitSet,
    pub vectors: BTreeMap<String, DenseVectors>,
    /// Sparse vectors by name (sealed segments hold their inverted index).
    pub sparse: BTreeMap<String, SparseVectors>,
    /// Multivectors by name.
    pub multi: BTreeMap<String, MultiVectors>,
    pub graphs: BTreeMap<String, HnswGraph>,
    /// Per vector with a graph, the payload fields whose values have payload links in it.
    pub linked_fields: BTreeMap<String, Vec<LinkedField>>,
    /// Quantized codes of indexed vectors (sealed segments built by the optimizer only).
    pub quantized: BTreeMap<String, QuantizedVectors>,
    pub payloads: PayloadStore,
    /// Payload indexes of a sealed segment, built from its payloads when first needed (see
    /// [`SegmentData::field_index`]); not persisted. The appendable segment has none.
    pub field_indexes: Mutex<BTreeMap<String, Arc<FieldIndex>>>,
    /// Vectors dropped from the collection whose data this sealed segment's files still hold (the
    /// stores are gone from memory); recorded in the manifest until the optimizer rewrites the segment.
    pub dropped: BTreeSet<String>,
}

impl SegmentData {
    /// An empty appendable segment with the given dense vector stores and sparse vector names.
    pub fn appendable(
        vectors: impl IntoIterator<Item = (String, DenseVectors)>,
        sparse: impl IntoIterator<Item = String>,
        multi: impl IntoIterator<Item = (String, MultiVectors)>,
    ) -> Self {
        SegmentData {
            appendable: true,
            ids: Vec::new(),
            versions: Vec::new(),
            lookup: BTreeMap::new(),
            deleted: BitSet::default(),
            vectors: vectors.into_iter().collect(),
            sparse: sparse.into_iter().map(|n| (n, SparseVectors::default())).collect(),
            multi: multi.into_iter().collect(),
            graphs: BTreeMap::new(),
            linked_fields: BTreeMap::new(),
            quantized: BTreeMap::new(),
            payloads: PayloadStore::Mutable(Vec::new()),
            field_indexes: Mutex::new(BTreeMap::new()),
            dropped: BTreeSet::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn live_count(&self) -> usize {
        self.lookup.len()
    }

    pub fn deleted_count(&self) -> usize {
        self.len() - self.live_count()
    }

    pub fn find(&self, id: &PointId) -> Option<u32> {
        self.lookup.get(id).copied()
    }

    /// Whether the segment has all its indexes: an HNSW graph for every dense vector (sparse vectors
    /// of a sealed segment are always indexed; a segment of sparse vectors only needs no graph).
    pub fn is_indexed(&self) -> bool {
        !self.appendable && self.vectors.keys().all(|name| self.graphs.contains_key(name))
    }

    /// Bytes of vector data (all named vectors), the unit of Qdrant's size thresholds.
    pub fn vector_bytes(&self) -> usize {
        self.vectors.values().map(|v| v.data_bytes()).sum::<usize>()
            + self.sparse.values().map(|v| v.data_bytes()).sum::<usize>()
            + self.multi.values().map(|v| v.data_bytes()).sum::<usize>()
    }

    pub fn ram_bytes(&self) -> usize {
        let ids = self.ids.len() * (std::mem::size_of::<PointId>() + 8) + self.lookup.len() * 48;
        let vectors: usize = self.vectors.values().map(|v| v.ram_bytes()).sum::<usize>()
            + self.sparse.values().map(|v| v.ram_bytes()).sum::<usize>()
            + self.multi.values().map(|v| v.ram_bytes()).sum::<usize>();
        let graphs: usize = self.graphs.values().map(|g| g.ram_bytes()).sum();
        let indexes: usize = self.field_indexes.lock().values().map(|i| i.ram_bytes()).sum();
        let memory = self.memory();
        ids + vectors
            + graphs
            + indexes
            + memory.codes_ram
            + self.payloads.ram_bytes()
            + self.deleted.words().len() * 8
    }

    /// Bytes of original vectors, quantized codes and graphs, by where they live.
    pub fn memory(&self) -> VectorMemory {
        let mut m = VectorMemory::default();
        for v in self.vectors.values() {
            if v.is_mapped() {
                m.vectors_disk += v.data_bytes();
            } else {
                m.vectors_ram += v.data_bytes();
            }
        }
        for q in self.quantized.values() {
            let bytes = q.code_bytes() + q.params_bytes();
            if q.codes().in_ram() {
                m.codes_ram += bytes;
            } else {
                m.codes_disk += bytes;
            }
        }
        m.graphs_ram = self.graphs.values().map(|g| g.ram_bytes()).sum();
        m
    }

    /// The index of `key` for `kind`, built now from the stored payloads if it does not exist yet.
    /// `None` for the appendable segment (its payloads change) or when payloads do not decode.
    pub fn field_index(&self, key: &str, kind: PayloadSchemaType) -> Option<Arc<FieldIndex>> {
        self.field_index_for(key, &PayloadFieldSchema::Type(kind))
    }

    /// The index `schema` declares for `key` (its type and, for text, its tokenizer), built now from
    /// the stored payloads if it does not exist yet. `None` as for [`SegmentData::field_index`].
    pub fn field_index_for(&self, key: &str, schema: &PayloadFieldSchema) -> Option<Arc<FieldIndex>> {
        if self.appendable {
            return None;
        }
        let mut indexes = self.field_indexes.lock();
        if let Some(idx) = indexes.get(key).filter(|i| same_index(i, schema)) {
            return Some(Arc::clone(idx));
        }
        let mut payloads = Vec::with_capacity(self.len());
        for offset in 0..self.len() as u32 {
            match self.payloads.get(offset) {
                Ok(Some(p)) => payloads.push((offset, p)),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(offset, key, "payload does not decode; index not built: {e}");
                    return None;
                }
            }
        }
        let idx = Arc::new(FieldIndex::build_for(schema, key, payloads.iter().map(|(o, p)| (*o, p))));
        indexes.insert(key.to_string(), Arc::clone(&idx));
        Some(idx)
    }

    /// Drops indexes of keys no longer declared.
    pub fn retain_indexes(&self, schema: &BTreeMap<String, PayloadFieldSchema>) {
        self.field_indexes.lock().retain(|k, i| schema.get(k).is_some_and(|s| same_index(i, s)));
    }

    /// Live offsets that may pass the filter, from payload indexes (and point ids): a superset of the
    /// passing points, sorted, and whether it is exactly the passing set. `None` when no index narrows
    /// the filter down.
    pub fn candidates(&self, check: &FilterCheck<'_>) -> Option<Candidates> {
        static NONE_DECLARED: BTreeMap<String, PayloadFieldSchema> = BTreeMap::new();
        let (found, exact) = self.filter_candidates(check.filter, check.schema.unwrap_or(&NONE_DECLARED))?;
        Some(Candidates { offsets: found.into_iter().filter(|&o| !self.deleted.get(o)).collect(), exact })
    }

    fn filter_candidates(
        &self,
        filter: &Filter,
        schema: &BTreeMap<String, PayloadFieldSchema>,
    ) -> Option<(Vec<u32>, bool)> {
        let mut best: Option<Vec<u32>> = None;
        // Exact only when every clause is a `must` answered exactly.
        let mut exact = filter.must_not.as_ref().is_none_or(Vec::is_empty) && filter.min_should.is_none();
        let mut narrow = |set: Vec<u32>| {
            best = Some(match best.take() {
                None => set,
                Some(b) => intersect(&b, &set),
            });
        };
        for c in filter.must.iter().flatten() {
            match self.condition_candidates(c, schema) {
                Some((set, e)) => {
                    exact &= e;
                    narrow(set);
                }
                None => exact = false,
            }
        }
        if let Some(should) = filter.should.as_ref().filter(|s| !s.is_empty()) {
            exact = false;
            // Every passing point passes one of them: the union is a superset only if each is answered.
            let parts: Option<Vec<Vec<u32>>> =
                should.iter().map(|c| self.condition_candidates(c, schema).map(|(s, _)| s)).collect();
            if let Some(parts) = parts {
                narrow(union(parts));
            }
        }
        best.map(|b| (b, exact))
    }

    fn condition_candidates(
        &self,
        c: &Condition,
        schema: &BTreeMap<String, PayloadFieldSchema>,
    ) -> Option<(Vec<u32>, bool)> {
        match c {
            Condition::Field(f) => {
                let index = self.field_index_for(&f.key, schema.get(&f.key)?)?;
                let only_match = f.range.is_none()
                    && f.geo_radius.is_none()
                    && f.geo_bounding_box.is_none()
                    && f.geo_polygon.is_none()
                    && f.values_count.is_none();
                let mut exact = only_match;
                let mut best: Option<Vec<u32>> = None;
                let by_match = f.r#match.as_ref().and_then(|m| {
                    exact &= index.match_is_exact(m);
                    index.lookup_match(m)
                });
                if f.r#match.is_some() && by_match.is_none() {
                    exact = false;
                }
                let by_range = f.range.as_ref().and_then(|r| index.lookup_range(r));
                let by_geo = index.lookup_geo(f);
                for set in [by_match, by_range, by_geo].into_iter().flatten() {
                    best = Some(match best {
                        None => set,
                        Some(b) => intersect(&b, &set),
                    });
                }
                best.map(|b| (b, exact))
            }
            Condition::HasId { has_id } => {
                let mut offsets: Vec<u32> = has_id.iter().filter_map(|id| self.find(id)).collect();
                offsets.sort_unstable();
                offsets.dedup();
                Some((offsets, true))
            }
            Condition::Filter(inner) => self.filter_candidates(inner, schema),
            _ => None,
        }
    }

    /// Adds an empty store for the vector `name` (no point has a value for it), replacing any store of
    /// that name. Only the appendable segment gains vectors; a sealed one simply has no store for them.
    pub fn add_vector(&mut self, name: &str, shape: VectorShape) -> Result<()> {
        self.require_appendable()?;
        self.drop_vector(name);
        let points = self.len();
        match shape {
            VectorShape::Dense { size, distance, datatype, multi: false } => {
                let mut store = DenseVectors::new(size, distance, datatype);
                (0..points).try_for_each(|_| store.push_opt(None).map(|_| ()))?;
                self.vectors.insert(name.to_string(), store);
            }
            VectorShape::Dense { size, distance, multi: true, .. } => {
                let mut store = MultiVectors::new(size, distance);
                (0..points).try_for_each(|_| store.push_opt(None))?;
                self.multi.insert(name.to_string(), store);
            }
            VectorShape::Sparse => {
                let mut store = SparseVectors::default();
                (0..points).for_each(|_| store.push_opt(None));
                self.sparse.insert(name.to_string(), store);
            }
        }
        Ok(())
    }

    /// Forgets the vector `name`: its values, graph and codes. A sealed segment remembers the name in
    /// [`SegmentData::dropped`]. Returns whether the segment held it.
    pub fn drop_vector(&mut self, name: &str) -> bool {
        let held = self.vectors.remove(name).is_some()
            | self.sparse.remove(name).is_some()
            | self.multi.remove(name).is_some();
        self.graphs.remove(name);
        self.quantized.remove(name);
        if held && !self.appendable {
            self.dropped.insert(name.to_string());
        }
        held
    }

    pub fn payload(&self, offset: u32) -> Result<Option<Payload>> {
        self.payloads.get(offset)
    }

    /// The vectors of the point at `offset` (of the names `wanted` accepts), dense and sparse.
    pub fn vectors_of_where(&self, offset: u32, wanted: impl Fn(&str) -> bool) -> NamedVectors {
        let dense = self
            .vectors
            .iter()
            .filter(|(name, v)| wanted(name) && v.has(offset))
            .map(|(name, v)| (name.clone(), Vector::Dense(v.get_f32(offset).into_owned())));
        let sparse = self
            .sparse
            .iter()
            .filter(|(name, _)| wanted(name))
            .filter_map(|(name, v)| v.get(offset).map(|row| (name.clone(), Vector::Sparse(row.clone()))));
        let multi = self
            .multi
            .iter()
            .filter(|(name, _)| wanted(name))
            .filter_map(|(name, v)| v.get(offset).map(|rows| (name.clone(), Vector::Multi(rows))));
        dense.chain(sparse).chain(multi).collect()
    }

    pub fn vectors_of(&self, offset: u32) -> NamedVectors {
        self.vectors_of_where(offset, |_| true)
    }

    fn require_appendable(&self) -> Result<()> {
        if self.appendable {
            Ok(())
        } else {
            Err(Error::Internal("write into a sealed segment".into()))
        }
    }

    /// Appends a new point. Vectors must be validated by the caller; a missing name means the point has
    /// no such vector.
    pub fn append(
        &mut self,
        id: PointId,
        version: OpNum,
        vectors: &NamedVectors,
        payload: Option<Payload>,
    ) -> Result<u32> {
        self.require_appendable()?;
        let offset = self.ids.len() as u32;
        for (name, store) in &mut self.vectors {
            store.push_opt(vectors.get(name).and_then(Vector::as_dense))?;
        }
        for (name, store) in &mut self.sparse {
            store.push_opt(vectors.get(name).and_then(Vector::as_sparse));
        }
        for (name, store) in &mut self.multi {
            store.push_opt(vectors.get(name).and_then(Vector::as_multi))?;
        }
        self.ids.push(id);
        self.versions.push(version);
        self.payloads.put(offset, payload)?;
        self.lookup.insert(id, offset);
        Ok(offset)
    }

    /// Replaces vectors and payload of a live point in place.
    pub fn overwrite(
        &mut self,
        offset: u32,
        version: OpNum,
        vectors: &NamedVectors,
        payload: Option<Payload>,
    ) -> Result<()> {
        self.require_appendable()?;
        for (name, store) in &mut self.vectors {
            store.set_opt(offset, vectors.get(name).and_then(Vector::as_dense))?;
        }
        for (name, store) in &mut self.sparse {
            store.set_opt(offset, vectors.get(name).and_then(Vector::as_sparse));
        }
        for (name, store) in &mut self.multi {
            store.set_opt(offset, vectors.get(name).and_then(Vector::as_multi))?;
        }
        self.versions[offset as usize] = version;
        self.payloads.put(offset, payload)
    }

    /// Replaces the payload of a live point in place.
    pub fn put_payload(&mut self, offset: u32, version: OpNum, payload: Option<Payload>) -> Result<()> {
        self.require_appendable()?;
        self.versions[offset as usize] = version;
        self.payloads.put(offset, payload)
    }

    /// Whether the point at `offset` passes `filter` (`None` passes everything). A payload that does not
    /// decode fails every filter (and is logged): corruption never widens a result.
    pub fn passes(&self, offset: u32, filter: Option<&FilterCheck<'_>>) -> bool {
        let Some(FilterCheck { filter, keys, text, .. }) = filter else { return true };
        let check =
            |payload: Option<&Payload>| filter.check_in(&SegmentPoint { data: self, offset, payload }, text);
        match self.payloads.with_payload(offset, keys, check) {
            Ok(passed) => passed,
            Err(e) => {
                tracing::error!(offset, "payload does not decode: {e}");
                false
            }
        }
    }

    /// Marks a point deleted. Allowed in every segment.
    pub fn delete(&mut self, offset: u32) {
        if let Some(id) = self.ids.get(offset as usize) {
            if self.lookup.get(id) == Some(&offset) {
                self.lookup.remove(id);
            }
        }
        self.deleted.set(offset);
    }
}

/// Bytes of vector data of a segment (or a sum of segments): originals, quantized codes (with their
/// parameters) and HNSW graphs, in RAM or memory-mapped from disk (mapped pages may be cached).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VectorMemory {
    pub vectors_ram: usize,
    pub vectors_disk: usize,
    pub codes_ram: usize,
    pub codes_disk: usize,
    pub graphs_ram: usize,
}

impl std::ops::AddAssign for VectorMemory {
    fn add_assign(&mut self, o: VectorMemory) {
        self.vectors_ram += o.vectors_ram;
        self.vectors_disk += o.vectors_disk;
        self.codes_ram += o.codes_ram;
        self.codes_disk += o.codes_disk;
        self.graphs_ram += o.graphs_ram;
    }
}

/// Offsets that may pass a filter (sorted, live); `exact` when they are exactly the passing ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates {
    pub offsets: Vec<u32>,
    pub exact: bool,
}

/// A filter ready to be checked against many points: the payload keys it reads are worked out once.
#[derive(Debug)]
pub struct FilterCheck<'a> {
    pub(crate) filter: &'a Filter,
    keys: Vec<&'a str>,
    /// Declared payload indexes, which sealed segments use to find candidates.
    pub(crate) schema: Option<&'a BTreeMap<String, PayloadFieldSchema>>,
    /// Tokenizers of the declared text indexes: text conditions on their keys match as the index does
    /// in every segment, indexed or not.
    text: TextRules,
}

impl<'a> FilterCheck<'a> {
    pub fn new(filter: &'a Filter) -> Self {
        FilterCheck { filter, keys: filter.payload_keys(), schema: None, text: TextRules::default() }
    }

    /// A check that may use the payload indexes declared in `schema`.
    pub fn with_schema(filter: &'a Filter, schema: &'a BTreeMap<String, PayloadFieldSchema>) -> Self {
        let mut text = TextRules::default();
        if filter.has_text_conditions() {
            for (key, s) in schema.iter().filter(|(_, s)| s.data_type() == PayloadSchemaType::Text) {
                // Declarations are validated when made; one that no longer builds matches as unindexed.
                match s.tokenizer() {
                    Ok(t) => text.insert(key.clone(), Arc::new(t)),
                    Err(e) => tracing::error!(key, "text index parameters: {e}"),
                }
            }
        }
        FilterCheck { filter, keys: filter.payload_keys(), schema: Some(schema), text }
    }
}

/// Whether a built index serves a declaration (same type; for text, the same parameters).
fn same_index(index: &FieldIndex, schema: &PayloadFieldSchema) -> bool {
    index.kind() == schema.data_type()
        && (schema.data_type() != PayloadSchemaType::Text || index.schema() == schema)
}

/// One point of a segment, as filters see it.
struct SegmentPoint<'a> {
    data: &'a SegmentData,
    offset: u32,
    payload: Option<&'a Payload>,
}

impl PointView for SegmentPoint<'_> {
    fn id(&self) -> PointId {
        self.data.ids[self.offset as usize]
    }

    fn payload(&self) -> Option<&Payload> {
        self.payload
    }

    fn has_vector(&self, name: &str) -> bool {
        self.data.vectors.get(name).is_some_and(|v| v.has(self.offset))
            || self.data.sparse.get(name).is_some_and(|v| v.has(self.offset))
            || self.data.multi.get(name).is_some_and(|v| v.has(self.offset))
    }
}
