//! Grape embedded: a synchronous, thread-safe vector database that stores its data in one directory.
//! No async runtime is involved; every call runs on the caller's thread (plus Grape's own background
//! threads for flushing and index building).
//!
//! ```
//! use grape::{Database, CreateCollection, VectorsConfig, VectorParams, Distance, PointStruct, SearchRequest};
//! # fn main() -> grape::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let db = Database::open(dir.path())?;
//! db.create_collection("docs", CreateCollection::new(VectorsConfig::Single(VectorParams::new(3, Distance::Cosine))))?;
//! let docs = db.collection("docs")?;
//! docs.upsert(vec![PointStruct::new(1, vec![1.0, 0.0, 0.0]), PointStruct::new(2, vec![0.0, 1.0, 0.0])])?;
//! let hits = docs.search(&SearchRequest::new(vec![0.9, 0.1, 0.0], 1))?;
//! assert_eq!(hits[0].id, grape::PointId::Num(1));
//! db.close()?;
//! # Ok(()) }
//! ```
//!
//! Filters are Qdrant's JSON filters ([`Filter`]), which can also be written as Grape filter expressions
//! ([`filter_expr`]):
//!
//! ```
//! let f: grape::Filter = r#"city = "Paris" AND (price < 100 OR tags IN ["sale"])"#.parse()?;
//! assert_eq!(f, grape::Filter::from_expression(&f.to_expression())?);
//! # Ok::<(), grape::Error>(())
//! ```

mod database;
mod meta;
pub mod query;
mod snapshot;

pub use database::{
    drop_shard_key, Catalog, CatalogHandle, ClusterMetrics, CreateShardKey, Database, DatabaseConfig, Health,
    HealthState,
};
pub use grape_collection::{
    Collection, CollectionInfo, CollectionStats, CollectionStatus, MemoryStats, UpdateResult, UpdateStatus,
};
pub use grape_shard::wal::SyncPolicy;
pub use grape_types::*;
pub use snapshot::SnapshotDescription;
