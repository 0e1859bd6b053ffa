//! The shard manifest: the commit point of a flush. It names the sealed segments, their deletion bit
//! sets, the vectors each no longer serves, the shard's vector schema and the op_num up to which the
//! segments reflect every operation. See docs/format.md, "Manifest".

use std::path::Path;

use grape_types::{Error, NewVector, OpNum, Result};
use serde::{Deserialize, Serialize};

use crate::files;

const MAGIC: &[u8; 8] = b"GRPMANI\0";
/// Version 2 added the vector schema and the dropped vectors of each segment.
const VERSION: u32 = 2;
const WITHOUT_SCHEMA: u32 = 1;
pub const FILE_NAME: &str = "manifest.bin";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Every operation with op_num <= this is reflected in the listed segments; none after it is.
    pub persisted_op: OpNum,
    /// Next segment id to allocate; never reused.
    pub next_segment_id: u64,
    pub segments: Vec<ManifestSegment>,
    /// The shard's vectors as of `persisted_op` (names added or dropped through the log). `None` in
    /// version 1 manifests, written before vectors could change: the collection config's then.
    pub vectors: Option<Vec<(String, NewVector)>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestSegment {
    pub id: u64,
    /// Deleted offsets as of `persisted_op` (bit set words).
    pub deleted: Vec<u64>,
    /// Vectors dropped since the segment was written: its files still hold them, readers ignore them
    /// and the optimizer rewrites the segment without them.
    pub dropped: Vec<String>,
}

/// The version 1 layout.
#[derive(Deserialize)]
struct ManifestV1 {
    persisted_op: OpNum,
    next_segment_id: u64,
    segments: Vec<ManifestSegmentV1>,
}

#[derive(Deserialize)]
struct ManifestSegmentV1 {
    id: u64,
    deleted: Vec<u64>,
}

impl Manifest {
    /// Reads the manifest of a shard directory; `None` for a shard that never flushed.
    pub fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            return Ok(None);
        }
        let corrupt = |e: postcard::Error| Error::Corruption(format!("{}: {e}", path.display()));
        let (version, body) = files::read_checked_any(&path, MAGIC, &[WITHOUT_SCHEMA, VERSION])?;
        if version == WITHOUT_SCHEMA {
            let v1: ManifestV1 = postcard::from_bytes(&body).map_err(corrupt)?;
            return Ok(Some(Manifest {
                persisted_op: v1.persisted_op,
                next_segment_id: v1.next_segment_id,
                segments: v1
                    .segments
                    .into_iter()
                    .map(|s| ManifestSegment { id: s.id, deleted: s.deleted, dropped: Vec::new() })
                    .collect(),
                vectors: None,
            }));
        }
        postcard::from_bytes(&body).map(Some).map_err(corrupt)
    }

    /// Atomically replaces the manifest (temp file, fsync, rename, directory fsync).
    pub fn store(&self, dir: &Path) -> Result<()> {
        let body =
            postcard::to_allocvec(self).map_err(|e| Error::Internal(format!("manifest encoding: {e}")))?;
        files::write_checked(&dir.join(FILE_NAME), MAGIC, VERSION, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 1 manifest (as written before vector schemas) still opens.
    #[test]
    fn reads_version_1() {
        #[derive(Serialize)]
        struct V1 {
            persisted_op: OpNum,
            next_segment_id: u64,
            segments: Vec<(u64, Vec<u64>)>,
        }
        let dir = tempfile::tempdir().unwrap();
        let v1 = V1 { persisted_op: 7, next_segment_id: 3, segments: vec![(1, vec![5]), (2, vec![])] };
        files::write_checked(&dir.path().join(FILE_NAME), MAGIC, 1, &postcard::to_allocvec(&v1).unwrap())
            .unwrap();
        let m = Manifest::load(dir.path()).unwrap().unwrap();
        assert_eq!((m.persisted_op, m.next_segment_id, m.vectors), (7, 3, None));
        assert_eq!(m.segments[0], ManifestSegment { id: 1, deleted: vec![5], dropped: vec![] });

        let v2 = Manifest {
            vectors: Some(vec![("a".into(), NewVector::Sparse(Default::default()))]),
            segments: vec![ManifestSegment { id: 1, deleted: vec![], dropped: vec!["b".into()] }],
            ..m
        };
        v2.store(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap().unwrap(), v2);
    }
}
