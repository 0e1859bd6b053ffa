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

/// A write forwarded to a shard group's leader, and when to acknowledge it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardWrite {
    #[serde(with = "serde_bytes")]
    pub op: Vec<u8>,
    pub ack: grape::WriteAck,
}

/// A write to one shard: an operation encoded by grape-shard's operation codec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCommand {
    /// Serialized as one byte string: postcard writes the same bytes as for a `Vec<u8>` (length, then
    /// the bytes), so Raft logs written before are read unchanged, but copies them in one piece instead
    /// of visiting every byte (a batch of 256 128-d points is ~130 KB, encoded and decoded on every
    /// append, replication and apply).
    #[serde(with = "serde_bytes")]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-string encoding of `ShardCommand::op` is the bytes postcard wrote for the plain
    /// `Vec<u8>` field it replaced, so existing Raft logs still decode.
    #[test]
    fn shard_command_encoding_is_unchanged() {
        #[derive(Serialize, Deserialize)]
        struct PlainVec {
            op: Vec<u8>,
        }
        for len in [0usize, 1, 127, 128, 300, 70_000] {
            let op: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let new = postcard::to_allocvec(&ShardCommand { op: op.clone() }).unwrap();
            let old = postcard::to_allocvec(&PlainVec { op: op.clone() }).unwrap();
            assert_eq!(new, old, "length {len}");
            let back: ShardCommand = postcard::from_bytes(&old).unwrap();
            assert_eq!(back.op, op);
        }
    }
}
