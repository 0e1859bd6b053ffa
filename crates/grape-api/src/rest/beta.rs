//! `GET/DELETE /issues` (Qdrant's beta issues report) and `GET/PUT /quotas` (resource quotas, Qdrant
//! 1.19). The logic is in [`crate::service::issues`] and [`crate::service::quotas`].

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::extract::{Body, Params};
use super::{AppState, Timed};
use crate::service::issues::IssuesReport;
use crate::service::quotas::{QuotaConfig, QuotaStatus};

/// `GET /issues`: the issues noticed so far that are still unresolved.
pub(super) async fn issues(t: Timed, State(s): State<AppState>) -> Response {
    let issues = s.service.issues().clone();
    t.reply::<IssuesReport>(s.service.run(move |db| Ok(issues.report(db))).await)
}

/// `DELETE /issues`: forgets every issue.
pub(super) async fn clear_issues(t: Timed, State(s): State<AppState>) -> Response {
    s.service.issues().clear();
    t.reply(Ok(true))
}

/// Query parameters of `PUT /quotas`. A node applies the configuration before answering, so `wait` is
/// accepted and changes nothing.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub(super) struct QuotaParams {
    #[serde(default)]
    #[allow(dead_code)]
    wait: Option<bool>,
}

/// `GET /quotas`: the configuration in force and this node's readings.
pub(super) async fn quotas(t: Timed, State(s): State<AppState>) -> Response {
    let quotas = s.service.quotas().clone();
    let peer = s.service.cluster().map(|c| c.peer_id());
    t.reply::<QuotaStatus>(s.service.run(move |_| Ok(quotas.status(peer))).await)
}

/// `PUT /quotas`: replaces the configuration (persisted in the storage directory; on a cluster node
/// it applies to this node only).
pub(super) async fn update_quotas(
    t: Timed,
    State(s): State<AppState>,
    Params(_): Params<QuotaParams>,
    Body(config): Body<QuotaConfig>,
) -> Response {
    let quotas = s.service.quotas().clone();
    let set = s.service.run(move |_| Ok(quotas.set(config))).await;
    t.reply(set.and_then(|r| r.map(|()| true)))
}
