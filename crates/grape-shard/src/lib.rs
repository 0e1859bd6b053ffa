//! Grape's shard engine: segments, operation application, flush and recovery, the optimizer, and the
//! local write-ahead log. A shard is the unit of storage and, in cluster mode, of replication.

pub mod engine;
pub mod files;
pub mod local_shard;
pub mod manifest;
pub mod op_codec;
pub mod optimizer;
pub mod payload_ops;
pub mod segment;
pub mod snapshot;
pub mod tracker;
pub mod wal;

pub use engine::{SegmentSet, ShardEngine};
pub use local_shard::{LocalShard, ShardOptions};
