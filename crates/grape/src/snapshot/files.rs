//! Snapshot files on disk: atomic creation with a SHA-256 checksum beside them, listing, removal, and the
//! temporary files snapshots and recoveries need.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use grape_shard::files::{create_dir_durable, fsync_dir};
use grape_types::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A snapshot file as Qdrant describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SnapshotDescription {
    /// File name, e.g. `docs-2025-01-31-12-00-00.snapshot`.
    pub name: String,
    /// Modification time of the file (UTC), as `2025-01-31T12:00:00.123456789`.
    pub creation_time: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the file.
    pub checksum: Option<String>,
}

pub(crate) const SNAPSHOT_EXT: &str = ".snapshot";
const CHECKSUM_EXT: &str = ".checksum";
pub(crate) const TMP_EXT: &str = ".tmp";

fn io_at(what: &str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

/// A path removed when dropped unless kept: scratch files and half-written snapshots never outlive the
/// call that made them (a crash leaves them behind; the next open removes them).
pub(crate) struct TempPath {
    path: PathBuf,
    keep: bool,
}

impl TempPath {
    pub(crate) fn new(path: PathBuf) -> TempPath {
        TempPath { path, keep: false }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let removed =
            if self.path.is_dir() { fs::remove_dir_all(&self.path) } else { fs::remove_file(&self.path) };
        if let Err(e) = removed {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), "cannot remove temporary snapshot file: {e}");
            }
        }
    }
}

/// A process-unique token for temporary names (leftovers of an earlier process are removed at open).
pub(crate) fn unique_token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Counts and hashes what passes through.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), len: 0 }
    }

    /// The writer, the hex SHA-256 and the byte count of everything written.
    pub(crate) fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex SHA-256 of a file's contents.
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => {
            Error::not_found(format!("Snapshot file {} does not exist", path.display()))
        }
        _ => Error::io(format!("open {}", path.display()), e),
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_at("read", path))?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// Writes a small file durably: temp file, fsync, rename, directory fsync.
pub(crate) fn write_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = PathBuf::from(format!("{}{TMP_EXT}", path.display()));
    {
        let mut f = File::create(&tmp).map_err(io_at("create", &tmp))?;
        f.write_all(bytes).map_err(io_at("write", &tmp))?;
        f.sync_all().map_err(io_at("fsync", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_at("rename into", path))?;
    fsync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Fsyncs every file and directory under `dir` (unpacking writes through the page cache).
pub(crate) fn fsync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(io_at("list", dir))? {
        let entry = entry.map_err(io_at("list", dir))?;
        let path = entry.path();
        if entry.file_type().map_err(io_at("stat", &path))?.is_dir() {
            fsync_tree(&path)?;
        } else {
            File::open(&path).and_then(|f| f.sync_all()).map_err(io_at("fsync", &path))?;
        }
    }
    fsync_dir(dir)
}

/// A snapshot file name: plain (no separators), not hidden, ending in `.snapshot`. Anything else
/// cannot name a snapshot, so it is reported as not found.
fn check_name(name: &str) -> Result<()> {
    let plain =
        !name.starts_with('.') && !name.contains(['/', '\\', '\0']) && name.len() > SNAPSHOT_EXT.len();
    if plain && name.ends_with(SNAPSHOT_EXT) {
        Ok(())
    } else {
        Err(Error::not_found(format!("Snapshot {name} not found")))
    }
}

/// Creates `<dir>/<prefix>-<UTC time>.snapshot` (`-<n>` added if the name is taken) with the bytes
/// `write` produces, and `<name>.checksum` beside it. The bytes go to `<name>.tmp`, are fsynced, the
/// checksum file is written durably, and only then is the temp file renamed to the final name: a crash
/// never leaves a partial file under a snapshot name. `write` gets a scratch path prefix of its own.
pub(crate) fn create(
    dir: &Path,
    prefix: &str,
    write: impl FnOnce(&mut dyn Write, &Path) -> Result<()>,
) -> Result<SnapshotDescription> {
    create_dir_durable(dir)?;
    let (name, tmp, file) = reserve(dir, prefix)?;
    let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    write(&mut out, tmp.path())?;
    let (buffered, checksum, _) = out.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| Error::io(format!("write {}", tmp.path().display()), e.into_error()))?;
    file.sync_all().map_err(io_at("fsync", tmp.path()))?;
    drop(file);
    let path = dir.join(&name);
    write_durable(&checksum_path(&path), checksum.as_bytes())?;
    fs::rename(tmp.path(), &path).map_err(io_at("rename into", &path))?;
    tmp.keep();
    fsync_dir(dir)?;
    describe(dir, &name)
}

/// Picks a free name and creates its temp file exclusively (concurrent creations never share a name).
fn reserve(dir: &Path, prefix: &str) -> Result<(String, TempPath, File)> {
    let stamp = DateTime::<Utc>::from(SystemTime::now()).format("%Y-%m-%d-%H-%M-%S");
    for n in 0u32.. {
        let name = match n {
            0 => format!("{prefix}-{stamp}{SNAPSHOT_EXT}"),
            n => format!("{prefix}-{stamp}-{n}{SNAPSHOT_EXT}"),
        };
        if dir.join(&name).exists() {
            continue;
        }
        let tmp = dir.join(format!("{name}{TMP_EXT}"));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => {
                let tmp = TempPath::new(tmp);
                if dir.join(&name).exists() {
                    continue; // finished by another thread between the check and the create
                }
                return Ok((name, tmp, file));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(format!("create {}", tmp.display()), e)),
        }
    }
    Err(Error::Internal("no free snapshot name".into()))
}

fn checksum_path(snapshot: &Path) -> PathBuf {
    PathBuf::from(format!("{}{CHECKSUM_EXT}", snapshot.display()))
}

/// Describes an existing snapshot file.
pub(crate) fn describe(dir: &Path, name: &str) -> Result<SnapshotDescription> {
    let path = dir.join(name);
    let meta = fs::metadata(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::not_found(format!("Snapshot {name} not found")),
        _ => Error::io(format!("stat {}", path.display()), e),
    })?;
    let creation_time = meta
        .modified()
        .ok()
        .map(|t: SystemTime| DateTime::<Utc>::from(t).naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string());
    let checksum = fs::read_to_string(checksum_path(&path)).ok().map(|s| s.trim().to_string());
    Ok(SnapshotDescription { name: name.to_string(), creation_time, size: meta.len(), checksum })
}

/// Every snapshot in `dir`, by name (names start with the UTC time, so oldest first per prefix).
pub(crate) fn list(dir: &Path) -> Result<Vec<SnapshotDescription>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("list {}", dir.display()), e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_at("list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if check_name(&name).is_ok() && entry.file_type().is_ok_and(|t| t.is_file()) {
            names.push(name);
        }
    }
    names.sort();
    // A snapshot deleted while listing is left out.
    Ok(names.iter().filter_map(|n| describe(dir, n).ok()).collect())
}

/// The path of an existing snapshot; not found for a missing file or a name that cannot be a snapshot.
pub(crate) fn existing(dir: &Path, name: &str) -> Result<PathBuf> {
    check_name(name)?;
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::not_found(format!("Snapshot {name} not found")))
    }
}

/// Removes a snapshot and its checksum file.
pub(crate) fn remove(dir: &Path, name: &str) -> Result<()> {
    let path = existing(dir, name)?;
    fs::remove_file(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::not_found(format!("Snapshot {name} not found")),
        _ => Error::io(format!("remove {}", path.display()), e),
    })?;
    match fs::remove_file(checksum_path(&path)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("remove {}", checksum_path(&path).display()), e)),
    }
    fsync_dir(dir)
}

/// Removes what an interrupted snapshot left in `dir`: temp files and checksum files without their
/// snapshot. Looks one directory level down too (collection snapshot directories).
pub(crate) fn remove_leftovers(dir: &Path, depth: u32) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("list {}", dir.display()), e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_at("list", dir))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().map_err(io_at("stat", &path))?.is_dir() {
            if depth > 0 {
                remove_leftovers(&path, depth - 1)?;
            }
            continue;
        }
        let orphan_checksum =
            name.strip_suffix(CHECKSUM_EXT).is_some_and(|snapshot| !dir.join(snapshot).exists());
        if name.ends_with(TMP_EXT) || orphan_checksum {
            tracing::warn!(path = %path.display(), "removing a file left by an interrupted snapshot");
            fs::remove_file(&path).map_err(io_at("remove", &path))?;
        }
    }
    Ok(())
}
