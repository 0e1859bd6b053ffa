//! Shard snapshots: one shard of a collection as a single file (the shard's own snapshot: its
//! manifest and segments, docs/format.md "Shard snapshot"), stored under
//! `<storage>/snapshots/<collection>/shards/<shard>/`, and recovery of one shard from such a file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use grape_shard::LocalShard;
use grape_types::{Error, Result};

use super::files;
use super::SnapshotDescription;
use crate::Database;

impl Database {
    /// The shard `shard` of a collection held by this process, and the directory of its snapshots.
    fn shard_snapshots(&self, collection: &str, shard: u32) -> Result<(Arc<LocalShard>, String, PathBuf)> {
        let c = self.collection(collection)?;
        let handle = c.shards().into_iter().find(|h| h.id == shard).ok_or_else(|| {
            Error::not_found(format!("Shard {shard} of collection `{collection}` doesn't exist"))
        })?;
        let local = handle.shard.local().ok_or_else(|| {
            Error::bad_input(format!("shard {shard} of collection `{collection}` is not held by this node"))
        })?;
        let dir = self.snapshots_path().join(c.name()).join("shards").join(shard.to_string());
        Ok((local, c.name().to_string(), dir))
    }

    /// Writes a snapshot of one shard to `out`: every write acknowledged before the call is included.
    pub fn write_shard_snapshot(&self, collection: &str, shard: u32, out: &mut dyn Write) -> Result<()> {
        let (local, _, _) = self.shard_snapshots(collection, shard)?;
        local.flush()?;
        local.engine().snapshot(out).map(|_| ())
    }

    /// Snapshots one shard of a collection into a file (`<collection>-shard-<shard>-<UTC time>.snapshot`).
    pub fn create_shard_snapshot(&self, collection: &str, shard: u32) -> Result<SnapshotDescription> {
        let (local, name, dir) = self.shard_snapshots(collection, shard)?;
        files::create(&dir, &format!("{name}-shard-{shard}"), |out, _| {
            local.flush()?;
            local.engine().snapshot(out).map(|_| ())
        })
    }

    /// The snapshots of one shard, oldest first.
    pub fn list_shard_snapshots(&self, collection: &str, shard: u32) -> Result<Vec<SnapshotDescription>> {
        files::list(&self.shard_snapshots(collection, shard)?.2)
    }

    /// Deletes a shard snapshot; [`Error::NotFound`] if there is none of that name.
    pub fn delete_shard_snapshot(&self, collection: &str, shard: u32, name: &str) -> Result<()> {
        files::remove(&self.shard_snapshots(collection, shard)?.2, name)
    }

    /// The file of a shard snapshot (to download it).
    pub fn shard_snapshot_path(&self, collection: &str, shard: u32, name: &str) -> Result<PathBuf> {
        files::existing(&self.shard_snapshots(collection, shard)?.2, name)
    }

    /// Replaces the data of shard `shard` of a collection with the shard snapshot in `file` (with
    /// `checksum`, its SHA-256 must match first). The snapshot's vectors must be the collection's. The
    /// other shards keep their data; a crash leaves either the old or the recovered shard. A damaged
    /// snapshot is an error and leaves the shard as it was.
    pub fn recover_shard_snapshot(
        &self,
        collection: &str,
        shard: u32,
        file: &Path,
        checksum: Option<&str>,
    ) -> Result<()> {
        let (_, name, _) = self.shard_snapshots(collection, shard)?;
        if let Some(expected) = checksum {
            super::verify_checksum(file, expected)?;
        }
        let config = self.collection(&name)?.config();
        let recovery = super::Recovery::stage_shard(self.path(), &name, config, shard, file)?;
        self.install_recovered(recovery)
    }
}
