//! Raft type configurations of the two kinds of groups, and the values their logs carry.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

pub type NodeId = u64;

/// Group 0 is the metadata group; a shard group's id is `collection_id << 16 | shard`.
pub type GroupId = u64;

pub const META_GROUP: GroupId = 0;

pub fn shard_group(collection_id: u64, shard: u32) -> GroupId {
    (collection_id << 16) | u64::from(shard)
}

/// How other nodes reach a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerNode {
    /// Internal (p2p) address, e.g. `http://10.0.0.2:6335`.
    pub p2p: String,
    /// Public REST address of the node, when known (reported by `GET /cluster`).
    pub api: String,
}

impl std::fmt::Display for PeerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.p2p)
    }
}

/// A change of cluster metadata, proposed to the metadata group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// A node joined (or changed its addresses).
    AddPeer {
        id: NodeId,
        node: PeerNode,
    },
    RemovePeer {
        id: NodeId,
    },
    /// `config` is the collection's configuration as JSON (it holds free-form JSON, which the log's
    /// binary encoding cannot carry directly). Placement is computed when the entry is applied.
    CreateCollection {
        name: String,
        config: String,
    },
    DeleteCollection {
        name: String,
    },
    UpdateConfig {
        name: String,
        config: String,
    },
    /// The nodes that hold a shard from now on. The shard group's leader changes the group's
    /// membership to follow (new replicas join as learners, catch up, then vote).
    SetReplicas {
        name: String,
        shard: u32,
        replicas: Vec<NodeId>,
    },
    /// A new shard key of a custom-sharded collection: `request` is a `grape::CreateShardKey` as JSON
    /// (a shard key is a string or a number, which the log's binary encoding cannot tell apart). The
    /// key's shards get the next shard ids and are placed when the entry is applied.
    CreateShardKey {
        name: String,
        request: String,
    },
    /// Drops a shard key (`key` as JSON); its shards lose every replica.
    DeleteShardKey {
        name: String,
        key: String,
    },
}

/// Why a metadata command was refused when applied (reported to the proposer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaRefusal {
    AlreadyExists(String),
    NotFound(String),
    BadInput(String),
}

/// What applying a metadata command answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaResponse {
    pub error: Option<MetaRefusal>,
}

/// A write to one shard: an operation encoded by grape-shard's operation codec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCommand {
    pub op: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardResponse {
    pub error: Option<String>,
}

openraft::declare_raft_types!(
    /// The metadata group: peers, collections, placement.
    pub MetaTc:
        D = MetaCommand,
        R = MetaResponse,
        NodeId = NodeId,
        Node = PeerNode,
        Entry = openraft::Entry<MetaTc>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

openraft::declare_raft_types!(
    /// A shard's replica group: its log is the shard's operation log.
    pub ShardTc:
        D = ShardCommand,
        R = ShardResponse,
        NodeId = NodeId,
        Node = PeerNode,
        Entry = openraft::Entry<ShardTc>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);
