//! Writing a segment to its directory and opening it again. Layout in docs/format.md, "Segment directory".

use std::collections::BTreeMap;
use std::path::Path;

use grape_index::hnsw::HnswGraph;
use grape_index::quantization::QuantizedVectors;
use grape_types::{Datatype, Distance, Error, PointId, Result};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    open_quantized, write_quantized, BitSet, DenseVectors, LinkedField, MultiVectors, PayloadStore,
    SegmentData, SparseVectors,
};
use crate::files::{self, create_dir_durable};

const META_MAGIC: &[u8; 8] = b"GRPSEGM\0";
const IDS_MAGIC: &[u8; 8] = b"GRPIDS\0\0";
const PAYLOAD_MAGIC: &[u8; 8] = b"GRPPAYL\0";
const SPARSE_MAGIC: &[u8; 8] = b"GRPSPRS\0";
const MULTI_MAGIC: &[u8; 8] = b"GRPMULT\0";
const VERSION: u32 = 1;

/// `meta.bin` of a segment (JSON body in a checked file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentFiles {
    pub points: u64,
    pub vectors: Vec<VectorFileMeta>,
    /// Sparse vector files (absent in segments written before sparse vectors existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sparse: Vec<SparseFileMeta>,
    /// Multivector files (absent in segments written before multivectors existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multi: Vec<MultiFileMeta>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MultiFileMeta {
    pub name: String,
    pub file: String,
    pub dim: usize,
    pub distance: Distance,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SparseFileMeta {
    pub name: String,
    pub file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorFileMeta {
    pub name: String,
    pub file: String,
    pub dim: usize,
    pub distance: Distance,
    /// Element type of the rows (float32 when absent).
    #[serde(default)]
    pub datatype: Datatype,
    /// Bit set words of offsets without this vector (empty when every point has it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<u64>,
    #[serde(default)]
    pub graph: Option<String>,
    /// Payload fields whose values have payload links in the graph (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payload_links: Vec<LinkedField>,
    /// Quantized codes file (`quant-<i>.bin`), when the vector is quantized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantized: Option<String>,
}

/// Writes the given offsets of `data` (in order; they become offsets `0..`) into `dir`. Graphs and
/// quantized codes are written only when `offsets` is every offset in order, since both are addressed by
/// offset. `meta.bin` is written last; the directory counts only once the shard manifest names it.
pub fn write_segment(dir: &Path, data: &SegmentData, offsets: &[u32]) -> Result<()> {
    write_segment_with(dir, data, offsets, &|name| data.quantized.get(name))
}

/// [`write_segment`] with the quantized codes of each vector given separately (the optimizer
/// re-quantizing a segment).
pub fn write_segment_with<'q>(
    dir: &Path,
    data: &SegmentData,
    offsets: &[u32],
    quantized: &dyn Fn(&str) -> Option<&'q QuantizedVectors>,
) -> Result<()> {
    create_dir_durable(dir)?;
    let identity = offsets.len() == data.len() && offsets.iter().enumerate().all(|(i, &o)| i as u32 == o);

    let mut ids = Vec::with_capacity(8 + offsets.len() * 25);
    ids.extend_from_slice(&(offsets.len() as u64).to_le_bytes());
    for &o in offsets {
        encode_id(&mut ids, &data.ids[o as usize]);
        ids.extend_from_slice(&data.versions[o as usize].to_le_bytes());
    }
    files::write_checked(&dir.join("ids.bin"), IDS_MAGIC, VERSION, &ids)?;
    files::write_checked(&dir.join("payload.bin"), PAYLOAD_MAGIC, VERSION, &data.payloads.encode(offsets)?)?;

    let mut metas = Vec::new();
    for (i, (name, store)) in data.vectors.iter().enumerate() {
        let file = format!("vectors-{i}.bin");
        store.write_rows(&dir.join(&file), offsets.iter().copied())?;
        let graph = match data.graphs.get(name) {
            Some(g) if identity => {
                let gfile = format!("hnsw-{i}.bin");
                g.save(&dir.join(&gfile))?;
                Some(gfile)
            }
            _ => None,
        };
        let quantized = match quantized(name) {
            Some(q) if identity => {
                let qfile = format!("quant-{i}.bin");
                write_quantized(&dir.join(&qfile), q)?;
                Some(qfile)
            }
            _ => None,
        };
        metas.push(VectorFileMeta {
            name: name.clone(),
            file,
            dim: store.dim(),
            distance: store.distance(),
            datatype: store.datatype(),
            absent: if store.absent().count() == 0 {
                Vec::new()
            } else {
                let mut absent = BitSet::default();
                offsets
                    .iter()
                    .enumerate()
                    .filter(|(_, &o)| !store.has(o))
                    .for_each(|(i, _)| absent.set(i as u32));
                absent.words().to_vec()
            },
            payload_links: match &graph {
                Some(_) => data.linked_fields.get(name).cloned().unwrap_or_default(),
                None => Vec::new(),
            },
            graph,
            quantized,
        });
    }
    let mut sparse = Vec::new();
    for (i, (name, store)) in data.sparse.iter().enumerate() {
        let file = format!("sparse-{i}.bin");
        files::write_checked(&dir.join(&file), SPARSE_MAGIC, VERSION, &store.encode(offsets))?;
        sparse.push(SparseFileMeta { name: name.clone(), file });
    }
    let mut multi = Vec::new();
    for (i, (name, store)) in data.multi.iter().enumerate() {
        let file = format!("multi-{i}.bin");
        files::write_checked(&dir.join(&file), MULTI_MAGIC, VERSION, &store.encode(offsets))?;
        multi.push(MultiFileMeta { name: name.clone(), file, dim: store.dim(), distance: store.distance() });
    }
    let meta = SegmentFiles { points: offsets.len() as u64, vectors: metas, sparse, multi };
    let body = serde_json::to_vec(&meta).map_err(|e| Error::Internal(format!("segment meta: {e}")))?;
    files::write_checked(&dir.join("meta.bin"), META_MAGIC, VERSION, &body)?;
    files::fsync_dir(dir)
}

/// Opens a sealed segment. `on_disk(name)` says whether a vector stays memory-mapped.
pub fn open_segment(dir: &Path, on_disk: &dyn Fn(&str) -> bool, deleted: BitSet) -> Result<SegmentData> {
    let meta: SegmentFiles =
        serde_json::from_slice(&files::read_checked(&dir.join("meta.bin"), META_MAGIC, VERSION)?)
            .map_err(|e| Error::Corruption(format!("{}: segment meta: {e}", dir.display())))?;
    let (ids, versions) = decode_ids(&files::read_checked(&dir.join("ids.bin"), IDS_MAGIC, VERSION)?, dir)?;
    if ids.len() as u64 != meta.points {
        return Err(Error::Corruption(format!(
            "{}: ids.bin holds {} points, meta {}",
            dir.display(),
            ids.len(),
            meta.points
        )));
    }
    let payloads =
        PayloadStore::decode(files::read_checked(&dir.join("payload.bin"), PAYLOAD_MAGIC, VERSION)?)?;
    let mut vectors = BTreeMap::new();
    let mut graphs = BTreeMap::new();
    let mut linked_fields = BTreeMap::new();
    let mut quantized = BTreeMap::new();
    for v in &meta.vectors {
        let mut store =
            DenseVectors::open(&dir.join(&v.file), v.dim, v.distance, v.datatype, on_disk(&v.name))?;
        store.set_absent(BitSet::from_words(v.absent.clone()));
        if store.len() != ids.len() {
            return Err(Error::Corruption(format!(
                "{}: {} holds {} rows, expected {}",
                dir.display(),
                v.file,
                store.len(),
                ids.len()
            )));
        }
        vectors.insert(v.name.clone(), store);
        if let Some(g) = &v.graph {
            graphs.insert(v.name.clone(), HnswGraph::load(&dir.join(g))?);
            if !v.payload_links.is_empty() {
                linked_fields.insert(v.name.clone(), v.payload_links.clone());
            }
        }
        if let Some(q) = &v.quantized {
            quantized.insert(v.name.clone(), open_quantized(&dir.join(q), v.dim, v.distance, ids.len())?);
        }
    }
    let mut sparse = BTreeMap::new();
    for f in &meta.sparse {
        let path = dir.join(&f.file);
        let body = files::read_checked(&path, SPARSE_MAGIC, VERSION)?;
        let store = SparseVectors::decode(&body, &path.display().to_string())?;
        if store.len() != ids.len() {
            return Err(Error::Corruption(format!(
                "{}: holds {} rows, expected {}",
                path.display(),
                store.len(),
                ids.len()
            )));
        }
        sparse.insert(f.name.clone(), store);
    }
    let mut multi = BTreeMap::new();
    for f in &meta.multi {
        let path = dir.join(&f.file);
        let body = files::read_checked(&path, MULTI_MAGIC, VERSION)?;
        let store = MultiVectors::decode(&body, f.dim, f.distance, &path.display().to_string())?;
        if store.len() != ids.len() {
            return Err(Error::Corruption(format!(
                "{}: holds {} points, expected {}",
                path.display(),
                store.len(),
                ids.len()
            )));
        }
        multi.insert(f.name.clone(), store);
    }
    let lookup = ids
        .iter()
        .enumerate()
        .filter(|(o, _)| !deleted.get(*o as u32))
        .map(|(o, id)| (*id, o as u32))
        .collect();
    Ok(SegmentData {
        appendable: false,
        ids,
        versions,
        lookup,
        deleted,
        vectors,
        sparse,
        multi,
        graphs,
        linked_fields,
        quantized,
        payloads,
        field_indexes: Default::default(),
        dropped: Default::default(),
    })
}

fn encode_id(out: &mut Vec<u8>, id: &PointId) {
    match id {
        PointId::Num(n) => {
            out.push(0);
            out.extend_from_slice(&n.to_le_bytes());
        }
        PointId::Uuid(u) => {
            out.push(1);
            out.extend_from_slice(u.as_bytes());
        }
    }
}

fn decode_ids(body: &[u8], dir: &Path) -> Result<(Vec<PointId>, Vec<u64>)> {
    let bad = || Error::Corruption(format!("{}: ids.bin is truncated", dir.display()));
    let take = |pos: &mut usize, n: usize| -> Result<&[u8]> {
        let s = body.get(*pos..*pos + n).ok_or_else(bad)?;
        *pos += n;
        Ok(s)
    };
    let mut pos = 0;
    let n = u64::from_le_bytes(take(&mut pos, 8)?.try_into().map_err(|_| bad())?) as usize;
    let mut ids = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    for _ in 0..n {
        let id = match take(&mut pos, 1)?[0] {
            0 => PointId::Num(u64::from_le_bytes(take(&mut pos, 8)?.try_into().map_err(|_| bad())?)),
            1 => PointId::Uuid(Uuid::from_bytes(take(&mut pos, 16)?.try_into().map_err(|_| bad())?)),
            t => return Err(Error::Corruption(format!("{}: unknown id tag {t}", dir.display()))),
        };
        ids.push(id);
        versions.push(u64::from_le_bytes(take(&mut pos, 8)?.try_into().map_err(|_| bad())?));
    }
    Ok((ids, versions))
}
