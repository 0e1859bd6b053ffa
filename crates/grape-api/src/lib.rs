//! Grape's Qdrant-compatible API.
//!
//! - [`service::Service`]: the one service layer that REST (and, later, gRPC and the cluster router) call.
//!   It owns the [`grape::Database`], runs every engine call on tokio's blocking pool and carries the
//!   request semantics that are not transport-specific (query by point id, recommend, discover, groups,
//!   facets, the distance matrix, scroll `order_by`, consistency of `wait`).
//! - [`grpc`]: tonic services for Qdrant's gRPC API (`grape-proto`), converting proto messages and
//!   delegating to the same service layer.
//! - [`rest`]: axum handlers for Qdrant's REST paths. They only convert wire JSON to engine types and
//!   delegate.
//! - [`error::ApiError`]: engine errors mapped to Qdrant's status codes and error body.
//! - [`metrics::Metrics`]: Prometheus metrics for `/metrics`.

pub mod error;
pub mod grpc;
pub mod metrics;
pub mod rest;
pub mod service;

pub use error::ApiError;
pub use rest::{router, AuthConfig, RestConfig};
pub use service::{ClusterMetrics, ClusterView, Service};

/// The Qdrant API version Grape implements and reports from `GET /` (clients compare it with their own).
pub const QDRANT_API_VERSION: &str = "1.19.0";
