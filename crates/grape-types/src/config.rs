//! Collection configuration with Qdrant's JSON shapes and defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::quantization::{QuantizationConfig, QuantizationConfigDiff};
use crate::shard_key::{ShardKeyLayout, ShardingMethod};
use crate::{Distance, Error, Result, DEFAULT_VECTOR_NAME};

/// Element type of stored dense vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Datatype {
    #[default]
    Float32,
    Float16,
    Uint8,
}

/// Parameters of one dense vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VectorParams {
    pub size: usize,
    pub distance: Distance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hnsw_config: Option<HnswConfigDiff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatype: Option<Datatype>,
    /// Overrides the collection's `quantization_config` for this vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_config: Option<QuantizationConfig>,
    /// Set for a multivector: each point holds several vectors of `size`, scored by late interaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivector_config: Option<MultiVectorConfig>,
}

/// Qdrant's `multivector_config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MultiVectorConfig {
    pub comparator: MultiVectorComparator,
}

/// How a query multivector is compared with a stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MultiVectorComparator {
    /// Sum over the query's vectors of the best similarity to any stored vector (ColBERT's MaxSim).
    MaxSim,
}

impl VectorParams {
    pub fn new(size: usize, distance: Distance) -> Self {
        VectorParams {
            size,
            distance,
            hnsw_config: None,
            on_disk: None,
            datatype: None,
            quantization_config: None,
            multivector_config: None,
        }
    }

    pub fn is_multi(&self) -> bool {
        self.multivector_config.is_some()
    }

    pub fn datatype(&self) -> Datatype {
        self.datatype.unwrap_or_default()
    }

    pub fn on_disk(&self) -> bool {
        self.on_disk.unwrap_or(false)
    }

    fn validate(&self, name: &str) -> Result<()> {
        if self.size == 0 || self.size > 65_536 {
            return Err(Error::bad_input(format!(
                "vectors{}: size must be between 1 and 65536, got {}",
                if name.is_empty() { String::new() } else { format!(".{name}") },
                self.size
            )));
        }
        if let Some(h) = &self.hnsw_config {
            h.validate()?;
        }
        if let Some(q) = &self.quantization_config {
            q.validate(name, self.size)?;
        }
        if self.is_multi() && self.datatype == Some(Datatype::Uint8) {
            return Err(Error::bad_input(format!(
                "vectors{}: uint8 multivectors are not supported",
                if name.is_empty() { String::new() } else { format!(".{name}") }
            )));
        }
        Ok(())
    }
}

/// Changes to one vector's parameters (collection update).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VectorParamsDiff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hnsw_config: Option<HnswConfigDiff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    /// A new per-vector quantization, or `"Disabled"` to fall back to the collection's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_config: Option<QuantizationConfigDiff>,
}

/// Dense vectors of a collection: one unnamed vector or a map of named vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum VectorsConfig {
    Single(VectorParams),
    Multi(BTreeMap<String, VectorParams>),
}

impl VectorsConfig {
    /// Vector parameters by name; the unnamed vector is called `""`.
    pub fn get(&self, name: &str) -> Option<&VectorParams> {
        match self {
            VectorsConfig::Single(p) if name == DEFAULT_VECTOR_NAME => Some(p),
            VectorsConfig::Single(_) => None,
            VectorsConfig::Multi(m) => m.get(name),
        }
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut VectorParams> {
        match self {
            VectorsConfig::Single(p) if name == DEFAULT_VECTOR_NAME => Some(p),
            VectorsConfig::Single(_) => None,
            VectorsConfig::Multi(m) => m.get_mut(name),
        }
    }

    /// All vectors as `(name, params)`, sorted by name.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&str, &VectorParams)> + '_> {
        match self {
            VectorsConfig::Single(p) => Box::new(std::iter::once((DEFAULT_VECTOR_NAME, p))),
            VectorsConfig::Multi(m) => Box::new(m.iter().map(|(k, v)| (k.as_str(), v))),
        }
    }

    /// No dense vector (a collection of sparse vectors only).
    pub fn none() -> Self {
        VectorsConfig::Multi(BTreeMap::new())
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, VectorsConfig::Multi(m) if m.is_empty())
    }

    pub fn validate(&self) -> Result<()> {
        self.iter().try_for_each(|(n, p)| p.validate(n))
    }

    /// Error for a vector name that is not configured, with Qdrant's wording.
    pub fn missing(name: &str) -> Error {
        if name.is_empty() {
            Error::bad_input("Not existing vector name error: the collection has no unnamed vector")
        } else {
            Error::bad_input(format!("Not existing vector name error: {name}"))
        }
    }
}

/// Index parameters of one sparse vector (Qdrant's `sparse_vectors.<name>.index`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SparseIndexParams {
    /// Below this many candidate points a filtered sparse query scores the candidates directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_scan_threshold: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatype: Option<Datatype>,
}

/// Parameters of one (always named) sparse vector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SparseVectorParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<SparseIndexParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifier: Option<crate::Modifier>,
}

impl SparseVectorParams {
    pub fn modifier(&self) -> crate::Modifier {
        self.modifier.unwrap_or_default()
    }

    fn validate(&self, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::bad_input("sparse_vectors: a sparse vector needs a name"));
        }
        if self.index.as_ref().and_then(|i| i.datatype) == Some(Datatype::Uint8) {
            return Err(Error::bad_input(format!(
                "sparse_vectors.{name}.index.datatype: uint8 is not supported for sparse vectors"
            )));
        }
        Ok(())
    }
}

/// HNSW index parameters (Qdrant defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HnswConfig {
    pub m: usize,
    pub ef_construct: usize,
    /// Below this many kilobytes of vectors a segment is searched exactly instead of through the graph.
    pub full_scan_threshold: usize,
    #[serde(default)]
    pub max_indexing_threads: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_m: Option<usize>,
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig {
            m: 16,
            ef_construct: 100,
            full_scan_threshold: 10_000,
            max_indexing_threads: 0,
            on_disk: Some(false),
            payload_m: None,
        }
    }
}

impl HnswConfig {
    pub fn apply(&self, diff: &HnswConfigDiff) -> HnswConfig {
        HnswConfig {
            m: diff.m.unwrap_or(self.m),
            ef_construct: diff.ef_construct.unwrap_or(self.ef_construct),
            full_scan_threshold: diff.full_scan_threshold.unwrap_or(self.full_scan_threshold),
            max_indexing_threads: diff.max_indexing_threads.unwrap_or(self.max_indexing_threads),
            on_disk: diff.on_disk.or(self.on_disk),
            payload_m: diff.payload_m.or(self.payload_m),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HnswConfigDiff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ef_construct: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_scan_threshold: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_indexing_threads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_m: Option<usize>,
}

impl HnswConfigDiff {
    pub fn validate(&self) -> Result<()> {
        if let Some(m) = self.m {
            if m == 1 || m > 512 {
                return Err(Error::bad_input(format!(
                    "hnsw_config.m: must be 0 or between 2 and 512, got {m}"
                )));
            }
        }
        if let Some(ef) = self.ef_construct {
            if !(4..=10_000).contains(&ef) {
                return Err(Error::bad_input(format!(
                    "hnsw_config.ef_construct: must be between 4 and 10000, got {ef}"
                )));
            }
        }
        if self.full_scan_threshold == Some(0) {
            return Err(Error::bad_input("hnsw_config.full_scan_threshold: must be at least 1"));
        }
        Ok(())
    }
}

/// Optimizer parameters (Qdrant defaults). Sizes are in kilobytes of vector data, as in Qdrant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OptimizersConfig {
    pub deleted_threshold: f64,
    pub vacuum_min_vector_number: usize,
    pub default_segment_number: usize,
    #[serde(default)]
    pub max_segment_size: Option<usize>,
    #[serde(default)]
    pub memmap_threshold: Option<usize>,
    pub indexing_threshold: Option<usize>,
    pub flush_interval_sec: u64,
    #[serde(default)]
    pub max_optimization_threads: Option<usize>,
}

impl Default for OptimizersConfig {
    fn default() -> Self {
        OptimizersConfig {
            deleted_threshold: 0.2,
            vacuum_min_vector_number: 1000,
            default_segment_number: 0,
            max_segment_size: None,
            memmap_threshold: None,
            indexing_threshold: Some(10_000),
            flush_interval_sec: 5,
            max_optimization_threads: None,
        }
    }
}

impl OptimizersConfig {
    pub fn apply(&self, d: &OptimizersConfigDiff) -> OptimizersConfig {
        OptimizersConfig {
            deleted_threshold: d.deleted_threshold.unwrap_or(self.deleted_threshold),
            vacuum_min_vector_number: d.vacuum_min_vector_number.unwrap_or(self.vacuum_min_vector_number),
            default_segment_number: d.default_segment_number.unwrap_or(self.default_segment_number),
            max_segment_size: d.max_segment_size.or(self.max_segment_size),
            memmap_threshold: d.memmap_threshold.or(self.memmap_threshold),
            indexing_threshold: d.indexing_threshold.or(self.indexing_threshold),
            flush_interval_sec: d.flush_interval_sec.unwrap_or(self.flush_interval_sec),
            max_optimization_threads: d.max_optimization_threads.or(self.max_optimization_threads),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.deleted_threshold) {
            return Err(Error::bad_input(format!(
                "optimizers_config.deleted_threshold: must be between 0 and 1, got {}",
                self.deleted_threshold
            )));
        }
        if self.max_segment_size == Some(0) {
            return Err(Error::bad_input("optimizers_config.max_segment_size: must be at least 1"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OptimizersConfigDiff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vacuum_min_vector_number: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_segment_number: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_segment_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memmap_threshold: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexing_threshold: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_interval_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_optimization_threads: Option<usize>,
}

/// Write-ahead log parameters (Qdrant's keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WalConfig {
    /// Size of one WAL segment file in megabytes.
    pub wal_capacity_mb: usize,
    /// Number of WAL segment files created ahead of need.
    pub wal_segments_ahead: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig { wal_capacity_mb: 32, wal_segments_ahead: 0 }
    }
}

impl WalConfig {
    pub fn apply(&self, d: &WalConfigDiff) -> WalConfig {
        WalConfig {
            wal_capacity_mb: d.wal_capacity_mb.unwrap_or(self.wal_capacity_mb),
            wal_segments_ahead: d.wal_segments_ahead.unwrap_or(self.wal_segments_ahead),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WalConfigDiff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_capacity_mb: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_segments_ahead: Option<usize>,
}

/// `config.params` of a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CollectionParams {
    #[serde(default = "VectorsConfig::none")]
    pub vectors: VectorsConfig,
    /// Sparse vectors by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse_vectors: Option<BTreeMap<String, SparseVectorParams>>,
    #[serde(default = "one")]
    pub shard_number: u32,
    #[serde(default = "one")]
    pub replication_factor: u32,
    #[serde(default = "one")]
    pub write_consistency_factor: u32,
    #[serde(default)]
    pub on_disk_payload: bool,
    /// `custom`: shards belong to shard keys (`shard_number` is then the default number of shards of a
    /// new key). Absent means `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding_method: Option<ShardingMethod>,
}

impl CollectionParams {
    pub fn is_custom_sharded(&self) -> bool {
        self.sharding_method == Some(ShardingMethod::Custom)
    }
}

fn one() -> u32 {
    1
}

/// The full configuration of a collection, as reported in collection info (`result.config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CollectionConfig {
    pub params: CollectionParams,
    pub hnsw_config: HnswConfig,
    pub optimizer_config: OptimizersConfig,
    pub wal_config: WalConfig,
    /// Quantization of every vector without its own `quantization_config` (`null`: none).
    #[serde(default)]
    pub quantization_config: Option<QuantizationConfig>,
    /// Declared payload indexes by field key. Collection info reports them as `payload_schema` beside
    /// the config, as Qdrant does, not inside it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub payload_schema: BTreeMap<String, crate::PayloadFieldSchema>,
    /// Custom sharding: the shards of each shard key. Stored with the configuration (so metadata,
    /// snapshots and the cluster's metadata carry it), never reported in collection info.
    #[serde(default, skip_serializing_if = "ShardKeyLayout::is_empty")]
    #[cfg_attr(feature = "schema", schemars(skip))]
    pub shard_keys: ShardKeyLayout,
}

impl CollectionConfig {
    /// Ids of the collection's shards: `0..shard_number` with auto sharding, the shards of every
    /// shard key with custom sharding.
    pub fn shard_ids(&self) -> Vec<u32> {
        if self.params.is_custom_sharded() {
            self.shard_keys.shard_ids().collect()
        } else {
            (0..self.params.shard_number).collect()
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.params.vectors.validate()?;
        let sparse = self.params.sparse_vectors.as_ref();
        if self.params.vectors.is_empty() && sparse.is_none_or(BTreeMap::is_empty) {
            return Err(Error::bad_input("vectors: at least one vector must be configured"));
        }
        for (name, params) in sparse.into_iter().flatten() {
            params.validate(name)?;
            if self.params.vectors.get(name).is_some() {
                return Err(Error::bad_input(format!(
                    "sparse_vectors.{name}: the name is already used by a dense vector"
                )));
            }
        }
        if self.params.shard_number == 0 {
            return Err(Error::bad_input("shard_number: must be at least 1"));
        }
        HnswConfigDiff {
            m: Some(self.hnsw_config.m),
            ef_construct: Some(self.hnsw_config.ef_construct),
            full_scan_threshold: Some(self.hnsw_config.full_scan_threshold),
            ..Default::default()
        }
        .validate()?;
        self.optimizer_config.validate()?;
        if self.wal_config.wal_capacity_mb == 0 {
            return Err(Error::bad_input("wal_config.wal_capacity_mb: must be at least 1"));
        }
        if let Some(q) = &self.quantization_config {
            q.validate_params()?;
            for (name, p) in self.params.vectors.iter().filter(|(_, p)| p.quantization_config.is_none()) {
                q.validate(name, p.size)?;
            }
        }
        Ok(())
    }

    /// Effective quantization of one vector: its own, else the collection's.
    pub fn quantization_for(&self, vector: &str) -> Option<&QuantizationConfig> {
        self.params
            .vectors
            .get(vector)
            .and_then(|p| p.quantization_config.as_ref())
            .or(self.quantization_config.as_ref())
    }

    /// Parameters of the sparse vector `name`, if configured.
    pub fn sparse(&self, name: &str) -> Option<&SparseVectorParams> {
        self.params.sparse_vectors.as_ref()?.get(name)
    }

    /// Effective HNSW parameters of one vector (collection defaults overridden per vector).
    pub fn hnsw_for(&self, vector: &str) -> HnswConfig {
        match self.params.vectors.get(vector).and_then(|p| p.hnsw_config.as_ref()) {
            Some(diff) => self.hnsw_config.apply(diff),
            None => self.hnsw_config.clone(),
        }
    }
}

/// Request to create a collection (Qdrant's `PUT /collections/{name}` body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CreateCollection {
    #[serde(default = "VectorsConfig::none")]
    pub vectors: VectorsConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse_vectors: Option<BTreeMap<String, SparseVectorParams>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_consistency_factor: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding_method: Option<ShardingMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk_payload: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hnsw_config: Option<HnswConfigDiff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_config: Option<WalConfigDiff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizers_config: Option<OptimizersConfigDiff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_config: Option<QuantizationConfig>,
}

impl CreateCollection {
    pub fn new(vectors: VectorsConfig) -> Self {
        CreateCollection {
            vectors,
            sparse_vectors: None,
            shard_number: None,
            replication_factor: None,
            write_consistency_factor: None,
            sharding_method: None,
            on_disk_payload: None,
            hnsw_config: None,
            wal_config: None,
            optimizers_config: None,
            quantization_config: None,
        }
    }

    /// Resolves defaults into a full, validated configuration.
    pub fn into_config(self) -> Result<CollectionConfig> {
        if let Some(h) = &self.hnsw_config {
            h.validate()?;
        }
        let config = CollectionConfig {
            params: CollectionParams {
                vectors: self.vectors,
                sparse_vectors: self.sparse_vectors,
                shard_number: self.shard_number.unwrap_or(1),
                replication_factor: self.replication_factor.unwrap_or(1),
                write_consistency_factor: self.write_consistency_factor.unwrap_or(1),
                on_disk_payload: self.on_disk_payload.unwrap_or(false),
                sharding_method: self.sharding_method,
            },
            hnsw_config: HnswConfig::default().apply(&self.hnsw_config.unwrap_or_default()),
            optimizer_config: OptimizersConfig::default().apply(&self.optimizers_config.unwrap_or_default()),
            wal_config: WalConfig::default().apply(&self.wal_config.unwrap_or_default()),
            quantization_config: self.quantization_config,
            payload_schema: BTreeMap::new(),
            shard_keys: ShardKeyLayout::default(),
        };
        config.validate()?;
        Ok(config)
    }
}

/// Request to change a collection's parameters (Qdrant's `PATCH /collections/{name}` body).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UpdateCollection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vectors: Option<BTreeMap<String, VectorParamsDiff>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizers_config: Option<OptimizersConfigDiff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hnsw_config: Option<HnswConfigDiff>,
    /// A new collection-level quantization, or `"Disabled"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_config: Option<QuantizationConfigDiff>,
    /// New parameters of existing sparse vectors (index settings, modifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse_vectors: Option<BTreeMap<String, SparseVectorParams>>,
}

impl UpdateCollection {
    /// Applies the update to a configuration, validating the result.
    pub fn apply_to(&self, config: &CollectionConfig) -> Result<CollectionConfig> {
        let mut next = config.clone();
        if let Some(h) = &self.hnsw_config {
            h.validate()?;
            next.hnsw_config = next.hnsw_config.apply(h);
        }
        if let Some(o) = &self.optimizers_config {
            next.optimizer_config = next.optimizer_config.apply(o);
        }
        if let Some(vectors) = &self.vectors {
            for (name, diff) in vectors {
                let params = next.params.vectors.get_mut(name).ok_or_else(|| VectorsConfig::missing(name))?;
                if let Some(h) = &diff.hnsw_config {
                    h.validate()?;
                    let merged = params.hnsw_config.clone().unwrap_or_default();
                    params.hnsw_config = Some(merge_hnsw_diff(&merged, h));
                }
                if let Some(on_disk) = diff.on_disk {
                    params.on_disk = Some(on_disk);
                }
                if let Some(q) = &diff.quantization_config {
                    params.quantization_config = q.resolve();
                }
            }
        }
        if let Some(q) = &self.quantization_config {
            next.quantization_config = q.resolve();
        }
        for (name, diff) in self.sparse_vectors.iter().flatten() {
            let params = next
                .params
                .sparse_vectors
                .as_mut()
                .and_then(|m| m.get_mut(name))
                .ok_or_else(|| VectorsConfig::missing(name))?;
            if let Some(index) = &diff.index {
                let mut merged = params.index.clone().unwrap_or_default();
                merged.full_scan_threshold = index.full_scan_threshold.or(merged.full_scan_threshold);
                merged.on_disk = index.on_disk.or(merged.on_disk);
                merged.datatype = index.datatype.or(merged.datatype);
                params.index = Some(merged);
            }
            if let Some(m) = diff.modifier {
                params.modifier = Some(m);
            }
        }
        next.validate()?;
        Ok(next)
    }
}

fn merge_hnsw_diff(base: &HnswConfigDiff, d: &HnswConfigDiff) -> HnswConfigDiff {
    HnswConfigDiff {
        m: d.m.or(base.m),
        ef_construct: d.ef_construct.or(base.ef_construct),
        full_scan_threshold: d.full_scan_threshold.or(base.full_scan_threshold),
        max_indexing_threads: d.max_indexing_threads.or(base.max_indexing_threads),
        on_disk: d.on_disk.or(base.on_disk),
        payload_m: d.payload_m.or(base.payload_m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_qdrant_create_bodies() {
        let single: CreateCollection =
            serde_json::from_str(r#"{"vectors": {"size": 4, "distance": "Dot"}}"#).unwrap();
        let cfg = single.into_config().unwrap();
        assert_eq!(cfg.params.vectors.get("").unwrap().size, 4);
        assert_eq!(cfg.hnsw_config.m, 16);

        let named: CreateCollection = serde_json::from_str(
            r#"{"vectors": {"image": {"size": 8, "distance": "Euclid", "on_disk": true}}, "hnsw_config": {"m": 32}}"#,
        )
        .unwrap();
        let cfg = named.into_config().unwrap();
        assert!(cfg.params.vectors.get("image").unwrap().on_disk());
        assert!(cfg.params.vectors.get("").is_none());
        assert_eq!(cfg.hnsw_config.m, 32);
    }

    #[test]
    fn rejects_bad_values() {
        let bad: CreateCollection =
            serde_json::from_str(r#"{"vectors": {"size": 0, "distance": "Dot"}}"#).unwrap();
        assert!(bad.into_config().unwrap_err().to_string().contains("size"));
        assert!(serde_json::from_str::<CreateCollection>(r#"{"vectors": {"size": 3, "distance": "L2"}}"#)
            .is_err());
    }

    #[test]
    fn update_merges() {
        let cfg = CreateCollection::new(VectorsConfig::Single(VectorParams::new(4, Distance::Cosine)))
            .into_config()
            .unwrap();
        let upd = UpdateCollection {
            hnsw_config: Some(HnswConfigDiff { ef_construct: Some(200), ..Default::default() }),
            ..Default::default()
        };
        let next = upd.apply_to(&cfg).unwrap();
        assert_eq!(next.hnsw_config.ef_construct, 200);
        assert_eq!(next.hnsw_config.m, 16);
    }

    #[test]
    fn quantization_create_update_and_override() {
        let create: CreateCollection = serde_json::from_str(
            r#"{"vectors": {"a": {"size": 8, "distance": "Dot", "quantization_config": {"binary": {}}},
                            "b": {"size": 6, "distance": "Dot"}},
                "quantization_config": {"scalar": {"type": "int8", "quantile": 0.99}}}"#,
        )
        .unwrap();
        let cfg = create.into_config().unwrap();
        assert!(matches!(cfg.quantization_for("a"), Some(QuantizationConfig::Binary(_))));
        assert!(matches!(cfg.quantization_for("b"), Some(QuantizationConfig::Scalar(_))));
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(json["quantization_config"]["scalar"]["quantile"].as_f64().map(|q| q as f32), Some(0.99));
        assert!(serde_json::to_string(&cfg).unwrap().contains(r#""quantile":0.99"#));
        assert_eq!(json["params"]["vectors"]["a"]["quantization_config"], serde_json::json!({"binary": {}}));

        // PQ x16 packs 4 dimensions per byte: 6 is refused and the old config stays as it was.
        let bad: UpdateCollection =
            serde_json::from_str(r#"{"quantization_config": {"product": {"compression": "x16"}}}"#).unwrap();
        assert!(bad.apply_to(&cfg).unwrap_err().to_string().contains("does not divide the dimension 6"));
        let off: UpdateCollection = serde_json::from_str(
            r#"{"quantization_config": "Disabled", "vectors": {"a": {"quantization_config": "Disabled"}}}"#,
        )
        .unwrap();
        let next = off.apply_to(&cfg).unwrap();
        assert_eq!(next.quantization_for("a"), None);
        assert_eq!(next.quantization_for("b"), None);
        assert!(serde_json::to_value(&next).unwrap()["quantization_config"].is_null());
    }
}
