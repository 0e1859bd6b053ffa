//! grape-shard
