//! Shard snapshots: a tar archive of the manifest and the segment directories it names, describing the
//! state at the manifest's persisted op_num. Restoring unpacks it into an empty directory.

use std::io::{Read, Write};
use std::path::{Component, Path};

use grape_types::{Error, OpNum, Result};

use crate::engine::ShardEngine;
use crate::manifest::{self, Manifest};

impl ShardEngine {
    /// Writes a snapshot of the persisted state to `out` and returns its op_num. Call `flush` first to
    /// include every applied operation.
    pub fn snapshot(&self, out: &mut dyn Write) -> Result<OpNum> {
        let _flush = self.flush_lock.lock();
        let manifest = Manifest::load(self.dir())?.unwrap_or_default();
        let mut tar = tar::Builder::new(out);
        let io = |e: std::io::Error| Error::io("write snapshot", e);
        if self.dir().join(manifest::FILE_NAME).exists() {
            tar.append_path_with_name(self.dir().join(manifest::FILE_NAME), manifest::FILE_NAME)
                .map_err(io)?;
        }
        for seg in &manifest.segments {
            let rel = format!("segments/{}", seg.id);
            tar.append_dir_all(&rel, self.dir().join(&rel)).map_err(io)?;
        }
        tar.finish().map_err(io)?;
        Ok(manifest.persisted_op)
    }
}

/// Unpacks a shard snapshot into `dir`, which must not hold a shard yet. Returns the snapshot's op_num.
pub fn restore(dir: &Path, input: &mut dyn Read) -> Result<OpNum> {
    if dir.join(manifest::FILE_NAME).exists() {
        return Err(Error::bad_input(format!("{} already holds a shard", dir.display())));
    }
    crate::files::create_dir_durable(dir)?;
    let mut archive = tar::Archive::new(input);
    let entries = archive.entries().map_err(|e| Error::io("read snapshot", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io("read snapshot", e))?;
        let path = entry.path().map_err(|e| Error::io("read snapshot", e))?.to_path_buf();
        let allowed = path.components().all(|c| matches!(c, Component::Normal(_)))
            && (path == Path::new(manifest::FILE_NAME) || path.starts_with("segments"));
        if !allowed {
            return Err(Error::bad_input(format!("snapshot holds an unexpected entry {}", path.display())));
        }
        entry.unpack_in(dir).map_err(|e| Error::io(format!("unpack {}", path.display()), e))?;
    }
    crate::files::fsync_dir(dir)?;
    Ok(Manifest::load(dir)?.map_or(0, |m| m.persisted_op))
}
