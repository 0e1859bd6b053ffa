//! A collection: its configuration and its shards. Validates and normalises input, routes points to
//! shards by slot (`slot = hash(id) mod 65536`), fans reads out to shards and merges the results.
//!
//! Most users reach this through the `grape` crate's `Database`.

pub mod collection;
pub mod info;
pub mod shard_access;
pub mod slots;
pub mod validate;

pub use collection::{Collection, FilterWatch, ShardHandle, UpdateResult, UpdateStatus};
pub use info::{CollectionInfo, CollectionStats, CollectionStatus, MemoryStats};
pub use shard_access::{PendingUpdate, ShardAccess};
pub use slots::SlotTable;
