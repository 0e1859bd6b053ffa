//! Errors as Qdrant reports them: an HTTP status and `{"status": {"error": "..."}, "time": t}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer: a status code and the message for the body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds spent on the request before it failed.
    pub time: f64,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), time: 0.0 }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// A request the server understood but Grape does not implement yet (named, never silently ignored).
    pub fn unsupported(what: &str) -> Self {
        ApiError::bad_request(format!("Bad request: {what} is not supported by Grape yet"))
    }

    pub fn with_time(mut self, time: f64) -> Self {
        self.time = time;
        self
    }
}

impl From<grape::Error> for ApiError {
    fn from(e: grape::Error) -> Self {
        use grape::Error as E;
        let status = match &e {
            E::BadInput(_) | E::DimensionMismatch { .. } => StatusCode::BAD_REQUEST,
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::AlreadyExists(_) => StatusCode::CONFLICT,
            E::Locked(_) | E::Closed | E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Corruption(_) | E::Io { .. } | E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!("request failed: {e}");
        }
        ApiError::new(status, e.to_string())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: ErrorStatus<'a>,
    time: f64,
}

#[derive(Serialize)]
struct ErrorStatus<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { status: ErrorStatus { error: &self.message }, time: self.time };
        (self.status, axum::Json(body)).into_response()
    }
}
