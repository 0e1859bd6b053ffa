//! Server configuration: defaults, then a YAML file, then `GRAPE__` environment variables, then CLI
//! flags (later sources win). Keys mirror Qdrant's (`service.http_port`, `storage.storage_path`, ...).

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Yaml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_log_level")]
    pub log_level: String,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub service: ServiceConfig,
    /// Certificate and key for HTTPS (`service.enable_tls`), PEM files as in Qdrant's `tls` section.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub cluster: ClusterConfig,
}

/// Qdrant's `cluster` section: `cluster.enabled` (`GRAPE__CLUSTER__ENABLED=true`) and the p2p port
/// (`cluster.p2p.port`, `GRAPE__CLUSTER__P2P__PORT`, default 6335).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub p2p: P2pConfig,
    #[serde(default)]
    pub consensus: ConsensusConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pConfig {
    #[serde(default = "default_p2p_port")]
    pub port: u16,
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig { port: default_p2p_port() }
    }
}

fn default_p2p_port() -> u16 {
    6335
}

/// Raft timing (`cluster.consensus.tick_period_ms` is the heartbeat interval, as in Qdrant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusConfig {
    #[serde(default = "default_tick_ms")]
    pub tick_period_ms: u64,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig { tick_period_ms: default_tick_ms() }
    }
}

fn default_tick_ms() -> u64 {
    100
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    #[serde(default = "default_storage_path")]
    pub storage_path: PathBuf,
    /// Resource quotas (Qdrant's `storage.quotas`): in force until a `PUT /quotas` persists others in
    /// the storage directory.
    #[serde(default)]
    pub quotas: grape_api::service::quotas::QuotaConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    #[serde(default = "default_grpc_port")]
    pub grpc_port: Option<u16>,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub read_only_api_key: Option<String>,
    #[serde(default = "default_max_request_size_mb")]
    pub max_request_size_mb: usize,
    #[serde(default = "default_true")]
    pub enable_cors: bool,
    #[serde(default)]
    pub enable_tls: bool,
}

fn default_log_level() -> String {
    "info".to_string()
}
fn default_storage_path() -> PathBuf {
    PathBuf::from("./storage")
}
fn default_host() -> String {
    "0.0.0.0".to_string()
}
fn default_http_port() -> u16 {
    6333
}
fn default_grpc_port() -> Option<u16> {
    Some(6334)
}
fn default_max_request_size_mb() -> usize {
    32
}
fn default_true() -> bool {
    true
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { storage_path: default_storage_path(), quotas: Default::default() }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            host: default_host(),
            http_port: default_http_port(),
            grpc_port: default_grpc_port(),
            api_key: None,
            read_only_api_key: None,
            max_request_size_mb: default_max_request_size_mb(),
            enable_cors: true,
            enable_tls: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            log_level: default_log_level(),
            storage: StorageConfig::default(),
            service: ServiceConfig::default(),
            tls: None,
            cluster: ClusterConfig::default(),
        }
    }
}

/// Command-line values that override the configuration when given.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub storage_path: Option<PathBuf>,
    pub host: Option<String>,
    pub http_port: Option<u16>,
    pub grpc_port: Option<u16>,
    pub api_key: Option<String>,
    pub read_only_api_key: Option<String>,
    pub log_level: Option<String>,
    pub max_request_size_mb: Option<usize>,
    pub disable_cors: bool,
    /// Serve HTTPS with this certificate and key (PEM).
    pub tls: Option<TlsConfig>,
}

impl Config {
    /// Loads the configuration. `file` is read when given (it must exist); otherwise
    /// `config/config.yaml` is read when present.
    pub fn load(file: Option<&Path>, cli: &Overrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(path.exists(), "config file {} does not exist", path.display());
                figment = figment.merge(Yaml::file_exact(path));
            }
            None => figment = figment.merge(Yaml::file("config/config.yaml")),
        }
        figment = figment.merge(Env::prefixed("GRAPE__").split("__"));
        let mut config: Config = figment.extract()?;
        config.apply(cli);
        Ok(config)
    }

    fn apply(&mut self, cli: &Overrides) {
        if let Some(p) = &cli.storage_path {
            self.storage.storage_path = p.clone();
        }
        if let Some(h) = &cli.host {
            self.service.host = h.clone();
        }
        if let Some(p) = cli.http_port {
            self.service.http_port = p;
        }
        if let Some(p) = cli.grpc_port {
            self.service.grpc_port = Some(p);
        }
        if let Some(k) = &cli.api_key {
            self.service.api_key = Some(k.clone());
        }
        if let Some(k) = &cli.read_only_api_key {
            self.service.read_only_api_key = Some(k.clone());
        }
        if let Some(l) = &cli.log_level {
            self.log_level = l.clone();
        }
        if let Some(m) = cli.max_request_size_mb {
            self.service.max_request_size_mb = m;
        }
        if cli.disable_cors {
            self.service.enable_cors = false;
        }
        if let Some(tls) = &cli.tls {
            self.tls = Some(tls.clone());
            self.service.enable_tls = true;
        }
    }
}
