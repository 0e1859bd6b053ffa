//! `grape`: the Grape server binary. `grape serve` opens the data directory and serves Qdrant's REST API
//! and its gRPC API.

mod config;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use grape_api::{AuthConfig, RestConfig, Service};

use crate::config::{Config, Overrides};

#[derive(Parser)]
#[command(name = "grape", version, about = "Grape: a Qdrant-compatible vector database")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (REST on 6333 and gRPC on 6334 by default).
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// YAML configuration file (default: config/config.yaml when it exists).
    #[arg(long)]
    config_path: Option<PathBuf>,
    /// Data directory (storage.storage_path; default ./storage).
    #[arg(long)]
    storage_path: Option<PathBuf>,
    #[arg(long)]
    host: Option<String>,
    #[arg(long)]
    http_port: Option<u16>,
    #[arg(long)]
    grpc_port: Option<u16>,
    /// Key required on every request (api-key header or Authorization: Bearer).
    #[arg(long)]
    api_key: Option<String>,
    /// Key that allows read requests only.
    #[arg(long)]
    read_only_api_key: Option<String>,
    /// trace, debug, info, warn or error (or a tracing filter directive).
    #[arg(long)]
    log_level: Option<String>,
    #[arg(long)]
    max_request_size_mb: Option<usize>,
    #[arg(long)]
    disable_cors: bool,
    /// Serve HTTPS with this PEM certificate (chain); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Cluster mode: how other nodes reach this node's p2p port, e.g. http://10.0.0.2:6335
    /// (default: http://<host>:<p2p port>).
    #[arg(long)]
    uri: Option<String>,
    /// Cluster mode: the p2p URI of a member to join; without it the node starts a new cluster (or,
    /// restarted, rejoins its own).
    #[arg(long)]
    bootstrap: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        storage_path: args.storage_path,
        host: args.host,
        http_port: args.http_port,
        grpc_port: args.grpc_port,
        api_key: args.api_key,
        read_only_api_key: args.read_only_api_key,
        log_level: args.log_level,
        max_request_size_mb: args.max_request_size_mb,
        disable_cors: args.disable_cors,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(config::TlsConfig { cert, key }),
            _ => None,
        },
    };
    let mut config = Config::load(args.config_path.as_deref(), &overrides)?;
    if args.uri.is_some() || args.bootstrap.is_some() {
        // As in Qdrant, naming peers implies cluster mode.
        config.cluster.enabled = true;
    }
    let cluster_args = ClusterArgs { uri: args.uri, bootstrap: args.bootstrap };
    init_tracing(&config.log_level)?;
    anyhow::ensure!(
        !config.service.enable_tls || config.tls.is_some(),
        "service.enable_tls: needs tls.cert and tls.key (or --tls-cert and --tls-key)"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("grape-io").build()?;
    runtime.block_on(run(config, cluster_args))
}

struct ClusterArgs {
    uri: Option<String>,
    bootstrap: Option<String>,
}

/// The database of this process: a plain one, or a cluster node's.
enum Storage {
    Single(grape::Database),
    Cluster(grape_cluster::ClusterNode),
}

impl Storage {
    fn database(&self) -> grape::Database {
        match self {
            Storage::Single(db) => db.clone(),
            Storage::Cluster(node) => node.database(),
        }
    }

    async fn close(self) -> anyhow::Result<()> {
        match self {
            Storage::Single(db) => tokio::task::spawn_blocking(move || db.close()).await??,
            Storage::Cluster(node) => node.shutdown().await?,
        }
        Ok(())
    }
}

/// Adapts a cluster node to what the API reports about the cluster.
struct NodeView(grape_cluster::NodeHandle);

impl grape_api::ClusterView for NodeView {
    fn status(&self) -> serde_json::Value {
        self.0.cluster_status()
    }
    fn metrics(&self) -> grape_api::ClusterMetrics {
        self.0.metrics()
    }
    fn collection_info(&self, name: &str) -> grape::Result<serde_json::Value> {
        self.0.collection_cluster_info(name)
    }
    fn change_replicas(
        &self,
        name: &str,
        shard: u32,
        add: Option<u64>,
        remove: Option<u64>,
    ) -> grape::Result<()> {
        self.0.change_replicas(name, shard, add, remove)
    }
    fn remove_peer(&self, id: u64, force: bool) -> grape::Result<()> {
        self.0.remove_peer(id, force)
    }
    fn peer_id(&self) -> u64 {
        self.0.id()
    }
    fn telemetry(&self) -> serde_json::Value {
        self.0.cluster_telemetry(grape_api::QDRANT_API_VERSION)
    }
}

async fn open_storage(config: &Config, cluster: ClusterArgs) -> anyhow::Result<(Storage, Service)> {
    let path = config.storage.storage_path.clone();
    if !config.cluster.enabled {
        let db = tokio::task::spawn_blocking(move || grape::Database::open(&path))
            .await?
            .with_context(|| format!("open storage {}", config.storage.storage_path.display()))?;
        let service =
            Service::new(db.clone()).with_quotas(config.storage.quotas).map_err(anyhow::Error::msg)?;
        return Ok((Storage::Single(db), service));
    }
    let port = config.cluster.p2p.port;
    let bind: SocketAddr = format!("{}:{port}", config.service.host)
        .parse()
        .with_context(|| format!("service.host: invalid address {}", config.service.host))?;
    let host = match config.service.host.as_str() {
        "0.0.0.0" | "::" => "127.0.0.1".to_string(),
        h => h.to_string(),
    };
    let mut options = grape_cluster::ClusterOptions::new(&path, bind);
    options.p2p_uri = cluster.uri.unwrap_or_else(|| format!("http://{host}:{port}"));
    options.api_uri = format!("http://{host}:{}", config.service.http_port);
    options.bootstrap = cluster.bootstrap;
    options.heartbeat_ms = config.cluster.consensus.tick_period_ms.max(10);
    options.election_timeout_ms = (options.heartbeat_ms * 4, options.heartbeat_ms * 8);
    let node = grape_cluster::ClusterNode::start(options).await.context("start the cluster node")?;
    tracing::info!(peer_id = node.id(), "cluster mode: p2p on {bind}");
    let service = Service::with_cluster(node.database(), Arc::new(NodeView(node.handle())))
        .with_quotas(config.storage.quotas)
        .map_err(anyhow::Error::msg)?;
    Ok((Storage::Cluster(node), service))
}

fn init_tracing(level: &str) -> anyhow::Result<()> {
    let mut directives = level.to_lowercase();
    if !directives.contains("openraft") {
        // openraft narrates every vote and replication step at info; its warnings are what matter here.
        directives.push_str(",openraft=warn");
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .with_context(|| format!("log_level: invalid value {level:?}"))?;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    Ok(())
}

async fn run(config: Config, cluster: ClusterArgs) -> anyhow::Result<()> {
    let (storage, service) = open_storage(&config, cluster).await?;
    let db = storage.database();
    let auth = AuthConfig {
        api_key: config.service.api_key.clone(),
        read_only_api_key: config.service.read_only_api_key.clone(),
    };
    let rest = RestConfig {
        auth: auth.clone(),
        max_request_size_bytes: config.service.max_request_size_mb.saturating_mul(1024 * 1024),
        enable_cors: config.service.enable_cors,
    };
    let app = grape_api::router(service.clone(), grape_api::metrics::Metrics::new(), rest);
    let addr: SocketAddr = format!("{}:{}", config.service.host, config.service.http_port)
        .parse()
        .with_context(|| format!("service.host: invalid address {}", config.service.host))?;
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("bind REST on {addr}"))?;
    let scheme = if config.service.enable_tls { "https" } else { "http" };
    tracing::info!(
        "Grape {} serving Qdrant REST on {scheme}://{} (data in {})",
        env!("CARGO_PKG_VERSION"),
        listener.local_addr()?,
        config.storage.storage_path.display()
    );
    // One signal stops both front ends; each lets its in-flight requests finish.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let grpc = match config.service.grpc_port {
        Some(port) => {
            // gRPC uses the same certificate as HTTPS when TLS is on.
            let tls = match config.tls.as_ref().filter(|_| config.service.enable_tls) {
                Some(tls) => Some(grpc_identity(tls).await?),
                None => None,
            };
            let addr = SocketAddr::new(addr.ip(), port);
            let listener =
                tokio::net::TcpListener::bind(addr).await.with_context(|| format!("bind gRPC on {addr}"))?;
            let with_tls = if tls.is_some() { " (TLS)" } else { "" };
            tracing::info!("serving Qdrant gRPC on {}{with_tls}", listener.local_addr()?);
            let config = grape_api::grpc::GrpcConfig { auth, tls };
            let until = wait_for(stopped.clone());
            Some(tokio::spawn(grape_api::grpc::serve(listener, service, config, until)))
        }
        None => None,
    };
    match config.tls.as_ref().filter(|_| config.service.enable_tls) {
        None => axum::serve(listener, app).with_graceful_shutdown(wait_for(stopped.clone())).await?,
        Some(tls) => serve_tls(listener, app, tls, wait_for(stopped)).await?,
    }
    if let Some(grpc) = grpc {
        grpc.await?.context("gRPC server")?;
    }
    tracing::info!("shutting down: flushing and closing the database");
    drop(db);
    storage.close().await?;
    tracing::info!("closed cleanly");
    Ok(())
}

/// The PEM certificate chain and key of `tls`, for the gRPC server.
async fn grpc_identity(tls: &config::TlsConfig) -> anyhow::Result<grape_api::grpc::TlsIdentity> {
    let cert_pem = tokio::fs::read(&tls.cert)
        .await
        .with_context(|| format!("tls: cannot read {}", tls.cert.display()))?;
    let key_pem =
        tokio::fs::read(&tls.key).await.with_context(|| format!("tls: cannot read {}", tls.key.display()))?;
    Ok(grape_api::grpc::TlsIdentity { cert_pem, key_pem })
}

/// HTTPS (rustls with the ring provider): same router, same graceful shutdown.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: &config::TlsConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Installing fails only if a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rustls_config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .with_context(|| format!("tls: cannot load {} / {}", tls.cert.display(), tls.key.display()))?;
    let handle = axum_server::Handle::new();
    let on_signal = handle.clone();
    tokio::spawn(async move {
        stop.await;
        on_signal.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, rustls_config)
        .handle(handle)
        .serve(app.into_make_service())
        .await?;
    Ok(())
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn wait_for(mut stopped: tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
