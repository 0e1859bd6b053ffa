//! Service endpoints: version, probes, metrics, telemetry, cluster status of a single node.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{AppState, Timed};

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct VersionInfo {
    title: &'static str,
    version: &'static str,
    commit: Option<&'static str>,
    grape_version: &'static str,
}

/// `GET /`: Qdrant clients read `version` and compare it with their own.
pub(super) async fn root() -> Response {
    axum::Json(VersionInfo {
        title: "grape - Qdrant-compatible vector search engine",
        version: crate::QDRANT_API_VERSION,
        commit: option_env!("GRAPE_GIT_COMMIT"),
        grape_version: env!("CARGO_PKG_VERSION"),
    })
    .into_response()
}

pub(super) async fn healthz() -> &'static str {
    "healthz check passed"
}

/// Ready once the database is open (the server starts listening only after that) and not closed.
pub(super) async fn readyz(State(s): State<AppState>) -> Response {
    match s.service.database().health().state {
        grape::HealthState::Closed => (StatusCode::SERVICE_UNAVAILABLE, "database is closed").into_response(),
        _ => "all shards are ready".into_response(),
    }
}

pub(super) async fn metrics(State(s): State<AppState>) -> Response {
    let service = s.service.clone();
    let metrics = s.metrics.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        let cluster = service.cluster().map(|c| c.metrics());
        metrics.render(service.database(), service.uptime(), cluster.as_ref())
    })
    .await;
    match rendered {
        Ok(text) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("metrics failed: {e}")).into_response(),
    }
}

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Telemetry {
    id: String,
    app: AppTelemetry,
    collections: CollectionsTelemetry,
}

#[derive(Serialize, schemars::JsonSchema)]
struct AppTelemetry {
    name: &'static str,
    version: &'static str,
    grape_version: &'static str,
    uptime_seconds: u64,
}

#[derive(Serialize, schemars::JsonSchema)]
struct CollectionsTelemetry {
    number_of_collections: usize,
    collections: Vec<grape::CollectionStats>,
}

pub(super) async fn telemetry(t: Timed, State(s): State<AppState>) -> Response {
    let uptime = s.service.uptime().as_secs();
    let r = s
        .service
        .run(move |db| {
            let health = db.health();
            Ok(Telemetry {
                id: db.path().display().to_string(),
                app: AppTelemetry {
                    name: "grape",
                    version: crate::QDRANT_API_VERSION,
                    grape_version: env!("CARGO_PKG_VERSION"),
                    uptime_seconds: uptime,
                },
                collections: CollectionsTelemetry {
                    number_of_collections: health.collections.len(),
                    collections: health.collections,
                },
            })
        })
        .await;
    t.reply(r)
}

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ClusterStatus {
    status: &'static str,
}

#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
pub(super) struct RemovePeerParams {
    #[serde(default)]
    force: bool,
    #[serde(default)]
    #[allow(dead_code)]
    timeout: Option<u64>,
}

/// `DELETE /cluster/peer/{peer_id}` (cluster mode).
pub(super) async fn remove_peer(
    t: Timed,
    State(s): State<AppState>,
    axum::extract::Path(peer): axum::extract::Path<u64>,
    super::extract::Params(params): super::extract::Params<RemovePeerParams>,
) -> Response {
    let Some(view) = s.service.cluster().cloned() else {
        return t.reply::<bool>(Err(crate::ApiError::bad_request("Bad request: Distributed mode disabled")));
    };
    t.reply(s.service.run(move |_| view.remove_peer(peer, params.force).map(|()| true)).await)
}

/// `GET /cluster`: "disabled" on a single node; peers and Raft state of the metadata group on a
/// cluster node.
pub(super) async fn cluster(t: Timed, State(s): State<AppState>) -> Response {
    match s.service.cluster() {
        Some(view) => t.reply(Ok(view.status())),
        None => t.reply(Ok(ClusterStatus { status: "disabled" })),
    }
}

/// Query parameters of `GET /cluster/telemetry`. Grape reports one level of detail (shards and their
/// replicas), whatever `details_level` asks; `timeout` bounds nothing, as no other peer is polled.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
pub(super) struct ClusterTelemetryParams {
    #[serde(default)]
    #[allow(dead_code)]
    details_level: Option<u64>,
    #[serde(default)]
    #[allow(dead_code)]
    timeout: Option<u64>,
}

/// Qdrant's `DistributedTelemetryData` (the documented shape for the OpenAPI document; the answer is
/// built as JSON by the cluster layer on a cluster node).
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct DistributedTelemetry {
    collections: serde_json::Map<String, serde_json::Value>,
    cluster: DistributedCluster,
}

#[derive(Serialize, schemars::JsonSchema)]
struct DistributedCluster {
    enabled: bool,
    number_of_peers: Option<u64>,
    peers: serde_json::Map<String, serde_json::Value>,
}

/// `GET /cluster/telemetry`. A single node answers as a Qdrant node with cluster mode disabled: no
/// cluster status, hence no peers and no per-collection topology.
pub(super) async fn cluster_telemetry(
    t: Timed,
    State(s): State<AppState>,
    super::extract::Params(_): super::extract::Params<ClusterTelemetryParams>,
) -> Response {
    match s.service.cluster().cloned() {
        Some(view) => t.reply(s.service.run(move |_| Ok(view.telemetry())).await),
        None => t.reply(Ok(DistributedTelemetry {
            collections: serde_json::Map::new(),
            cluster: DistributedCluster {
                enabled: false,
                number_of_peers: None,
                peers: serde_json::Map::new(),
            },
        })),
    }
}

/// `POST /cluster/recover`: Qdrant asks the consensus leader for a snapshot of the cluster state. A
/// single node has no consensus: 500 as Qdrant in standalone mode. A Grape cluster node needs no such
/// request (a follower that fell behind the metadata log is sent the leader's snapshot by Raft itself),
/// so it says so rather than pretend to have done something.
pub(super) async fn recover(t: Timed, State(s): State<AppState>) -> Response {
    let error = match s.service.cluster() {
        None => crate::ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Service internal error: Grape is running in standalone mode (cluster mode is disabled)",
        ),
        Some(_) => crate::ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "Not implemented: recovering the cluster state on request is not built in Grape; a node whose \
             metadata log fell behind is sent the leader's snapshot automatically (check GET /cluster)",
        ),
    };
    t.reply::<bool>(Err(error))
}
