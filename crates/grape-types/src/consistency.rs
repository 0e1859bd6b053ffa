//! How up to date a read must be, and how many replicas acknowledge a write: Qdrant's
//! `read_consistency` / `consistency` and `write_consistency_factor` / `ordering`, and what they mean for
//! Grape, where every shard's replicas form one Raft group.
//!
//! Reads: a factor of 1 (Qdrant's default) reads one replica (this node's when it holds one), which may
//! miss the latest writes of its group. Every stronger level (`majority`, `quorum`, `all`, a factor
//! above 1) is a linearizable read: it runs on the group's leader after a read barrier (the leader
//! confirms with a quorum that it still leads and applies everything committed before the read began),
//! so it sees every write acknowledged before it started, which is what those levels ask for.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Qdrant's read consistency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ReadConsistency {
    /// This many replicas must answer; 1 (the default) reads any one.
    Factor(u64),
    All,
    Majority,
    Quorum,
    /// One replica (Qdrant's default, factor 1).
    #[default]
    One,
}

impl ReadConsistency {
    /// Whether reads go through the shard's leader after a read barrier.
    pub fn linearizable(self) -> bool {
        !matches!(self, ReadConsistency::One | ReadConsistency::Factor(0 | 1))
    }

    /// Parses REST's `consistency` query value: `all`, `majority`, `quorum` or a positive integer.
    pub fn parse(s: &str) -> Result<ReadConsistency, Error> {
        match s {
            "all" => Ok(ReadConsistency::All),
            "majority" => Ok(ReadConsistency::Majority),
            "quorum" => Ok(ReadConsistency::Quorum),
            n => match n.parse::<u64>() {
                Ok(0) | Err(_) => Err(Error::bad_input(format!(
                    "consistency: expected all, majority, quorum or a positive number, got {s:?}"
                ))),
                Ok(n) => Ok(ReadConsistency::Factor(n)),
            },
        }
    }
}

/// When a write to a replicated shard is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum WriteAck {
    /// Committed: durable on a majority of the shard's replicas and applied on its leader (Raft's
    /// commit; the default).
    #[default]
    Quorum,
    /// Committed, and durable in the log of every replica of the shard.
    All,
    /// Accepted by the shard's leader into its log; not yet committed (a leader failure before the
    /// commit may lose it).
    Async,
}

impl WriteAck {
    /// The collection's default: `write_consistency_factor` above a majority of `replication_factor`
    /// asks for every replica.
    pub fn of_collection(write_consistency_factor: u32, replication_factor: u32) -> WriteAck {
        if write_consistency_factor > replication_factor / 2 + 1 {
            WriteAck::All
        } else {
            WriteAck::Quorum
        }
    }

    /// Qdrant's per-request `ordering`: `weak` -> async, `medium` -> quorum, `strong` -> all. (Every
    /// write of a shard is ordered by its Raft leader whatever the level; the level chooses when the
    /// write is acknowledged.)
    pub fn of_ordering(ordering: &str) -> Result<WriteAck, Error> {
        match ordering {
            "weak" => Ok(WriteAck::Async),
            "medium" => Ok(WriteAck::Quorum),
            "strong" => Ok(WriteAck::All),
            o => Err(Error::bad_input(format!("ordering: expected weak, medium or strong, got {o:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_levels() {
        assert!(!ReadConsistency::default().linearizable());
        assert!(!ReadConsistency::parse("1").unwrap().linearizable());
        for s in ["all", "majority", "quorum", "2"] {
            assert!(ReadConsistency::parse(s).unwrap().linearizable(), "{s}");
        }
        for s in ["0", "-1", "most", ""] {
            assert!(ReadConsistency::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn write_levels() {
        assert_eq!(WriteAck::of_collection(1, 3), WriteAck::Quorum);
        assert_eq!(WriteAck::of_collection(2, 3), WriteAck::Quorum);
        assert_eq!(WriteAck::of_collection(3, 3), WriteAck::All);
        assert_eq!(WriteAck::of_collection(1, 1), WriteAck::Quorum);
        assert_eq!(WriteAck::of_collection(3, 5), WriteAck::Quorum);
        assert_eq!(WriteAck::of_collection(4, 5), WriteAck::All);
        assert_eq!(WriteAck::of_ordering("weak").unwrap(), WriteAck::Async);
        assert_eq!(WriteAck::of_ordering("strong").unwrap(), WriteAck::All);
        assert!(WriteAck::of_ordering("total").is_err());
    }
}
