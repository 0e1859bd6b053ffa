//! Core types shared by every Grape crate: point ids, vectors, payloads, collection configuration,
//! the [`Operation`] log entry, search requests and results, and the engine error taxonomy.
//!
//! JSON shapes follow Qdrant's public API so that the server can use these types directly.
//!
//! ```
//! use grape_types::{PointId, Distance};
//! let id: PointId = serde_json::from_str("42").unwrap();
//! assert_eq!(id, PointId::Num(42));
//! assert!(Distance::Euclid.is_distance_like());
//! ```

pub mod alias;
pub mod config;
pub mod consistency;
pub mod distance;
pub mod error;
pub mod filter;
pub mod filter_expr;
pub mod json_bytes;
pub mod operation;
pub mod order_by;
pub mod payload_schema;
pub mod point;
pub mod point_id;
pub mod quantization;
pub mod search;
pub mod shard_key;
pub mod sparse;
pub mod text;
pub mod vector_schema;

pub use alias::{AliasDescription, AliasOperation};
pub use config::{
    CollectionConfig, CollectionParams, CreateCollection, Datatype, HnswConfig, HnswConfigDiff,
    MultiVectorComparator, MultiVectorConfig, OptimizersConfig, OptimizersConfigDiff, SparseIndexParams,
    SparseVectorParams, UpdateCollection, VectorParams, VectorParamsDiff, VectorsConfig, WalConfig,
    WalConfigDiff,
};
pub use consistency::{ReadConsistency, WriteAck};
pub use distance::Distance;
pub use error::{Error, Result};
pub use filter::{Condition, FieldCondition, Filter, PointView};
pub use operation::Operation;
pub use order_by::{Direction, OrderBy, OrderValue};
pub use payload_schema::{PayloadFieldSchema, PayloadSchemaParams, PayloadSchemaType};
pub use point::{
    NamedVectors, Payload, PointStruct, Record, ScoredPoint, Vector, VectorOutput, VectorStruct, WithPayload,
    WithVector, DEFAULT_VECTOR_NAME,
};
pub use point_id::PointId;
pub use quantization::{QuantizationConfig, QuantizationConfigDiff, QuantizationSearchParams};
pub use search::{
    CountRequest, MultiSearchRequest, NamedVectorSearch, ScrollRequest, ScrollResult, SearchParams,
    SearchRequest, SparseSearchRequest,
};
pub use shard_key::{ShardKey, ShardKeyLayout, ShardKeySelector, ShardKeyWithFallback, ShardingMethod};
pub use sparse::{Modifier, SparseVector};
pub use vector_schema::{NewDenseVector, NewSparseVector, NewVector, VectorShape};

/// Monotonic sequence number of an applied [`Operation`] within one shard.
pub type OpNum = u64;
