//! The shard engine: segments plus the deterministic application of operations. It is the state
//! machine behind both the local WAL ([`crate::LocalShard`]) and, later, a shard's Raft group.
//!
//! Concurrency: `segments` is both the segment list and the batch gate. Applying an operation holds it
//! exclusively, so readers (which hold it shared for a whole request) see every batch entirely or not
//! at all. Flush and the optimizer take it exclusively only to swap segment lists.

mod apply;
mod flush;
mod read;

pub use flush::DEFAULT_MAX_SEGMENT_KB;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use grape_types::{CollectionConfig, Distance, Error, OpNum, Result, VectorShape};
use parking_lot::{Mutex, RwLock};

use crate::manifest::Manifest;
use crate::segment::{open_segment, BitSet, DenseVectors, MultiVectors, Segment, SegmentData, SegmentId};

pub use read::{SearchHit, SegmentStats};

/// The segments of a shard at one moment: one appendable segment and the sealed ones.
pub struct SegmentSet {
    pub appendable: Arc<Segment>,
    pub sealed: Vec<Arc<Segment>>,
}

impl SegmentSet {
    /// Every segment, appendable first.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Segment>> {
        std::iter::once(&self.appendable).chain(self.sealed.iter())
    }
}

/// Mutable bookkeeping of the writer, guarded by the segment lock.
pub(crate) struct WriterState {
    pub last_applied: OpNum,
    pub next_segment_id: SegmentId,
    /// Segment list changed (optimizer swap) since the last manifest.
    pub layout_changed: bool,
    pub last_write: Instant,
}

pub struct ShardEngine {
    pub(crate) dir: PathBuf,
    pub(crate) config: RwLock<CollectionConfig>,
    pub(crate) segments: RwLock<(SegmentSet, WriterState)>,
    pub(crate) persisted_op: AtomicU64,
    /// Serialises flushes, optimizer commits, snapshots and file removal.
    pub(crate) flush_lock: Mutex<()>,
    /// Set when the appendable segment outgrew its threshold and should be sealed.
    pub(crate) seal_requested: AtomicBool,
    /// Segment ids allocated to optimizations whose result is not yet in the segment list.
    pub(crate) pending_segments: Mutex<std::collections::HashSet<SegmentId>>,
    /// Counts vector schema changes (vectors added or dropped); an optimization that started under
    /// another count is discarded rather than swapped in, since it copied the old vectors.
    pub(crate) schema_epoch: AtomicU64,
    /// The running and the last finished optimizations.
    pub(crate) tracker: crate::tracker::Tracker,
}

pub(crate) fn segments_dir(dir: &Path) -> PathBuf {
    dir.join("segments")
}

/// An empty appendable segment with the vector stores of a configuration.
pub(crate) fn empty_segment(config: &CollectionConfig) -> SegmentData {
    let dense = config
        .params
        .vectors
        .iter()
        .filter(|(_, p)| !p.is_multi())
        .map(|(name, p)| (name.to_string(), DenseVectors::new(p.size, p.distance, p.datatype())));
    let multi = config
        .params
        .vectors
        .iter()
        .filter(|(_, p)| p.is_multi())
        .map(|(name, p)| (name.to_string(), MultiVectors::new(p.size, p.distance)));
    SegmentData::appendable(
        dense,
        config.params.sparse_vectors.iter().flatten().map(|(n, _)| n.clone()),
        multi,
    )
}

impl ShardEngine {
    /// Opens (or creates) the shard stored in `dir`: loads the manifest and its segments and removes
    /// segment directories the manifest does not name (leftovers of an interrupted flush or optimization).
    pub fn open(dir: &Path, config: CollectionConfig) -> Result<ShardEngine> {
        crate::files::create_dir_durable(&segments_dir(dir))?;
        let manifest = Manifest::load(dir)?.unwrap_or_default();
        // The vectors as of the manifest; the log replayed after it adds or drops the later ones.
        let config = match &manifest.vectors {
            Some(schema) => config.with_schema(schema),
            None => config,
        };
        let on_disk = |name: &str| config.params.vectors.get(name).is_some_and(|p| p.on_disk());
        let mut sealed = Vec::with_capacity(manifest.segments.len());
        for s in &manifest.segments {
            let mut data = open_segment(
                &segments_dir(dir).join(s.id.to_string()),
                &on_disk,
                BitSet::from_words(s.deleted.clone()),
            )?;
            for name in &s.dropped {
                data.drop_vector(name);
            }
            check_vectors_match(&config, &data, s.id)?;
            sealed.push(Arc::new(Segment::new(s.id, data)));
        }
        let appendable_id = manifest.next_segment_id;
        let appendable = Arc::new(Segment::new(appendable_id, empty_segment(&config)));
        let state = WriterState {
            last_applied: manifest.persisted_op,
            next_segment_id: appendable_id + 1,
            layout_changed: false,
            last_write: Instant::now(),
        };
        let engine = ShardEngine {
            dir: dir.to_path_buf(),
            config: RwLock::new(config),
            segments: RwLock::new((SegmentSet { appendable, sealed }, state)),
            persisted_op: AtomicU64::new(manifest.persisted_op),
            flush_lock: Mutex::new(()),
            seal_requested: AtomicBool::new(false),
            pending_segments: Mutex::new(Default::default()),
            schema_epoch: AtomicU64::new(0),
            tracker: Default::default(),
        };
        engine.remove_unreferenced(&manifest)?;
        Ok(engine)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> CollectionConfig {
        self.config.read().clone()
    }

    /// Replaces the configuration (parameters that do not change stored data: HNSW and optimizer knobs).
    /// The set of vectors stays the shard's own: it changes only through the log.
    pub fn set_config(&self, config: CollectionConfig) {
        let mut current = self.config.write();
        *current = config.with_schema(&current.vector_schema());
    }

    /// Highest op_num applied.
    pub fn last_applied(&self) -> OpNum {
        self.segments.read().1.last_applied
    }

    /// Op_num up to which state is durable in segment files (the manifest).
    pub fn persisted_op(&self) -> OpNum {
        self.persisted_op.load(Ordering::Acquire)
    }

    /// Whether the appendable segment asked to be sealed (it outgrew the indexing threshold).
    pub fn take_seal_request(&self) -> bool {
        self.seal_requested.swap(false, Ordering::AcqRel)
    }

    /// Seconds since the last applied write.
    pub fn idle_secs(&self) -> f64 {
        self.segments.read().1.last_write.elapsed().as_secs_f64()
    }

    pub(crate) fn with_segments<R>(&self, f: impl FnOnce(&SegmentSet) -> R) -> R {
        f(&self.segments.read().0)
    }

    /// Vector parameters `(dim, distance)` of a vector name.
    pub fn vector_params(&self, name: &str) -> Result<(usize, Distance)> {
        let config = self.config.read();
        let p = config.params.vectors.get(name).ok_or_else(|| grape_types::VectorsConfig::missing(name))?;
        Ok((p.size, p.distance))
    }
}

/// Every store of a sealed segment holds a vector of the configuration in its shape. A configured
/// vector may have no store: the segment was written before the vector was added, so no point of it
/// has a value.
fn check_vectors_match(config: &CollectionConfig, data: &SegmentData, id: SegmentId) -> Result<()> {
    let shapes = config.vector_shapes();
    let dense = data.vectors.iter().map(|(n, v)| (n, Some((v.dim(), v.distance(), false))));
    let multi = data.multi.iter().map(|(n, m)| (n, Some((m.dim(), m.distance(), true))));
    let sparse = data.sparse.keys().map(|n| (n, None));
    for (name, stored) in dense.chain(multi).chain(sparse) {
        let fits = match (shapes.get(name), stored) {
            (Some(VectorShape::Dense { size, distance, multi, .. }), Some(s)) => {
                s == (*size, *distance, *multi)
            }
            (Some(VectorShape::Sparse), None) => true,
            _ => false,
        };
        if !fits {
            return Err(Error::Corruption(format!(
                "segment {id} stores vector {name:?} unlike the collection config describes it"
            )));
        }
    }
    Ok(())
}
