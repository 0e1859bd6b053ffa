//! Collection and full snapshots: single tar files under `<storage>/snapshots/`, each with a SHA-256
//! checksum file beside it, and recovery of a collection from one. Layout and crash behaviour are in
//! docs/format.md, "Snapshots".
//!
//! - `<storage>/snapshots/<collection>/<collection>-<UTC time>.snapshot`: a collection snapshot (its
//!   config and every shard's snapshot, [`archive`]).
//! - `<storage>/snapshots/full-<UTC time>.snapshot`: a full snapshot (every collection's snapshot and the
//!   aliases).

mod archive;
mod files;
mod recovery;
mod shard;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use grape_types::{Error, Result};

pub use files::SnapshotDescription;
pub(crate) use recovery::{finish_interrupted, Recovery};

use crate::Database;
use files::TMP_EXT;

const SNAPSHOTS_DIR: &str = "snapshots";
const FULL_PREFIX: &str = "full";

/// Removes files an interrupted snapshot left in `<root>/snapshots` (called at open).
pub(crate) fn remove_leftovers(root: &Path) -> Result<()> {
    // Depth 3: `<collection>/shards/<shard>/` holds shard snapshots.
    files::remove_leftovers(&root.join(SNAPSHOTS_DIR), 3)
}

/// Checks the SHA-256 of a snapshot file against the one a caller expects.
fn verify_checksum(file: &Path, expected: &str) -> Result<()> {
    let actual = files::sha256_file(file)?;
    if !actual.eq_ignore_ascii_case(expected.trim()) {
        return Err(Error::bad_input(format!(
            "Snapshot checksum mismatch: expected {expected}, got {actual}"
        )));
    }
    Ok(())
}

impl Database {
    /// `<storage>/snapshots`: where snapshots are written and uploads are spooled.
    pub fn snapshots_path(&self) -> PathBuf {
        self.path().join(SNAPSHOTS_DIR)
    }

    /// The snapshot directory of a collection (by name or alias) and its real name.
    fn collection_snapshots(
        &self,
        collection: &str,
    ) -> Result<(std::sync::Arc<grape_collection::Collection>, PathBuf)> {
        let c = self.collection(collection)?;
        let dir = self.snapshots_path().join(c.name());
        Ok((c, dir))
    }

    /// Snapshots a collection: every write acknowledged before the call is included.
    pub fn create_collection_snapshot(&self, collection: &str) -> Result<SnapshotDescription> {
        let (c, dir) = self.collection_snapshots(collection)?;
        files::create(&dir, c.name(), |out, scratch| archive::write_collection(&c, out, scratch))
    }

    /// The snapshots of a collection, oldest first.
    pub fn list_collection_snapshots(&self, collection: &str) -> Result<Vec<SnapshotDescription>> {
        files::list(&self.collection_snapshots(collection)?.1)
    }

    /// Deletes a collection snapshot; [`Error::NotFound`] if there is none of that name.
    pub fn delete_collection_snapshot(&self, collection: &str, name: &str) -> Result<()> {
        files::remove(&self.collection_snapshots(collection)?.1, name)
    }

    /// The file of a collection snapshot (to download it); [`Error::NotFound`] if there is none.
    pub fn collection_snapshot_path(&self, collection: &str, name: &str) -> Result<PathBuf> {
        files::existing(&self.collection_snapshots(collection)?.1, name)
    }

    /// A fresh path inside the snapshots directory for spooling an uploaded or downloaded snapshot. The
    /// caller removes the file; one left by a crash is removed at the next open.
    pub fn snapshot_spool_path(&self) -> Result<PathBuf> {
        let dir = self.snapshots_path();
        grape_shard::files::create_dir_durable(&dir)?;
        Ok(dir.join(format!("upload-{}{TMP_EXT}", files::unique_token())))
    }

    /// Replaces the data of collection `collection` with the snapshot in `file` (creating the collection
    /// if it does not exist; the snapshot may come from a collection of another name). With `checksum`,
    /// the file's SHA-256 must match first. A crash leaves either the old or the recovered collection.
    /// Aliases of the collection stay. A damaged snapshot is an error and leaves the collection as it was.
    pub fn recover_collection_snapshot(
        &self,
        collection: &str,
        file: &Path,
        checksum: Option<&str>,
    ) -> Result<()> {
        if let Some(expected) = checksum {
            verify_checksum(file, expected)?;
        }
        let recovery = Recovery::stage(self.path(), collection, file)?;
        self.install_recovered(recovery)
    }

    /// Snapshots every collection and the aliases into one file.
    pub fn create_full_snapshot(&self) -> Result<SnapshotDescription> {
        let aliases: BTreeMap<String, String> =
            self.list_aliases()?.into_iter().map(|a| (a.alias_name, a.collection_name)).collect();
        let mut collections = Vec::new();
        for name in self.list_collections()? {
            match self.collection(&name) {
                Ok(c) => collections.push(c),
                Err(Error::NotFound(_)) => {} // deleted meanwhile
                Err(e) => return Err(e),
            }
        }
        files::create(&self.snapshots_path(), FULL_PREFIX, |out, scratch| {
            archive::write_full(out, &collections, aliases, scratch)
        })
    }

    /// Full snapshots, oldest first.
    pub fn list_full_snapshots(&self) -> Result<Vec<SnapshotDescription>> {
        self.check_open()?;
        files::list(&self.snapshots_path())
    }

    /// Deletes a full snapshot; [`Error::NotFound`] if there is none of that name.
    pub fn delete_full_snapshot(&self, name: &str) -> Result<()> {
        self.check_open()?;
        files::remove(&self.snapshots_path(), name)
    }

    /// The file of a full snapshot (to download it); [`Error::NotFound`] if there is none.
    pub fn full_snapshot_path(&self, name: &str) -> Result<PathBuf> {
        self.check_open()?;
        files::existing(&self.snapshots_path(), name)
    }
}

#[cfg(test)]
mod tests;
