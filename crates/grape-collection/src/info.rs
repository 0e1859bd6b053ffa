//! Collection info (Qdrant's `GET /collections/{name}` result) and health statistics.

use grape_types::CollectionConfig;
use serde::{Deserialize, Serialize};

/// Qdrant's collection status colours: green = ready, yellow = optimizing or an optimization due (an index
/// build waiting for writes to settle), red = optimizer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum CollectionStatus {
    Green,
    Yellow,
    Grey,
    Red,
}

/// `optimizer_status`: `"ok"` or `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum OptimizerStatusInfo {
    Ok(OkTag),
    Error { error: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum OkTag {
    Ok,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CollectionInfo {
    pub status: CollectionStatus,
    pub optimizer_status: OptimizerStatusInfo,
    pub indexed_vectors_count: usize,
    pub points_count: usize,
    pub segments_count: usize,
    pub config: CollectionConfig,
    pub payload_schema: serde_json::Map<String, serde_json::Value>,
}

/// Resource use of a collection, for `Database::health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CollectionStats {
    pub name: String,
    pub points: usize,
    pub segments: usize,
    pub indexed_vectors: usize,
    pub ram_bytes: usize,
    pub disk_bytes: u64,
    pub wal_bytes: u64,
    pub optimizing: bool,
    pub optimizer_error: Option<String>,
    /// Vector data by kind and place.
    #[serde(default)]
    pub memory: MemoryStats,
}

/// Bytes of vector data of a collection: original vectors, quantized codes (with their trained
/// parameters) and HNSW graphs, held in RAM or memory-mapped from disk (the page cache decides how much
/// of a mapped file is resident).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MemoryStats {
    pub vectors_ram_bytes: usize,
    pub vectors_disk_bytes: usize,
    pub quantized_ram_bytes: usize,
    pub quantized_disk_bytes: usize,
    pub graphs_ram_bytes: usize,
}

impl MemoryStats {
    pub fn add(&mut self, m: &grape_shard::segment::VectorMemory) {
        self.vectors_ram_bytes += m.vectors_ram;
        self.vectors_disk_bytes += m.vectors_disk;
        self.quantized_ram_bytes += m.codes_ram;
        self.quantized_disk_bytes += m.codes_disk;
        self.graphs_ram_bytes += m.graphs_ram;
    }
}
