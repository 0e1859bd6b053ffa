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
