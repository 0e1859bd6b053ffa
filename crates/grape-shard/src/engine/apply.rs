//! Applying operations. Deterministic: the same operations in the same order give the same state.
//! Idempotent on replay: a point whose version (the op_num that last changed it) is newer than the
//! operation is left alone.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use grape_types::operation::PointWrite;
use grape_types::{Filter, OpNum, Operation, Payload, PayloadFieldSchema, PointId, Result};

use super::{SegmentSet, ShardEngine};
use crate::payload_ops;
use crate::segment::{FilterCheck, Segment};

/// Where a live point is.
struct Location {
    segment: Arc<Segment>,
    in_appendable: bool,
    offset: u32,
    version: OpNum,
}

fn locate(set: &SegmentSet, id: &PointId) -> Option<Location> {
    set.all().enumerate().find_map(|(i, seg)| {
        let data = seg.data.read();
        data.find(id).map(|offset| Location {
            segment: Arc::clone(seg),
            in_appendable: i == 0,
            offset,
            version: data.versions[offset as usize],
        })
    })
}

/// Live points that pass `filter` and are not newer than `op_num`: a filter is resolved against the
/// state the operation sees, so a replay leaves alone the points that later operations changed.
fn matching(
    set: &SegmentSet,
    op_num: OpNum,
    filter: &Filter,
    schema: &BTreeMap<String, PayloadFieldSchema>,
) -> Vec<Location> {
    let mut found = Vec::new();
    // The declared text indexes decide how text conditions tokenize, as in reads.
    let filter = FilterCheck::with_schema(filter, schema);
    for (i, seg) in set.all().enumerate() {
        let data = seg.data.read();
        for &offset in data.lookup.values() {
            let version = data.versions[offset as usize];
            if version <= op_num && data.passes(offset, Some(&filter)) {
                found.push(Location { segment: Arc::clone(seg), in_appendable: i == 0, offset, version });
            }
        }
    }
    found
}

impl ShardEngine {
    /// Applies `op` as operation number `op_num`. Operations must be applied in op_num order; an op_num
    /// at or below the last applied one is replay and changes only points older than it.
    pub fn apply(&self, op_num: OpNum, op: &Operation) -> Result<()> {
        // Read before the segments lock is taken (never hold both in this order).
        let schema = match op {
            Operation::DeleteByFilter { .. } | Operation::SetPayloadByFilter { .. } => {
                self.config.read().payload_schema.clone()
            }
            _ => BTreeMap::new(),
        };
        let mut guard = self.segments.write();
        let (set, state) = &mut *guard;
        match op {
            Operation::Upsert(points) => points.iter().try_for_each(|p| upsert(set, op_num, p))?,
            Operation::Delete(ids) => {
                for id in ids {
                    if let Some(loc) = locate(set, id) {
                        if loc.version <= op_num {
                            loc.segment.data.write().delete(loc.offset);
                        }
                    }
                }
            }
            Operation::SetPayload { points, payload, key } => {
                edit_payloads(set, op_num, points, |p| payload_ops::set_payload(p, payload, key.as_deref()))?
            }
            Operation::OverwritePayload { points, payload } => {
                edit_payloads(set, op_num, points, |p| *p = payload.clone())?
            }
            Operation::DeletePayloadKeys { points, keys } => edit_payloads(set, op_num, points, |p| {
                keys.iter().for_each(|k| payload_ops::delete_key(p, k))
            })?,
            Operation::ClearPayload { points } => edit_payloads(set, op_num, points, |p| p.clear())?,
            Operation::DeleteByFilter { filter } => {
                for loc in matching(set, op_num, filter, &schema) {
                    loc.segment.data.write().delete(loc.offset);
                }
            }
            Operation::UpdateVectors { points } => {
                for (id, update) in points {
                    edit_point(set, op_num, id, |vectors, _| {
                        vectors.extend(update.iter().map(|(k, v)| (k.clone(), v.clone())))
                    })?
                }
            }
            Operation::DeleteVectors { points, names } => {
                for id in points {
                    edit_point(set, op_num, id, |vectors, _| {
                        names.iter().for_each(|n| drop(vectors.remove(n)))
                    })?
                }
            }
            Operation::SetPayloadByFilter { filter, payload, key } => {
                let ids: Vec<PointId> = matching(set, op_num, filter, &schema)
                    .iter()
                    .map(|loc| loc.segment.data.read().ids[loc.offset as usize])
                    .collect();
                edit_payloads(set, op_num, &ids, |p| payload_ops::set_payload(p, payload, key.as_deref()))?
            }
        }
        state.last_applied = state.last_applied.max(op_num);
        state.last_write = Instant::now();
        let threshold_kb = self.seal_threshold_kb();
        if set.appendable.data.read().vector_bytes() / 1024 >= threshold_kb {
            self.seal_requested.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Size at which the appendable segment is sealed so the optimizer can index it.
    fn seal_threshold_kb(&self) -> usize {
        let c = self.config.read();
        match c.optimizer_config.indexing_threshold {
            Some(t) if t > 0 => t,
            _ => c.optimizer_config.max_segment_size.unwrap_or(super::flush::DEFAULT_MAX_SEGMENT_KB),
        }
    }
}

fn upsert(set: &SegmentSet, op_num: OpNum, p: &PointWrite) -> Result<()> {
    let existing = locate(set, &p.id);
    if existing.as_ref().is_some_and(|l| l.version > op_num) {
        return Ok(());
    }
    let mut appendable = set.appendable.data.write();
    match existing {
        Some(loc) if loc.in_appendable => {
            appendable.overwrite(loc.offset, op_num, &p.vectors, p.payload.clone())
        }
        Some(loc) => {
            // Insert the new copy before deleting the old one: a point is never missing.
            appendable.append(p.id, op_num, &p.vectors, p.payload.clone())?;
            loc.segment.data.write().delete(loc.offset);
            Ok(())
        }
        None => appendable.append(p.id, op_num, &p.vectors, p.payload.clone()).map(|_| ()),
    }
}

/// Applies an edit of vectors and payload to one existing point not newer than `op_num`; a point in a
/// sealed segment moves to the appendable one.
fn edit_point(
    set: &SegmentSet,
    op_num: OpNum,
    id: &PointId,
    edit: impl FnOnce(&mut grape_types::NamedVectors, &mut Payload),
) -> Result<()> {
    let Some(loc) = locate(set, id) else { return Ok(()) };
    if loc.version > op_num {
        return Ok(());
    }
    let (mut vectors, payload) = {
        let src = loc.segment.data.read();
        (src.vectors_of(loc.offset), src.payload(loc.offset)?)
    };
    let had_payload = payload.is_some();
    let mut payload = payload.unwrap_or_default();
    edit(&mut vectors, &mut payload);
    let payload = (had_payload || !payload.is_empty()).then_some(payload);
    if loc.in_appendable {
        set.appendable.data.write().overwrite(loc.offset, op_num, &vectors, payload)
    } else {
        set.appendable.data.write().append(*id, op_num, &vectors, payload)?;
        loc.segment.data.write().delete(loc.offset);
        Ok(())
    }
}

/// Applies a payload edit to each existing point; points in sealed segments move to the appendable one.
fn edit_payloads(
    set: &SegmentSet,
    op_num: OpNum,
    ids: &[PointId],
    edit: impl Fn(&mut Payload),
) -> Result<()> {
    for id in ids {
        let Some(loc) = locate(set, id) else { continue };
        if loc.version > op_num {
            continue;
        }
        if loc.in_appendable {
            let mut data = set.appendable.data.write();
            let mut payload = data.payload(loc.offset)?.unwrap_or_default();
            edit(&mut payload);
            data.put_payload(loc.offset, op_num, Some(payload))?;
        } else {
            let (vectors, mut payload) = {
                let src = loc.segment.data.read();
                (src.vectors_of(loc.offset), src.payload(loc.offset)?.unwrap_or_default())
            };
            edit(&mut payload);
            set.appendable.data.write().append(*id, op_num, &vectors, Some(payload))?;
            loc.segment.data.write().delete(loc.offset);
        }
    }
    Ok(())
}
