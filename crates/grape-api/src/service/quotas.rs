//! Resource quotas (Qdrant 1.19's `GET/PUT /quotas`): limits on the process's resident memory and on
//! the storage filesystem's usage, checked before the writes that consume them.
//!
//! Invariants:
//! 1. The configuration in force equals `quota.json` at the storage root once a `PUT /quotas` wrote
//!    it; until then it is the server's `storage.quotas` setting. The file is written (temporary file,
//!    fsync, rename) before the new configuration takes effect, so a crash loses an update but never
//!    enforces one that a restart would forget.
//! 2. A resource trips when its reading reaches its limit and is released only once the reading is
//!    below `limit - release_margin_percent`; a new configuration clears the verdicts.
//! 3. An unreadable statistic never rejects a write: the limit is then not enforced.
//! 4. Only writes that add data are checked (upserts, vector updates, payload writes, collection and
//!    vector creation); deletes, payload removal and reads always pass, so a full node can be emptied.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use parking_lot::RwLock;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Where a `PUT /quotas` persists the configuration, relative to the storage directory.
pub const QUOTA_FILE: &str = "quota.json";

/// Percentage points below its limit a tripped resource must fall when the configuration does not say.
pub const DEFAULT_RELEASE_MARGIN_PERCENT: u8 = 5;

/// Qdrant's `QuotaConfig`: the body of `PUT /quotas`, the `storage.quotas` setting and the file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Whether the limits are enforced.
    #[serde(default)]
    pub enabled: bool,
    /// Refuse memory-consuming writes once the process's resident memory reaches this percentage of
    /// the memory available to it (cgroup limit, else total memory). 1-100; unset: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_resident_memory_percent: Option<u8>,
    /// Refuse disk-consuming writes once the storage filesystem is filled to this percentage.
    /// 1-100; unset: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_disk_usage_percent: Option<u8>,
    /// How many percentage points below its limit a tripped resource must fall before writes are
    /// accepted again. 0-100; unset: 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub release_margin_percent: Option<u8>,
}

impl QuotaConfig {
    /// Checks the value ranges; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let check = |name: &str, value: Option<u8>, min: u8| match value {
            Some(v) if v < min || v > 100 => Err(format!(
                "Validation error in JSON body: [{name}: value {v} invalid, must be from {min} to 100]"
            )),
            _ => Ok(()),
        };
        check("max_resident_memory_percent", self.max_resident_memory_percent, 1)?;
        check("max_disk_usage_percent", self.max_disk_usage_percent, 1)?;
        check("release_margin_percent", self.release_margin_percent, 0)
    }

    fn margin(&self) -> u8 {
        self.release_margin_percent.unwrap_or(DEFAULT_RELEASE_MARGIN_PERCENT)
    }
}

/// Qdrant's `QuotaUsage`: this node's readings; `None` when the platform does not expose them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QuotaUsage {
    pub resident_memory_percent: Option<u8>,
    pub disk_usage_percent: Option<u8>,
}

/// Qdrant's `PeerQuotaUsage`: one peer's readings and whether it refuses writes now.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
pub struct PeerQuotaUsage {
    pub exceeded: bool,
    #[serde(flatten)]
    pub usage: QuotaUsage,
}

/// Qdrant's `QuotaStatus`: the result of `GET /quotas`. `peers` only on a cluster node, and there only
/// this node (memory and disk are node-local; Grape does not poll the other peers for theirs).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct QuotaStatus {
    pub config: QuotaConfig,
    pub usage: QuotaUsage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<std::collections::BTreeMap<String, PeerQuotaUsage>>,
}

/// The two resources a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Memory,
    Disk,
}

impl Resource {
    fn parameter(self) -> &'static str {
        match self {
            Resource::Memory => "max_resident_memory_percent",
            Resource::Disk => "max_disk_usage_percent",
        }
    }

    fn reading(self) -> &'static str {
        match self {
            Resource::Memory => "resident memory of the process",
            Resource::Disk => "disk usage of the storage filesystem",
        }
    }
}

/// The quota configuration of a node and its enforcement.
#[derive(Debug)]
pub struct Quotas {
    file: PathBuf,
    storage: PathBuf,
    config: RwLock<QuotaConfig>,
    memory_tripped: AtomicBool,
    disk_tripped: AtomicBool,
}

impl Quotas {
    /// The quotas of the storage directory `storage`: its `quota.json` when a `PUT /quotas` wrote one,
    /// else `default` (the `storage.quotas` setting). A file that cannot be read is an error: silently
    /// dropping configured limits would defeat their purpose.
    pub fn load(storage: &Path, default: QuotaConfig) -> Result<Quotas, String> {
        let file = storage.join(QUOTA_FILE);
        let config = match std::fs::read(&file) {
            Ok(bytes) => {
                let config: QuotaConfig = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("read quota configuration {}: {e}", file.display()))?;
                config.validate().map_err(|e| format!("{}: {e}", file.display()))?;
                config
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                default.validate().map_err(|e| format!("storage.quotas: {e}"))?;
                default
            }
            Err(e) => return Err(format!("read quota configuration {}: {e}", file.display())),
        };
        Ok(Quotas::with_config(storage, config))
    }

    /// The quotas of `storage` with `config` in force, whatever its file holds.
    pub fn with_config(storage: &Path, config: QuotaConfig) -> Quotas {
        Quotas {
            file: storage.join(QUOTA_FILE),
            storage: storage.to_path_buf(),
            config: RwLock::new(config),
            memory_tripped: AtomicBool::new(false),
            disk_tripped: AtomicBool::new(false),
        }
    }

    pub fn config(&self) -> QuotaConfig {
        *self.config.read()
    }

    /// Persists `config`, then enforces it (invariant 1).
    pub fn set(&self, config: QuotaConfig) -> Result<(), ApiError> {
        config.validate().map_err(ApiError::bad_request)?;
        let mut current = self.config.write();
        write_atomically(&self.file, &config)
            .map_err(|e| ApiError::from(grape::Error::io(format!("write {}", self.file.display()), e)))?;
        *current = config;
        self.memory_tripped.store(false, Ordering::Relaxed);
        self.disk_tripped.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// This node's readings now.
    pub fn usage(&self) -> QuotaUsage {
        QuotaUsage {
            resident_memory_percent: resident_memory_percent(),
            disk_usage_percent: disk_usage_percent(&self.storage),
        }
    }

    /// `GET /quotas`; `peer` is this node's id on a cluster node.
    pub fn status(&self, peer: Option<u64>) -> QuotaStatus {
        let config = self.config();
        let usage = self.usage();
        let peers = peer.map(|id| {
            let exceeded = config.enabled
                && (self.tripped(Resource::Memory, &config, usage.resident_memory_percent)
                    || self.tripped(Resource::Disk, &config, usage.disk_usage_percent));
            std::iter::once((id.to_string(), PeerQuotaUsage { exceeded, usage })).collect()
        });
        QuotaStatus { config, usage, peers }
    }

    /// Refuses a write that adds data while a limit is tripped (invariants 2 to 4). Answers 400 with
    /// the reading, the limit and the parameter to change, as Qdrant (a client error).
    pub fn check_write(&self) -> Result<(), ApiError> {
        let config = self.config();
        if !config.enabled {
            return Ok(());
        }
        if config.max_resident_memory_percent.is_some() {
            self.check(Resource::Memory, &config, resident_memory_percent())?;
        }
        if config.max_disk_usage_percent.is_some() {
            self.check(Resource::Disk, &config, disk_usage_percent(&self.storage))?;
        }
        Ok(())
    }

    fn check(&self, resource: Resource, config: &QuotaConfig, reading: Option<u8>) -> Result<(), ApiError> {
        if !self.tripped(resource, config, reading) {
            return Ok(());
        }
        let limit = self.limit(resource, config).unwrap_or(100);
        let used = reading.unwrap_or(0);
        let release = limit.saturating_sub(config.margin());
        Err(ApiError::bad_request(format!(
            "Bad request: quota exceeded: the {} is at {used}%, the limit is {limit}% (`{}` in the quota \
             configuration); writes that add data are refused until it is below {release}%. Free space by \
             deleting points or collections, or raise the limit with PUT /quotas",
            resource.reading(),
            resource.parameter(),
        )))
    }

    fn limit(&self, resource: Resource, config: &QuotaConfig) -> Option<u8> {
        match resource {
            Resource::Memory => config.max_resident_memory_percent,
            Resource::Disk => config.max_disk_usage_percent,
        }
    }

    /// Judges `reading` against the limit with the release margin, and records the verdict.
    fn tripped(&self, resource: Resource, config: &QuotaConfig, reading: Option<u8>) -> bool {
        let (Some(limit), Some(used)) = (self.limit(resource, config), reading) else { return false };
        let flag = match resource {
            Resource::Memory => &self.memory_tripped,
            Resource::Disk => &self.disk_tripped,
        };
        let was = flag.load(Ordering::Relaxed);
        let now = if was { used >= limit.saturating_sub(config.margin()) } else { used >= limit };
        if now != was {
            flag.store(now, Ordering::Relaxed);
        }
        now
    }
}

fn write_atomically(path: &Path, config: &QuotaConfig) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(config).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `used` as a whole percentage of `total` (rounded down, at most 100); `None` for a zero total.
fn percent_of(used: u64, total: u64) -> Option<u8> {
    (total > 0).then(|| (u128::from(used) * 100 / u128::from(total)).min(100) as u8)
}

/// Resident memory of this process as a percentage of the memory available to it.
fn resident_memory_percent() -> Option<u8> {
    percent_of(resident_bytes()?, available_memory_bytes()?)
}

/// The process's resident set (Linux: `/proc/self/statm`, in pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).ok().map(|p| pages * p)
}

/// Total memory, or the cgroup's memory limit when lower. Read once: it does not change while the
/// process runs.
fn available_memory_bytes() -> Option<u64> {
    static TOTAL: OnceLock<Option<u64>> = OnceLock::new();
    *TOTAL.get_or_init(|| {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let total_kb: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let total = total_kb * 1024;
        let cgroup = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok());
        Some(cgroup.map_or(total, |limit| limit.min(total)))
    })
}

/// Used space of the filesystem holding `path`, as a percentage of its capacity (`statvfs`).
// The field types are 64-bit on some targets only.
#[allow(clippy::unnecessary_cast)]
fn disk_usage_percent(path: &Path) -> Option<u8> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data; zeroed is a valid value, which the call overwrites.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated string and `st` a valid, writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let fragment = st.f_frsize as u64;
    let total = st.f_blocks as u64 * fragment;
    let available = st.f_bavail as u64 * fragment;
    percent_of(total.saturating_sub(available), total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_validated_by_field() {
        let ok = QuotaConfig {
            enabled: true,
            max_disk_usage_percent: Some(100),
            release_margin_percent: Some(0),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        let bad = QuotaConfig { max_resident_memory_percent: Some(0), ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("max_resident_memory_percent"));
        let bad = QuotaConfig { max_disk_usage_percent: Some(101), ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("max_disk_usage_percent"));
        let bad = QuotaConfig { release_margin_percent: Some(200), ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("release_margin_percent"));
    }

    #[test]
    fn file_wins_over_the_setting_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let setting = QuotaConfig { enabled: true, max_disk_usage_percent: Some(90), ..Default::default() };
        let q = Quotas::load(dir.path(), setting).unwrap();
        assert_eq!(q.config(), setting);
        let put = QuotaConfig { enabled: false, max_resident_memory_percent: Some(80), ..Default::default() };
        q.set(put).unwrap();
        assert_eq!(Quotas::load(dir.path(), setting).unwrap().config(), put);
        std::fs::write(dir.path().join(QUOTA_FILE), b"{not json").unwrap();
        assert!(Quotas::load(dir.path(), setting).is_err());
    }

    #[test]
    fn a_tripped_limit_holds_until_below_the_margin() {
        let dir = tempfile::tempdir().unwrap();
        let config = QuotaConfig {
            enabled: true,
            max_disk_usage_percent: Some(50),
            release_margin_percent: Some(10),
            ..Default::default()
        };
        let q = Quotas::load(dir.path(), config).unwrap();
        assert!(!q.tripped(Resource::Disk, &config, Some(49)));
        assert!(q.tripped(Resource::Disk, &config, Some(50)));
        assert!(q.tripped(Resource::Disk, &config, Some(45)), "inside the margin: still tripped");
        assert!(!q.tripped(Resource::Disk, &config, Some(39)), "below limit - margin: released");
        assert!(!q.tripped(Resource::Disk, &config, Some(45)), "released: judged against the limit again");
        assert!(!q.tripped(Resource::Disk, &config, None), "an unreadable statistic never trips");
    }

    #[test]
    fn readings_are_available_on_linux() {
        let dir = tempfile::tempdir().unwrap();
        let usage = Quotas::load(dir.path(), QuotaConfig::default()).unwrap().usage();
        assert!(usage.resident_memory_percent.is_some_and(|p| p <= 100), "{usage:?}");
        assert!(usage.disk_usage_percent.is_some_and(|p| p <= 100), "{usage:?}");
    }
}
