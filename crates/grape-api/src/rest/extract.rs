//! Extractors whose failures answer with Qdrant's error body instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body. Malformed JSON and type errors are 400 "Json deserialize error: ...",
/// a body over the size limit is 413.
#[derive(Debug)]
pub(crate) struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "Payload too large: the request body exceeds the configured max_request_size_mb".to_string()
            } else {
                format!("Bad request: {}", rejection.body_text())
            };
            ApiError::new(status, message)
        })?;
        // A body naming `filter_expr` is rewritten first (bodies without it are read straight).
        let has_expr =
            bytes.windows(super::filter_expr::FIELD.len()).any(|w| w == super::filter_expr::FIELD.as_bytes());
        let read = if has_expr {
            let mut json: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("Json deserialize error: {e}")))?;
            super::filter_expr::resolve(&mut json, "")?;
            serde_path_to_error::deserialize(json)
        } else {
            // Read untracked first: tracking the path costs about a third of reading a search's
            // vector (profile of a REST search load). Only a body that fails is read again, to name
            // the offending field.
            let plain = match serde_json::from_slice(&bytes) {
                Ok(value) => return Ok(Body(value)),
                Err(e) => e,
            };
            let de = &mut serde_json::Deserializer::from_slice(&bytes);
            match serde_path_to_error::deserialize::<_, T>(de) {
                // Readable but followed by more than whitespace.
                Ok(_) => return Err(ApiError::bad_request(format!("Json deserialize error: {plain}"))),
                Err(e) => Err(e),
            }
        };
        let value = read.map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // The path names the offending field ("points[0].id"); "." is the whole body.
            let message = if path == "." {
                format!("Json deserialize error: {inner}")
            } else {
                format!("Json deserialize error: {path}: {inner}")
            };
            ApiError::bad_request(message)
        })?;
        Ok(Body(value))
    }
}

/// Query-string parameters; bad values are 400 with the parameter named.
#[derive(Debug)]
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::bad_request(format!("Query deserialize error: {}", e.body_text())))
    }
}
