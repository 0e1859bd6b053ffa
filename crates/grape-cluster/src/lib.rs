//! Grape's cluster layer (DESIGN.md section 5). Several `grape serve` nodes form one database:
//!
//! - a **metadata group** (openraft, all nodes; up to five voters, the rest learners) whose state
//!   machine holds the peers, the collections with their configurations, and the placement of each
//!   shard's replicas (rendezvous hashing over the peers when the collection is created);
//! - one **replica group per shard** (openraft; multi-raft over one transport): the group's log is the
//!   shard's operation log, the shard engine is its state machine, Raft snapshots are shard snapshots;
//! - the **internal service** (tonic, one unary call) carrying the Raft RPCs of all groups, writes
//!   forwarded to a group's leader, reads sent to a replica, and joins;
//! - a **reconciler** on every node that makes it hold what the metadata declares, and a
//!   [`grape::Catalog`] through which the node's [`grape::Database`] creates, reconfigures and deletes
//!   collections; the database's collections route each shard through a `ClusterShard` handle, so
//!   the whole engine API (search, query, scroll, ...) works unchanged over the cluster.
//!
//! Raft logs and state of all groups live in one redb file per node (`<data>/cluster/raft.redb`);
//! replicas under `<data>/cluster/collections/<collection id>/<shard>/`.

mod beats;
mod handle;
mod log_store;
mod log_writer;
pub mod meta;
mod node;
mod reads;
mod reconcile;
mod replica;
mod service;
mod shard_handle;
mod transport;
pub mod types;

/// Generated from proto/internal.proto.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub(crate) mod pb {
    tonic::include_proto!("grape.internal");
}

pub use handle::NodeHandle;
pub use node::{ClusterNode, ClusterOptions, MAX_VOTERS};
pub use types::NodeId;
