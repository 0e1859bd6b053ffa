//! Flush: seal the appendable segment, write it, and commit a manifest describing the state at exactly
//! one op_num. See docs/format.md, "Flush protocol".

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use grape_types::{OpNum, Result};

use super::{empty_segment, segments_dir, SegmentSet, ShardEngine};
use crate::manifest::{Manifest, ManifestSegment};
use crate::segment::{write_segment, Segment, SegmentData, SegmentId};

/// Default upper bound of a segment's vector data in kilobytes when the config leaves it unset.
pub const DEFAULT_MAX_SEGMENT_KB: usize = 256 * 1024;

impl ShardEngine {
    /// Makes every applied operation durable in segment files and returns the persisted op_num.
    /// Writers are blocked only while the appendable segment is swapped and deletion sets are copied.
    pub fn flush(&self) -> Result<OpNum> {
        let _flush = self.flush_lock.lock();
        self.flush_locked()
    }

    /// Whether [`ShardEngine::flush`] has anything to write: applied operations, a changed segment
    /// layout or points in the appendable segment that the manifest does not hold yet.
    pub fn needs_flush(&self) -> bool {
        let guard = self.segments.read();
        self.flush_needed(&guard.0, &guard.1)
    }

    fn flush_needed(&self, set: &SegmentSet, state: &super::WriterState) -> bool {
        state.last_applied != self.persisted_op()
            || state.layout_changed
            || !set.appendable.data.read().is_empty()
    }

    pub(crate) fn flush_locked(&self) -> Result<OpNum> {
        let (persisted, frozen, entries) = {
            let mut guard = self.segments.write();
            let (set, state) = &mut *guard;
            let frozen_nonempty = !set.appendable.data.read().is_empty();
            if !self.flush_needed(set, state) {
                return Ok(state.last_applied);
            }
            let frozen = if frozen_nonempty {
                let next = Arc::new(Segment::new(state.next_segment_id, empty_segment(&self.config.read())));
                state.next_segment_id += 1;
                let old = std::mem::replace(&mut set.appendable, next);
                old.data.write().appendable = false;
                set.sealed.push(Arc::clone(&old));
                Some(old)
            } else {
                None
            };
            state.layout_changed = false;
            let entries: Vec<ManifestSegment> = set
                .sealed
                .iter()
                .map(|s| {
                    let data = s.data.read();
                    ManifestSegment {
                        id: s.id,
                        deleted: data.deleted.words().to_vec(),
                        dropped: data.dropped.iter().cloned().collect(),
                    }
                })
                .collect();
            let manifest = Manifest {
                persisted_op: state.last_applied,
                next_segment_id: state.next_segment_id,
                segments: entries,
                vectors: Some(self.config.read().vector_schema()),
            };
            (state.last_applied, frozen, manifest)
        };
        if let Some(seg) = &frozen {
            // The frozen segment no longer changes except for deletions, which the manifest carries.
            let data = seg.data.read();
            let all: Vec<u32> = (0..data.len() as u32).collect();
            write_segment(&segments_dir(&self.dir).join(seg.id.to_string()), &data, &all)?;
        }
        entries.store(&self.dir)?;
        self.persisted_op.store(persisted, Ordering::Release);
        self.remove_unreferenced(&entries)?;
        tracing::debug!(shard = %self.dir.display(), persisted, "flushed");
        Ok(persisted)
    }

    /// Deletes segment directories that neither the manifest names nor an optimization in progress owns.
    pub(crate) fn remove_unreferenced(&self, manifest: &Manifest) -> Result<()> {
        let mut keep: HashSet<String> = manifest.segments.iter().map(|s| s.id.to_string()).collect();
        keep.extend(self.pending_segments.lock().iter().map(|id| id.to_string()));
        let dir = segments_dir(&self.dir);
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| grape_types::Error::io(format!("list {}", dir.display()), e))?;
        for entry in entries.flatten() {
            if keep.contains(entry.file_name().to_string_lossy().as_ref()) {
                continue;
            }
            std::fs::remove_dir_all(entry.path())
                .map_err(|e| grape_types::Error::io(format!("remove {}", entry.path().display()), e))?;
        }
        crate::files::fsync_dir(&dir)
    }

    /// Replaces `sources` with `replacement` in the segment list (or just drops them when there is no
    /// replacement: every point was gone). Points deleted from a source after the replacement was built
    /// are deleted from it too (`origin[i]` = source index and offset of the replacement's offset `i`).
    /// Commits a manifest.
    /// Returns false, swapping nothing, when the vectors changed since the optimization began
    /// (`epoch` is [`ShardEngine::schema_epoch`] then): its copy holds the old vectors.
    pub(crate) fn swap_segments(
        &self,
        sources: &[SegmentId],
        replacement: Option<SegmentData>,
        replacement_id: SegmentId,
        origin: &[(usize, u32)],
        epoch: u64,
    ) -> Result<bool> {
        let _flush = self.flush_lock.lock();
        {
            let mut guard = self.segments.write();
            let (set, state) = &mut *guard;
            if self.schema_epoch.load(Ordering::Acquire) != epoch {
                return Ok(false);
            }
            let src: Vec<Arc<Segment>> =
                sources.iter().filter_map(|id| set.sealed.iter().find(|s| s.id == *id).cloned()).collect();
            if src.len() != sources.len() {
                return Err(grape_types::Error::Internal("optimizer sources vanished before swap".into()));
            }
            set.sealed.retain(|s| !sources.contains(&s.id));
            if let Some(mut replacement) = replacement {
                let src_data: Vec<_> = src.iter().map(|s| s.data.read()).collect();
                for (new_offset, &(s, old_offset)) in origin.iter().enumerate() {
                    if src_data[s].deleted.get(old_offset) {
                        replacement.delete(new_offset as u32);
                    }
                }
                drop(src_data);
                set.sealed.push(Arc::new(Segment::new(replacement_id, replacement)));
            }
            state.layout_changed = true;
        }
        self.pending_segments.lock().remove(&replacement_id);
        self.flush_locked().map(|_| true)
    }

    /// Allocates a fresh segment id.
    pub(crate) fn allocate_segment_id(&self) -> SegmentId {
        let mut guard = self.segments.write();
        let id = guard.1.next_segment_id;
        guard.1.next_segment_id += 1;
        self.pending_segments.lock().insert(id);
        id
    }

    pub(crate) fn snapshot_set(&self) -> Vec<Arc<Segment>> {
        self.with_segments(|set: &SegmentSet| set.sealed.clone())
    }
}
