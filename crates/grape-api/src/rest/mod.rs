//! Qdrant's REST API over axum. Handlers convert wire JSON ([`wire`]) to service types and delegate to
//! [`Service`]; every answer is wrapped as `{"result", "status": "ok", "time"}` or Qdrant's error body.

mod beta;
mod collections;
mod explore;
pub mod explore_wire;
mod extract;
mod filter_expr;
mod openapi;
mod points;
mod query_field;
pub mod query_wire;
mod routes;
mod shard_keys;
mod snapshots;
mod system;
pub mod wire;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Serialize;
use tower_http::cors::CorsLayer;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::service::Service;

/// API keys, as Qdrant's `service.api_key` and `service.read_only_api_key`.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub api_key: Option<String>,
    pub read_only_api_key: Option<String>,
}

impl AuthConfig {
    fn enabled(&self) -> bool {
        self.api_key.is_some() || self.read_only_api_key.is_some()
    }
}

/// Settings of the REST front end.
#[derive(Debug, Clone)]
pub struct RestConfig {
    pub auth: AuthConfig,
    /// Largest accepted request body.
    pub max_request_size_bytes: usize,
    pub enable_cors: bool,
}

impl Default for RestConfig {
    fn default() -> Self {
        RestConfig {
            auth: AuthConfig::default(),
            max_request_size_bytes: 32 * 1024 * 1024,
            enable_cors: true,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub service: Service,
    pub metrics: Metrics,
    pub auth: Arc<AuthConfig>,
    /// The OpenAPI document of the routes, served at `GET /openapi.json`.
    pub openapi: Arc<serde_json::Value>,
}

/// The REST router for a service: the routes of [`routes::table`], the 501 answers of Qdrant endpoints
/// not built yet, and the middleware (API keys, metrics, body limit, CORS).
pub fn router(service: Service, metrics: Metrics, config: RestConfig) -> Router {
    let routes = routes::table();
    let openapi = openapi::document(routes.iter().map(|r| (&r.method, r.path.as_str(), &r.doc)));
    let state = AppState { service, metrics, auth: Arc::new(config.auth), openapi: Arc::new(openapi) };
    let mut app = Router::new();
    for route in routes {
        app = app.route(&route.path, route.handler);
    }
    let mut app = app
        .merge(not_built_routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(config.max_request_size_bytes));
    if config.enable_cors {
        app = app.layer(CorsLayer::permissive());
    }
    app.with_state(state)
}

/// Qdrant endpoints Grape does not serve yet, as (path, feature): answered with 501 and the feature's
/// name, so a client learns exactly what is missing instead of meeting a generic 404. Every endpoint of
/// Qdrant 1.19's document is served now; one added later goes here until it is built.
const NOT_BUILT: &[(&str, &str)] = &[];

fn not_built_routes() -> Router<AppState> {
    use axum::routing::{any, MethodRouter};
    fn missing(feature: &'static str) -> MethodRouter<AppState> {
        any(move || async move {
            ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!("Not implemented: {feature} is not built in Grape yet"),
            )
        })
    }
    NOT_BUILT.iter().fold(Router::new(), |router, &(path, feature)| router.route(path, missing(feature)))
}

async fn not_found() -> ApiError {
    ApiError::not_found("Not found: no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed for this endpoint")
}

/// Request counts and latency per route pattern.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state.metrics.observe(method.as_str(), &endpoint, response.status().as_u16(), started.elapsed());
    response
}

/// Endpoints that answer without a key (probes).
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz")
}

/// POST endpoints that only read; a read-only key may call them.
fn is_read_post(path: &str) -> bool {
    const READ_SUFFIXES: &[&str] = &[
        "/points",
        "/points/scroll",
        "/points/count",
        "/points/search",
        "/points/search/batch",
        "/points/search/groups",
        "/points/query",
        "/points/query/batch",
        "/points/query/groups",
        "/points/recommend",
        "/points/recommend/batch",
        "/points/recommend/groups",
        "/points/discover",
        "/points/discover/batch",
        "/points/search/matrix/pairs",
        "/points/search/matrix/offsets",
        "/facet",
    ];
    path.starts_with("/collections/") && READ_SUFFIXES.iter().any(|s| path.ends_with(s))
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(k) = headers.get("api-key").and_then(|v| v.to_str().ok()) {
        return Some(k);
    }
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
}

/// Compares keys in time independent of where they differ.
pub(crate) fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let auth = &state.auth;
    if !auth.enabled() || is_public(request.uri().path()) || request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    let Some(key) = presented_key(request.headers()) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Must provide an API key or an Authorization bearer token",
        )
        .into_response();
    };
    if auth.api_key.as_deref().is_some_and(|k| same_key(k, key)) {
        return next.run(request).await;
    }
    if auth.read_only_api_key.as_deref().is_some_and(|k| same_key(k, key)) {
        let method = request.method();
        let reading = method == Method::GET
            || method == Method::HEAD
            || (method == Method::POST && is_read_post(request.uri().path()));
        if reading {
            return next.run(request).await;
        }
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden: write access is not allowed with a read-only key",
        )
        .into_response();
    }
    ApiError::new(StatusCode::UNAUTHORIZED, "Invalid API key or JWT").into_response()
}

/// When a request started; taken first so the reported `time` covers body parsing too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timed(Instant);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Timed {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Timed(Instant::now()))
    }
}

#[derive(Serialize)]
struct Envelope<T> {
    result: T,
    status: &'static str,
    time: f64,
}

impl Timed {
    /// Wraps a handler's outcome in Qdrant's envelope.
    pub fn reply<T: Serialize>(self, outcome: Result<T, ApiError>) -> Response {
        let time = self.0.elapsed().as_secs_f64();
        match outcome {
            Ok(result) => axum::Json(Envelope { result, status: "ok", time }).into_response(),
            Err(e) => e.with_time(time).into_response(),
        }
    }
}
