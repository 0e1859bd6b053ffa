//! What is inside a snapshot file: the tar layout of collection and full snapshots (docs/format.md,
//! "Snapshots").

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use grape_collection::Collection;
use grape_types::{CollectionConfig, Error, Result};
use serde::{Deserialize, Serialize};

use super::files::{HashingWriter, TempPath, TMP_EXT};

/// Version of the snapshot layout; a reader refuses any other.
pub(crate) const FORMAT: u32 = 1;
/// First entry of a collection snapshot.
const COLLECTION_HEADER: &str = "snapshot.json";
/// Last entry of a full snapshot.
const FULL_HEADER: &str = "full.json";
/// Largest header entry a reader accepts (a config is a few kilobytes).
const HEADER_LIMIT: u64 = 16 << 20;

/// `snapshot.json`: what a collection snapshot holds besides its shards.
#[derive(Debug, Serialize, Deserialize)]
struct CollectionHeader {
    format: u32,
    /// Name of the collection the snapshot was taken from (recovery may use another name).
    collection: String,
    config: CollectionConfig,
}

/// `full.json`: the collection snapshots inside a full snapshot, and the aliases.
#[derive(Debug, Serialize, Deserialize)]
struct FullHeader {
    format: u32,
    collections: BTreeMap<String, FullEntry>,
    aliases: BTreeMap<String, String>,
}

/// One collection snapshot inside a full snapshot.
#[derive(Debug, Serialize, Deserialize)]
struct FullEntry {
    /// Path of the entry in the archive: `collections/<collection>.snapshot`.
    file: String,
    size: u64,
    /// Lower-case hex SHA-256 of the entry's bytes.
    checksum: String,
}

fn write_err(e: std::io::Error) -> Error {
    Error::io("write snapshot", e)
}

fn damaged(file: &Path, what: impl std::fmt::Display) -> Error {
    Error::bad_input(format!("snapshot {} is damaged or not a Grape snapshot: {what}", file.display()))
}

/// A tar-level read error. The tar crate's messages can quote raw header bytes; a recovery may read any
/// absolute path the caller names, so only the kind of failure is reported.
fn not_tar(file: &Path, e: &std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => damaged(file, "the archive is truncated"),
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::Other => {
            damaged(file, "not a valid tar archive")
        }
        _ => {
            Error::io(format!("read {}", file.display()), std::io::Error::new(e.kind(), e.kind().to_string()))
        }
    }
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    );
    header.set_cksum();
    tar.append_data(&mut header, path, bytes).map_err(write_err)
}

/// Writes a collection snapshot to `out`: the header, then every shard's snapshot as the nested tar
/// `shards/<i>.tar`. Every write acknowledged before this call is included (the collection is flushed
/// first). A tar entry needs its size before its bytes, so each shard snapshot is written to the
/// scratch file `<scratch>.shard-<i>.tmp` first; at most one exists at a time.
pub(crate) fn write_collection(collection: &Collection, out: &mut dyn Write, scratch: &Path) -> Result<()> {
    // The configuration names the shards (and shard keys) the archive holds: both taken at once.
    let (config, shards) = collection.config_and_shards();
    let header = CollectionHeader { format: FORMAT, collection: collection.name().to_string(), config };
    collection.flush()?;
    let mut tar = tar::Builder::new(out);
    let json =
        serde_json::to_vec_pretty(&header).map_err(|e| Error::Internal(format!("snapshot header: {e}")))?;
    append_bytes(&mut tar, COLLECTION_HEADER, &json)?;
    for handle in &shards {
        let i = handle.id;
        let shard = handle.shard.local().ok_or_else(|| {
            Error::bad_input(format!(
                "shard {i} of this collection is not held by this node; snapshot it on a node that holds it"
            ))
        })?;
        let tmp = TempPath::new(PathBuf::from(format!("{}.shard-{i}{TMP_EXT}", scratch.display())));
        {
            let file = File::create(tmp.path())
                .map_err(|e| Error::io(format!("create {}", tmp.path().display()), e))?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            shard.engine().snapshot(&mut w)?;
            w.flush().map_err(write_err)?;
        }
        tar.append_path_with_name(tmp.path(), format!("shards/{i}.tar")).map_err(write_err)?;
    }
    tar.into_inner().map_err(write_err)?;
    Ok(())
}

/// Unpacks the collection snapshot `file` into `dest` (which must not exist yet): `dest/shards/<i>/`
/// holds each shard's manifest and segments, as a collection directory does. Returns the config.
/// Nothing outside `dest` is written.
pub(crate) fn unpack_collection(file: &Path, dest: &Path) -> Result<CollectionConfig> {
    let input = File::open(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::not_found(format!("Snapshot file {} does not exist", file.display()))
        }
        _ => Error::io(format!("open {}", file.display()), e),
    })?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, input));
    let mut header: Option<CollectionHeader> = None;
    let mut shards = BTreeSet::new();
    let entries = archive.entries().map_err(|e| not_tar(file, &e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| not_tar(file, &e))?;
        let path = entry.path().map_err(|e| not_tar(file, &e))?.to_string_lossy().into_owned();
        if path == COLLECTION_HEADER {
            if header.is_some() || entry.size() > HEADER_LIMIT {
                return Err(damaged(file, "bad snapshot.json entry"));
            }
            let mut json = Vec::new();
            entry.read_to_end(&mut json).map_err(|e| not_tar(file, &e))?;
            let h: CollectionHeader = serde_json::from_slice(&json).map_err(|e| damaged(file, e))?;
            if h.format != FORMAT {
                return Err(Error::bad_input(format!(
                    "snapshot {} has format version {}; this Grape reads version {FORMAT}",
                    file.display(),
                    h.format
                )));
            }
            header = Some(h);
            continue;
        }
        let shard = path
            .strip_prefix("shards/")
            .and_then(|s| s.strip_suffix(".tar"))
            .and_then(|s| s.parse::<u32>().ok());
        let Some(shard) = shard else {
            return Err(damaged(file, format_args!("unexpected entry {path}")));
        };
        if !shards.insert(shard) {
            return Err(damaged(file, format_args!("shard {shard} appears twice")));
        }
        let shard_dir = dest.join("shards").join(shard.to_string());
        grape_shard::snapshot::restore(&shard_dir, &mut entry)
            .map_err(|e| damaged(file, format_args!("shard {shard}: {e}")))?;
    }
    let header = header.ok_or_else(|| damaged(file, "snapshot.json is missing"))?;
    let expected: BTreeSet<u32> = header.config.shard_ids().into_iter().collect();
    if shards != expected {
        return Err(damaged(file, format_args!("holds shards {shards:?}, its config names {expected:?}")));
    }
    Ok(header.config)
}

/// Writes a full snapshot to `out`: `collections/<name>.snapshot` for each collection, then `full.json`
/// naming them with their checksums, and the aliases (of these collections). Each collection snapshot is
/// written to the scratch file `<scratch>.<i>.tmp`, appended, and removed before the next one.
pub(crate) fn write_full(
    out: &mut dyn Write,
    collections: &[Arc<Collection>],
    aliases: BTreeMap<String, String>,
    scratch: &Path,
) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut entries = BTreeMap::new();
    for (i, c) in collections.iter().enumerate() {
        let tmp = TempPath::new(PathBuf::from(format!("{}.{i}{TMP_EXT}", scratch.display())));
        let (checksum, size) = write_collection_file(c, tmp.path())?;
        let file = format!("collections/{}.snapshot", c.name());
        tar.append_path_with_name(tmp.path(), &file).map_err(write_err)?;
        entries.insert(c.name().to_string(), FullEntry { file, size, checksum });
    }
    let aliases = aliases.into_iter().filter(|(_, c)| entries.contains_key(c)).collect();
    let header = FullHeader { format: FORMAT, collections: entries, aliases };
    let json =
        serde_json::to_vec_pretty(&header).map_err(|e| Error::Internal(format!("snapshot header: {e}")))?;
    append_bytes(&mut tar, FULL_HEADER, &json)?;
    tar.into_inner().map_err(write_err)?;
    Ok(())
}

/// Writes the collection snapshot of `c` to the file `path`; returns its checksum and size.
fn write_collection_file(c: &Collection, path: &Path) -> Result<(String, u64)> {
    let file = File::create(path).map_err(|e| Error::io(format!("create {}", path.display()), e))?;
    let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    write_collection(c, &mut out, path)?;
    let (buffered, checksum, size) = out.finish();
    buffered.into_inner().map_err(|e| Error::io(format!("write {}", path.display()), e.into_error()))?;
    Ok((checksum, size))
}
