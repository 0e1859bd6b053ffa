//! Qdrant's gRPC API (tonic): `qdrant.Qdrant`, `qdrant.Collections`, `qdrant.Points`, `qdrant.Snapshots`
//! (the RPCs declared in `grape-proto`; others answer UNIMPLEMENTED) and the standard
//! `grpc.health.v1.Health`.
//!
//! Handlers only convert proto messages to the service layer's types ([`convert`], [`filter`],
//! [`query`]) and delegate to [`Service`], as the REST handlers do. Errors become gRPC codes through the same
//! [`ApiError`] the REST front end uses. Fields of features Grape does not build are refused with
//! INVALID_ARGUMENT naming the feature, never ignored.
//!
//! Deadlines: a request's `timeout` field (seconds, where Qdrant's message has one) and the client's
//! `grpc-timeout` header (applied by tonic's server) both end the call with DEADLINE_EXCEEDED. The
//! engine call already running on the blocking pool is not interrupted: a write may still complete.

mod collections;
mod convert;
mod explore;
mod filter;
mod points;
mod quantization;
mod query;
mod snapshots;
mod updates;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use grape_proto::qdrant::collections_server::CollectionsServer;
use grape_proto::qdrant::points_server::PointsServer;
use grape_proto::qdrant::qdrant_server::{Qdrant, QdrantServer};
use grape_proto::qdrant::snapshots_server::SnapshotsServer;
use grape_proto::qdrant::{HealthCheckReply, HealthCheckRequest};
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::rest::AuthConfig;
use crate::Service;

/// Settings of the gRPC front end.
#[derive(Debug, Clone, Default)]
pub struct GrpcConfig {
    pub auth: AuthConfig,
    /// Serve TLS with this PEM certificate chain and key (the same files as HTTPS).
    pub tls: Option<TlsIdentity>,
}

/// A PEM certificate chain and its private key.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").field("cert_pem", &self.cert_pem.len()).finish_non_exhaustive()
    }
}

/// The gRPC services of Grape, ready for a tonic server.
pub fn routes(service: Service, config: GrpcConfig) -> tonic::service::Routes {
    let state = State { service, auth: Arc::new(config.auth) };
    let (_, health) = tonic_health::server::health_reporter();
    tonic::service::Routes::new(health)
        .add_service(
            QdrantServer::new(state.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip),
        )
        .add_service(
            CollectionsServer::new(state.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(usize::MAX),
        )
        .add_service(
            SnapshotsServer::new(state.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip),
        )
        .add_service(
            PointsServer::new(state)
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        )
}

/// How long in-flight calls may run after the shutdown signal. An idle client connection would keep a
/// graceful HTTP/2 shutdown waiting for the client to close it, so the wait is bounded.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves [`routes`] on `listener` until `shutdown` resolves, then lets in-flight calls finish (for at
/// most [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Service,
    config: GrpcConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        let identity = tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem);
        server = server.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    // TCP_NODELAY as tonic sets it on the listeners it binds itself (it leaves a given listener's
    // sockets alone): small HTTP/2 frames must not wait for the peer's delayed ACK.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = stopping.send(());
    };
    let serving = server.add_routes(routes(service, config)).serve_with_incoming_shutdown(incoming, signal);
    let grace_over = async move {
        if stopped.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = serving => result,
        () = grace_over => {
            tracing::warn!("gRPC: connections still open {SHUTDOWN_GRACE:?} after shutdown; closing them");
            Ok(())
        }
    }
}

/// What every service implementation holds.
#[derive(Clone)]
pub(crate) struct State {
    service: Service,
    auth: Arc<AuthConfig>,
}

/// What an RPC does, for read-only API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

impl State {
    /// Checks the `api-key` metadata (or `authorization: Bearer`) against the configured keys.
    fn authorize(&self, metadata: &MetadataMap, access: Access) -> Result<(), Status> {
        let auth = &self.auth;
        if auth.api_key.is_none() && auth.read_only_api_key.is_none() {
            return Ok(());
        }
        let presented = metadata.get("api-key").and_then(|v| v.to_str().ok()).or_else(|| {
            metadata
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
        let Some(key) = presented else {
            return Err(Status::unauthenticated("Must provide an API key or an Authorization bearer token"));
        };
        if auth.api_key.as_deref().is_some_and(|k| crate::rest::same_key(k, key)) {
            return Ok(());
        }
        if auth.read_only_api_key.as_deref().is_some_and(|k| crate::rest::same_key(k, key)) {
            return match access {
                Access::Read => Ok(()),
                Access::Write => Err(Status::permission_denied(
                    "Forbidden: write access is not allowed with a read-only key",
                )),
            };
        }
        Err(Status::unauthenticated("Invalid API key or JWT"))
    }
}

/// An engine or service error as a gRPC status (the HTTP status the REST front end would send, mapped).
fn status(e: ApiError) -> Status {
    use axum::http::StatusCode as S;
    let code = match e.status {
        S::BAD_REQUEST | S::UNPROCESSABLE_ENTITY => tonic::Code::InvalidArgument,
        S::NOT_FOUND => tonic::Code::NotFound,
        S::CONFLICT => tonic::Code::AlreadyExists,
        S::UNAUTHORIZED => tonic::Code::Unauthenticated,
        S::FORBIDDEN => tonic::Code::PermissionDenied,
        S::PAYLOAD_TOO_LARGE | S::TOO_MANY_REQUESTS => tonic::Code::ResourceExhausted,
        S::SERVICE_UNAVAILABLE => tonic::Code::Unavailable,
        S::NOT_IMPLEMENTED => tonic::Code::Unimplemented,
        S::REQUEST_TIMEOUT | S::GATEWAY_TIMEOUT => tonic::Code::DeadlineExceeded,
        _ => tonic::Code::Internal,
    };
    Status::new(code, e.message)
}

/// INVALID_ARGUMENT for a request part Grape does not implement, named.
fn unsupported(what: &str) -> Status {
    Status::invalid_argument(format!("{what} is not supported by Grape yet"))
}

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message)
}

/// Runs `work` within a request's `timeout` (seconds); DEADLINE_EXCEEDED when it runs out.
async fn within<T>(timeout: Option<u64>, work: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
    let Some(secs) = timeout else { return work.await };
    if secs == 0 {
        return Err(invalid("timeout: must be at least 1 second"));
    }
    match tokio::time::timeout(std::time::Duration::from_secs(secs), work).await {
        Ok(result) => result,
        Err(_) => {
            Err(Status::deadline_exceeded(format!("Timeout error: the request took more than {secs} s")))
        }
    }
}

/// Seconds since `start`, for the `time` of replies.
fn elapsed(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

#[tonic::async_trait]
impl Qdrant for State {
    async fn health_check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckReply>, Status> {
        Ok(Response::new(HealthCheckReply {
            title: "grape - Qdrant-compatible vector search engine".to_owned(),
            version: crate::QDRANT_API_VERSION.to_owned(),
            commit: option_env!("GRAPE_GIT_COMMIT").map(str::to_owned),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timeouts() {
        let done = within(Some(5), async { Ok::<_, Status>(7) }).await.unwrap();
        assert_eq!(done, 7);
        let late = within(Some(1), std::future::pending::<Result<(), Status>>()).await.unwrap_err();
        assert_eq!(late.code(), tonic::Code::DeadlineExceeded);
        let zero = within(Some(0), async { Ok::<_, Status>(()) }).await.unwrap_err();
        assert_eq!(zero.code(), tonic::Code::InvalidArgument);
        assert!(within(None, async { Ok::<_, Status>(()) }).await.is_ok());
    }
}
