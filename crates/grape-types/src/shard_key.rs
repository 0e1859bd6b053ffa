//! Custom sharding (Qdrant's `sharding_method: custom`): shard keys, the selector of reads and writes,
//! and the layout that records which shards belong to which key.
//!
//! A collection with custom sharding starts without shards; each shard key created gets its own
//! shards (ids unique within the collection and never reused), and points are routed by slot among
//! the shards of the key a write names.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `sharding_method` of a collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ShardingMethod {
    /// Points are spread over `shard_number` shards by the hash of their id.
    #[default]
    Auto,
    /// Shards belong to user-defined shard keys; writes name the key.
    Custom,
}

/// A user-defined shard key: a string or a non-negative integer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum ShardKey {
    Number(u64),
    Keyword(String),
}

impl std::fmt::Display for ShardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardKey::Number(n) => write!(f, "{n}"),
            ShardKey::Keyword(k) => f.write_str(k),
        }
    }
}

impl From<&str> for ShardKey {
    fn from(s: &str) -> Self {
        ShardKey::Keyword(s.to_string())
    }
}

impl From<u64> for ShardKey {
    fn from(n: u64) -> Self {
        ShardKey::Number(n)
    }
}

/// The `shard_key` of a request: one key, several keys, or a target key with a fallback used when
/// the target does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum ShardKeySelector {
    One(ShardKey),
    Many(Vec<ShardKey>),
    WithFallback(ShardKeyWithFallback),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ShardKeyWithFallback {
    pub target: ShardKey,
    pub fallback: ShardKey,
}

impl From<ShardKey> for ShardKeySelector {
    fn from(key: ShardKey) -> Self {
        ShardKeySelector::One(key)
    }
}

/// The shards of one shard key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyShards {
    pub key: ShardKey,
    /// Shard ids, in slot-table order: a point of this key goes to `shards[slot_table(len).shard_for(id)]`.
    pub shards: Vec<u32>,
}

/// Which shards belong to which key (custom sharding), stored with the collection's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardKeyLayout {
    /// In creation order.
    pub keys: Vec<KeyShards>,
    /// The id the next created shard gets: ids are never reused, so a shard directory or replica
    /// group left over from a dropped key can never be mistaken for a new shard.
    pub next_shard: u32,
}

impl ShardKeyLayout {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.next_shard == 0
    }

    pub fn get(&self, key: &ShardKey) -> Option<&KeyShards> {
        self.keys.iter().find(|k| &k.key == key)
    }

    /// Every shard id of every key.
    pub fn shard_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().flat_map(|k| k.shards.iter().copied())
    }

    /// The key owning shard `id`.
    pub fn key_of(&self, id: u32) -> Option<&ShardKey> {
        self.keys.iter().find(|k| k.shards.contains(&id)).map(|k| &k.key)
    }

    /// Adds `key` with `shards` new shards; returns their ids.
    pub fn add(&mut self, key: ShardKey, shards: u32) -> Result<Vec<u32>> {
        if self.get(&key).is_some() {
            return Err(Error::bad_input(format!("Shard key {key} already exists")));
        }
        if shards == 0 {
            return Err(Error::bad_input("shards_number: must be at least 1"));
        }
        let first = self.next_shard;
        let end = first
            .checked_add(shards)
            .filter(|&end| end <= u32::from(u16::MAX))
            .ok_or_else(|| Error::bad_input("too many shards in this collection"))?;
        let ids: Vec<u32> = (first..end).collect();
        self.keys.push(KeyShards { key, shards: ids.clone() });
        self.next_shard = end;
        Ok(ids)
    }

    /// Removes `key`; returns the ids of its shards.
    pub fn remove(&mut self, key: &ShardKey) -> Result<Vec<u32>> {
        let at = self.keys.iter().position(|k| &k.key == key).ok_or_else(|| not_found(key))?;
        Ok(self.keys.remove(at).shards)
    }
}

/// Qdrant's answer to a shard key that does not exist.
pub fn not_found(key: &ShardKey) -> Error {
    Error::bad_input(format!("Shard key {key} not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_selectors_parse_as_qdrant_writes_them() {
        let k: ShardKey = serde_json::from_str("7").unwrap();
        assert_eq!(k, ShardKey::Number(7));
        let k: ShardKey = serde_json::from_str("\"eu\"").unwrap();
        assert_eq!(k, ShardKey::Keyword("eu".into()));
        assert!(serde_json::from_str::<ShardKey>("-1").is_err());
        let s: ShardKeySelector = serde_json::from_str("[1, \"a\"]").unwrap();
        assert_eq!(s, ShardKeySelector::Many(vec![1.into(), "a".into()]));
        let s: ShardKeySelector = serde_json::from_str(r#"{"target": "a", "fallback": 2}"#).unwrap();
        assert_eq!(
            s,
            ShardKeySelector::WithFallback(ShardKeyWithFallback { target: "a".into(), fallback: 2.into() })
        );
    }

    #[test]
    fn layout_never_reuses_shard_ids() {
        let mut l = ShardKeyLayout::default();
        assert_eq!(l.add("a".into(), 2).unwrap(), vec![0, 1]);
        assert!(l.add("a".into(), 1).is_err());
        assert_eq!(l.remove(&"a".into()).unwrap(), vec![0, 1]);
        assert_eq!(l.add("a".into(), 1).unwrap(), vec![2]);
        assert_eq!(l.key_of(2), Some(&"a".into()));
        assert!(l.remove(&ShardKey::Number(5)).is_err());
    }
}
