//! The shard manifest: the commit point of a flush. It names the sealed segments, their deletion bit
//! sets and the op_num up to which the segments reflect every operation. See docs/format.md, "Manifest".

use std::path::Path;

use grape_types::{Error, OpNum, Result};
use serde::{Deserialize, Serialize};

use crate::files;

const MAGIC: &[u8; 8] = b"GRPMANI\0";
const VERSION: u32 = 1;
pub const FILE_NAME: &str = "manifest.bin";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Every operation with op_num <= this is reflected in the listed segments; none after it is.
    pub persisted_op: OpNum,
    /// Next segment id to allocate; never reused.
    pub next_segment_id: u64,
    pub segments: Vec<ManifestSegment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestSegment {
    pub id: u64,
    /// Deleted offsets as of `persisted_op` (bit set words).
    pub deleted: Vec<u64>,
}

impl Manifest {
    /// Reads the manifest of a shard directory; `None` for a shard that never flushed.
    pub fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            return Ok(None);
        }
        let body = files::read_checked(&path, MAGIC, VERSION)?;
        postcard::from_bytes(&body)
            .map(Some)
            .map_err(|e| Error::Corruption(format!("{}: {e}", path.display())))
    }

    /// Atomically replaces the manifest (temp file, fsync, rename, directory fsync).
    pub fn store(&self, dir: &Path) -> Result<()> {
        let body =
            postcard::to_allocvec(self).map_err(|e| Error::Internal(format!("manifest encoding: {e}")))?;
        files::write_checked(&dir.join(FILE_NAME), MAGIC, VERSION, &body)
    }
}
