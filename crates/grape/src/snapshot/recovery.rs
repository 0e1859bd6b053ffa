//! Recovering a collection from a snapshot so that a crash at any point leaves either the old or the new
//! collection (docs/format.md, "Recovering a snapshot"):
//!
//! 1. unpack into `<storage>/recovery/<token>/collection/`, open it once (every manifest and segment
//!    file is checked) and fsync the whole tree;
//! 2. under the database lock, close the live collection (in-flight writes finish and are flushed);
//! 3. write `<storage>/recovery/<token>/commit.json` durably: **the commit point**;
//! 4. replace `collections/<name>` with the staged directory (remove, rename, fsync);
//! 5. store the config in the metadata; 6. remove the recovery directory; 7. open the new collection.
//!
//! A crash before 3 leaves the old collection; `Database::open` removes the uncommitted directory. A crash
//! after 3 is rolled forward by `Database::open`, which repeats 4 to 6 (each is idempotent).

use std::fs;
use std::path::{Path, PathBuf};

use grape_collection::Collection;
use grape_shard::files::{create_dir_durable, fsync_dir};
use grape_shard::ShardOptions;
use grape_types::{CollectionConfig, Error, Result};
use serde::{Deserialize, Serialize};

use super::archive;
use super::files::{fsync_tree, unique_token, write_durable, TempPath};
use crate::meta::MetaStore;

const RECOVERY_DIR: &str = "recovery";
const DATA_DIR: &str = "collection";
const COMMIT_FILE: &str = "commit.json";

/// `commit.json`: which collection (or which shard of it) the staged directory replaces, and the
/// collection's config.
#[derive(Debug, Serialize, Deserialize)]
struct Commit {
    collection: String,
    config: CollectionConfig,
    /// Set when one shard is recovered: the staged directory is that shard's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shard: Option<u32>,
}

/// A collection unpacked from a snapshot, waiting to replace (or become) a live collection.
pub(crate) struct Recovery {
    /// Removed on drop until committed.
    dir: Option<TempPath>,
    committed_dir: PathBuf,
    collection: String,
    config: CollectionConfig,
    /// The shard recovered, when only one is.
    shard: Option<u32>,
}

impl Recovery {
    /// Step 1: unpacks the snapshot `file` for collection `collection`, verifies it by opening it, and
    /// makes it durable. Nothing outside the staging directory is touched.
    pub(crate) fn stage(root: &Path, collection: &str, file: &Path) -> Result<Recovery> {
        Self::staged(root, collection, None, |data| {
            let config = archive::unpack_collection(file, data)?;
            // Opening replays nothing (a restored shard has no WAL) but checks every manifest and segment
            // file, so a damaged snapshot fails here, before the live collection is touched.
            let options = ShardOptions { background: false, ..ShardOptions::default() };
            let staged = Collection::open(collection, data, config.clone(), options).map_err(|e| {
                Error::bad_input(format!("snapshot {} does not open as a collection: {e}", file.display()))
            })?;
            staged.close()?;
            Ok(config)
        })
    }

    /// Step 1 for one shard: unpacks the shard snapshot `file`, verifies it by opening it with the
    /// collection's `config` (its vectors must be the collection's), and makes it durable.
    pub(crate) fn stage_shard(
        root: &Path,
        collection: &str,
        config: CollectionConfig,
        shard: u32,
        file: &Path,
    ) -> Result<Recovery> {
        Self::staged(root, collection, Some(shard), |data| {
            let damaged = |e: &dyn std::fmt::Display| {
                Error::bad_input(format!(
                    "snapshot {} is damaged or not a Grape shard snapshot: {e}",
                    file.display()
                ))
            };
            let input = fs::File::open(file).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    Error::not_found(format!("Snapshot file {} does not exist", file.display()))
                }
                _ => Error::io(format!("open {}", file.display()), e),
            })?;
            grape_shard::snapshot::restore(data, &mut std::io::BufReader::with_capacity(1 << 20, input))
                .map_err(|e| damaged(&e))?;
            let engine = grape_shard::ShardEngine::open(data, config.clone()).map_err(|e| damaged(&e))?;
            if engine.config().vector_shapes() != config.vector_shapes() {
                return Err(Error::bad_input(format!(
                    "snapshot {} holds other vectors than collection `{collection}`",
                    file.display()
                )));
            }
            Ok(config)
        })
    }

    /// Stages into a fresh `recovery/<token>/collection/` what `fill` writes there (it returns the
    /// collection's config), then fsyncs the whole staging directory.
    fn staged(
        root: &Path,
        collection: &str,
        shard: Option<u32>,
        fill: impl FnOnce(&Path) -> Result<CollectionConfig>,
    ) -> Result<Recovery> {
        let parent = root.join(RECOVERY_DIR);
        create_dir_durable(&parent)?;
        let dir = TempPath::new(parent.join(unique_token()));
        let config = fill(&dir.path().join(DATA_DIR))?;
        fsync_tree(dir.path())?;
        fsync_dir(&parent)?;
        let committed_dir = dir.path().to_path_buf();
        Ok(Recovery { dir: Some(dir), committed_dir, collection: collection.to_string(), config, shard })
    }

    /// The shard recovered, when only one is.
    pub(crate) fn shard(&self) -> Option<u32> {
        self.shard
    }

    pub(crate) fn collection(&self) -> &str {
        &self.collection
    }

    pub(crate) fn config(&self) -> &CollectionConfig {
        &self.config
    }

    /// Step 3, the commit point: from here on the staged collection replaces the live one, if not now
    /// then at the next open.
    pub(crate) fn commit(&mut self) -> Result<()> {
        let commit =
            Commit { collection: self.collection.clone(), config: self.config.clone(), shard: self.shard };
        let json =
            serde_json::to_vec(&commit).map_err(|e| Error::Internal(format!("recovery commit: {e}")))?;
        write_durable(&self.committed_dir.join(COMMIT_FILE), &json)?;
        if let Some(dir) = self.dir.take() {
            dir.keep();
        }
        Ok(())
    }

    /// Step 4: `collections/<name>` (or its `shards/<shard>`) becomes the staged directory. Idempotent:
    /// once the staged directory has been renamed, the live one is the new one and is left alone.
    pub(crate) fn move_into_place(&self, collection_dir: &Path) -> Result<()> {
        let staged = self.committed_dir.join(DATA_DIR);
        if !staged.exists() {
            return Ok(());
        }
        let shard_dir = self.shard.map(|i| collection_dir.join("shards").join(i.to_string()));
        let collection_dir = shard_dir.as_deref().unwrap_or(collection_dir);
        if collection_dir.exists() {
            fs::remove_dir_all(collection_dir)
                .map_err(|e| Error::io(format!("remove {}", collection_dir.display()), e))?;
        }
        fs::rename(&staged, collection_dir).map_err(|e| {
            Error::io(format!("rename {} into {}", staged.display(), collection_dir.display()), e)
        })?;
        fsync_dir(collection_dir.parent().unwrap_or(Path::new(".")))
    }

    /// Step 6: removes the recovery directory.
    pub(crate) fn finish(self) -> Result<()> {
        fs::remove_dir_all(&self.committed_dir)
            .map_err(|e| Error::io(format!("remove {}", self.committed_dir.display()), e))?;
        fsync_dir(self.committed_dir.parent().unwrap_or(Path::new(".")))
    }
}

/// At open, before the metadata is read: rolls committed recoveries forward (steps 4 to 6) and removes
/// uncommitted ones. `collection_dir` maps a collection name to its directory.
pub(crate) fn finish_interrupted(
    root: &Path,
    meta_store: &MetaStore,
    collection_dir: impl Fn(&str) -> PathBuf,
) -> Result<()> {
    let parent = root.join(RECOVERY_DIR);
    let entries = match fs::read_dir(&parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("list {}", parent.display()), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("list {}", parent.display()), e))?;
        let dir = entry.path();
        let commit = match fs::read(dir.join(COMMIT_FILE)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %dir.display(), "removing an uncommitted snapshot recovery");
                fs::remove_dir_all(&dir).map_err(|e| Error::io(format!("remove {}", dir.display()), e))?;
                continue;
            }
            Err(e) => return Err(Error::io(format!("read {}", dir.join(COMMIT_FILE).display()), e)),
        };
        let commit: Commit = serde_json::from_slice(&commit)
            .map_err(|e| Error::Corruption(format!("{}: {e}", dir.join(COMMIT_FILE).display())))?;
        tracing::warn!(collection = commit.collection, "finishing an interrupted snapshot recovery");
        let recovery = Recovery {
            dir: None,
            committed_dir: dir,
            collection: commit.collection,
            config: commit.config,
            shard: commit.shard,
        };
        recovery.move_into_place(&collection_dir(&recovery.collection))?;
        let prev = meta_store.load()?;
        let mut next = prev.clone();
        next.collections.insert(recovery.collection.clone(), recovery.config.clone());
        meta_store.store(&prev, &next)?;
        recovery.finish()?;
    }
    fsync_dir(&parent)
}
