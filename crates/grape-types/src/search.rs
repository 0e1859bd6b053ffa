//! Search, scroll and count requests.

use serde::{Deserialize, Serialize};

use crate::{Filter, PointId, Record, WithPayload, WithVector, DEFAULT_VECTOR_NAME};

/// Per-request search knobs (Qdrant's `params`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SearchParams {
    /// Size of the HNSW candidate list; defaults to the collection's `ef_construct`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hnsw_ef: Option<usize>,
    /// Exact (brute force) search instead of the index.
    #[serde(default)]
    pub exact: bool,
    /// How quantized vectors are used (ignored for vectors without quantization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<crate::QuantizationSearchParams>,
}

/// Nearest-neighbour search over one dense vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SearchRequest {
    /// Which vector to search (`""` for the unnamed vector).
    #[serde(default)]
    pub using: String,
    pub vector: Vec<f32>,
    pub limit: usize,
    #[serde(default)]
    pub offset: usize,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default)]
    pub params: SearchParams,
    #[serde(default)]
    pub with_payload: WithPayload,
    #[serde(default)]
    pub with_vector: WithVector,
    /// Only points passing this filter are returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

impl SearchRequest {
    pub fn new(vector: Vec<f32>, limit: usize) -> Self {
        SearchRequest {
            using: DEFAULT_VECTOR_NAME.to_string(),
            vector,
            limit,
            offset: 0,
            score_threshold: None,
            params: SearchParams::default(),
            with_payload: WithPayload::default(),
            with_vector: WithVector::default(),
            filter: None,
        }
    }
}

/// Search by a sparse vector: every point sharing an index with the query, ranked by dot product.
pub type SparseSearchRequest = NamedVectorSearch<crate::SparseVector>;

/// Search by a multivector (rows of the vector's size): points ranked by MaxSim, exactly.
pub type MultiSearchRequest = NamedVectorSearch<Vec<Vec<f32>>>;

/// Search of a named vector that is not a single dense vector (sparse vectors, multivectors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NamedVectorSearch<V> {
    /// Which vector to search.
    pub using: String,
    pub vector: V,
    pub limit: usize,
    #[serde(default)]
    pub offset: usize,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default)]
    pub with_payload: WithPayload,
    #[serde(default)]
    pub with_vector: WithVector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

impl<V> NamedVectorSearch<V> {
    pub fn new(using: impl Into<String>, vector: V, limit: usize) -> Self {
        NamedVectorSearch {
            using: using.into(),
            vector,
            limit,
            offset: 0,
            score_threshold: None,
            with_payload: WithPayload::default(),
            with_vector: WithVector::default(),
            filter: None,
        }
    }
}

/// Page through points in id order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ScrollRequest {
    /// First id to return (inclusive); `None` starts at the beginning.
    #[serde(default)]
    pub offset: Option<PointId>,
    #[serde(default = "default_scroll_limit")]
    pub limit: usize,
    #[serde(default = "enabled_payload")]
    pub with_payload: WithPayload,
    #[serde(default)]
    pub with_vector: WithVector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

fn default_scroll_limit() -> usize {
    10
}

fn enabled_payload() -> WithPayload {
    WithPayload::Enable(true)
}

impl Default for ScrollRequest {
    fn default() -> Self {
        ScrollRequest {
            offset: None,
            limit: default_scroll_limit(),
            with_payload: enabled_payload(),
            with_vector: WithVector::default(),
            filter: None,
        }
    }
}

/// A page of points and the id to pass as `offset` for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ScrollResult {
    pub points: Vec<Record>,
    pub next_page_offset: Option<PointId>,
}

/// Count points (exactly).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CountRequest {
    #[serde(default = "yes")]
    pub exact: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

fn yes() -> bool {
    true
}
