//! Collection, shard and full snapshots: create, list, download, delete, and recovery of a collection
//! (or of one shard) from a `file://` or `http(s)://` location or from a multipart upload; a shard's
//! snapshot can also be streamed without being stored.

use std::future::Future;
use std::path::{Component, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Bytes, HttpBody};
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use grape::Error;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::extract::{Body, Params};
use super::{AppState, Timed};
use crate::error::ApiError;

/// `?wait=`: snapshot calls wait by default, as in Qdrant.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub(super) struct WaitParams {
    #[serde(default)]
    wait: Option<bool>,
}

/// Which copy wins when replicas disagree. A single node has no other replica, so every value recovers
/// the same way; the field is checked and accepted for compatibility.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum SnapshotPriority {
    NoSync,
    Snapshot,
    Replica,
}

/// `PUT /collections/{c}/snapshots/recover` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SnapshotRecover {
    location: String,
    #[serde(default, rename = "priority")]
    _priority: Option<SnapshotPriority>,
    #[serde(default)]
    checksum: Option<String>,
    /// Sent as the `api-key` header when fetching an http(s) location.
    #[serde(default)]
    api_key: Option<String>,
}

/// `POST /collections/{c}/snapshots/upload` query.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub(super) struct UploadParams {
    #[serde(default)]
    wait: Option<bool>,
    #[serde(default, rename = "priority")]
    _priority: Option<SnapshotPriority>,
    #[serde(default)]
    checksum: Option<String>,
}

#[derive(Serialize, schemars::JsonSchema)]
struct Accepted {
    result: Option<()>,
    status: &'static str,
    time: f64,
}

/// Awaits `work` and replies with its outcome, or (`wait=false`) lets it run in the background and
/// replies 202 `{"result": null, "status": "accepted"}` at once, as Qdrant does.
async fn reply_or_accept<T, F>(t: Timed, wait: bool, work: F) -> Response
where
    T: Serialize + Send + 'static,
    F: Future<Output = Result<T, ApiError>> + Send + 'static,
{
    if wait {
        return t.reply(work.await);
    }
    tokio::spawn(async move {
        match work.await {
            Err(e) if e.status.is_server_error() => tracing::error!("snapshot task failed: {}", e.message),
            Err(e) => tracing::warn!("snapshot task refused: {}", e.message),
            Ok(_) => {}
        }
    });
    let body = Accepted { result: None, status: "accepted", time: t.0.elapsed().as_secs_f64() };
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

// ---- collection snapshots ----

pub(super) async fn list(t: Timed, State(s): State<AppState>, Path(c): Path<String>) -> Response {
    t.reply(s.service.run(move |db| db.list_collection_snapshots(&c)).await)
}

pub(super) async fn create(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<WaitParams>,
) -> Response {
    let work = async move { s.service.run(move |db| db.create_collection_snapshot(&c)).await };
    reply_or_accept(t, p.wait.unwrap_or(true), work).await
}

pub(super) async fn download(
    t: Timed,
    State(s): State<AppState>,
    Path((c, name)): Path<(String, String)>,
) -> Response {
    let opened = s.service.run(move |db| open_snapshot(db.collection_snapshot_path(&c, &name)?, name)).await;
    file_response(t, opened)
}

pub(super) async fn delete(
    t: Timed,
    State(s): State<AppState>,
    Path((c, name)): Path<(String, String)>,
    Params(p): Params<WaitParams>,
) -> Response {
    let work =
        async move { s.service.run(move |db| db.delete_collection_snapshot(&c, &name).map(|()| true)).await };
    reply_or_accept(t, p.wait.unwrap_or(true), work).await
}

pub(super) async fn recover(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<WaitParams>,
    Body(req): Body<SnapshotRecover>,
) -> Response {
    recover_from(t, s, p, req, move |db, path, checksum| db.recover_collection_snapshot(&c, path, checksum))
        .await
}

/// Recovers from the location of `req` (a local file, or a URL downloaded to a spool file first).
async fn recover_from(
    t: Timed,
    s: AppState,
    p: WaitParams,
    req: SnapshotRecover,
    recover: impl FnOnce(&grape::Database, &std::path::Path, Option<&str>) -> grape::Result<()> + Send + 'static,
) -> Response {
    let source = match SnapshotSource::parse(&req.location) {
        Ok(source) => source,
        Err(e) => return t.reply::<()>(Err(e)),
    };
    let work = async move {
        s.service
            .run(move |db| {
                let (path, _spool) = match source {
                    SnapshotSource::File(path) => (path, None),
                    SnapshotSource::Url(url) => {
                        let spool = Spool(db.snapshot_spool_path()?);
                        fetch(&url, req.api_key.as_deref(), &spool.0)?;
                        (spool.0.clone(), Some(spool))
                    }
                };
                recover(db, &path, req.checksum.as_deref()).map(|()| true)
            })
            .await
    };
    reply_or_accept(t, p.wait.unwrap_or(true), work).await
}

/// `POST /collections/{c}/snapshots/upload`: the multipart field `snapshot` is spooled to a file in the
/// snapshots directory (the request body limit does not apply), then recovered from.
pub(super) async fn upload(
    t: Timed,
    State(s): State<AppState>,
    Path(c): Path<String>,
    Params(p): Params<UploadParams>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let spool = match receive_upload(&s, multipart).await {
        Ok(spool) => spool,
        Err(e) => return t.reply::<()>(Err(e)),
    };
    let work = async move {
        s.service
            .run(move |db| {
                let spool = spool;
                db.recover_collection_snapshot(&c, &spool.0, p.checksum.as_deref()).map(|()| true)
            })
            .await
    };
    reply_or_accept(t, p.wait.unwrap_or(true), work).await
}

async fn receive_upload(
    s: &AppState,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Spool, ApiError> {
    let bad = |e: &dyn std::fmt::Display| ApiError::bad_request(format!("Bad request: snapshot upload: {e}"));
    let mut multipart = multipart.map_err(|e| bad(&e.body_text()))?;
    let spool = Spool(s.service.run(|db| db.snapshot_spool_path()).await?);
    let io = |e: std::io::Error| ApiError::from(Error::io(format!("write {}", spool.0.display()), e));
    while let Some(mut field) = multipart.next_field().await.map_err(|e| bad(&e))? {
        if field.name() != Some("snapshot") {
            continue;
        }
        let mut file = tokio::fs::File::create(&spool.0).await.map_err(io)?;
        while let Some(chunk) = field.chunk().await.map_err(|e| bad(&e))? {
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        return Ok(spool);
    }
    Err(bad(&"the multipart form has no `snapshot` field"))
}

// ---- shard snapshots ----

/// `{collection}`, `{shard_id}` (a number, else Qdrant's 400 error body) and `{name}` (when the route
/// has one) from the path of a shard snapshot route.
pub(super) struct ShardPath {
    collection: String,
    shard: u32,
    name: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ShardPath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Response> {
        let Path(mut params) =
            Path::<std::collections::BTreeMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        let raw = params.remove("shard_id").unwrap_or_default();
        let shard = raw.parse().map_err(|_| {
            ApiError::bad_request(format!("Bad request: shard id {raw:?} is not a number")).into_response()
        })?;
        Ok(ShardPath {
            collection: params.remove("collection").unwrap_or_default(),
            shard,
            name: params.remove("name").unwrap_or_default(),
        })
    }
}

pub(super) async fn list_shard(t: Timed, State(s): State<AppState>, p: ShardPath) -> Response {
    t.reply(s.service.run(move |db| db.list_shard_snapshots(&p.collection, p.shard)).await)
}

pub(super) async fn create_shard(
    t: Timed,
    State(s): State<AppState>,
    p: ShardPath,
    Params(w): Params<WaitParams>,
) -> Response {
    let work = async move { s.service.run(move |db| db.create_shard_snapshot(&p.collection, p.shard)).await };
    reply_or_accept(t, w.wait.unwrap_or(true), work).await
}

pub(super) async fn download_shard(t: Timed, State(s): State<AppState>, p: ShardPath) -> Response {
    let opened = s
        .service
        .run(move |db| open_snapshot(db.shard_snapshot_path(&p.collection, p.shard, &p.name)?, p.name))
        .await;
    file_response(t, opened)
}

pub(super) async fn delete_shard(
    t: Timed,
    State(s): State<AppState>,
    p: ShardPath,
    Params(w): Params<WaitParams>,
) -> Response {
    let work = async move {
        s.service
            .run(move |db| db.delete_shard_snapshot(&p.collection, p.shard, &p.name).map(|()| true))
            .await
    };
    reply_or_accept(t, w.wait.unwrap_or(true), work).await
}

pub(super) async fn recover_shard(
    t: Timed,
    State(s): State<AppState>,
    p: ShardPath,
    Params(w): Params<WaitParams>,
    Body(req): Body<SnapshotRecover>,
) -> Response {
    recover_from(t, s, w, req, move |db, path, checksum| {
        db.recover_shard_snapshot(&p.collection, p.shard, path, checksum)
    })
    .await
}

/// `POST .../shards/{shard}/snapshots/upload`: as the collection upload, for one shard.
pub(super) async fn upload_shard(
    t: Timed,
    State(s): State<AppState>,
    p: ShardPath,
    Params(u): Params<UploadParams>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let spool = match receive_upload(&s, multipart).await {
        Ok(spool) => spool,
        Err(e) => return t.reply::<()>(Err(e)),
    };
    let work = async move {
        s.service
            .run(move |db| {
                let spool = spool;
                db.recover_shard_snapshot(&p.collection, p.shard, &spool.0, u.checksum.as_deref())
                    .map(|()| true)
            })
            .await
    };
    reply_or_accept(t, u.wait.unwrap_or(true), work).await
}

/// `GET .../shards/{shard}/snapshot`: a fresh snapshot of the shard, streamed and not kept (it is
/// spooled to a file that is unlinked once open).
pub(super) async fn stream_shard(t: Timed, State(s): State<AppState>, p: ShardPath) -> Response {
    let opened = s
        .service
        .run(move |db| {
            let spool = Spool(db.snapshot_spool_path()?);
            let io = |e: std::io::Error| Error::io(format!("write {}", spool.0.display()), e);
            {
                let file = std::fs::File::create(&spool.0).map_err(io)?;
                let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
                db.write_shard_snapshot(&p.collection, p.shard, &mut out)?;
                std::io::Write::flush(&mut out).map_err(io)?;
            }
            open_snapshot(spool.0.clone(), format!("{}-shard-{}.snapshot", p.collection, p.shard))
        })
        .await;
    file_response(t, opened)
}

// ---- full snapshots ----

pub(super) async fn list_full(t: Timed, State(s): State<AppState>) -> Response {
    t.reply(s.service.run(|db| db.list_full_snapshots()).await)
}

pub(super) async fn create_full(
    t: Timed,
    State(s): State<AppState>,
    Params(p): Params<WaitParams>,
) -> Response {
    let work = async move { s.service.run(|db| db.create_full_snapshot()).await };
    reply_or_accept(t, p.wait.unwrap_or(true), work).await
}

pub(super) async fn download_full(t: Timed, State(s): State<AppState>, Path(name): Path<String>) -> Response {
    let opened = s.service.run(move |db| open_snapshot(db.full_snapshot_path(&name)?, name)).await;
    file_response(t, opened)
}

pub(super) async fn delete_full(
    t: Timed,
    State(s): State<AppState>,
    Path(name): Path<String>,
    Params(p): Params<WaitParams>,
) -> Response {
    let work = async move { s.service.run(move |db| db.delete_full_snapshot(&name).map(|()| true)).await };
    reply_or_accept(t, p.wait.unwrap_or(true), work).await
}

// ---- files ----

/// A spooled snapshot file, removed when the request is done with it.
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.0.display(), "cannot remove spooled snapshot: {e}");
            }
        }
    }
}

/// Where a snapshot to recover from is.
#[derive(Debug, PartialEq)]
enum SnapshotSource {
    File(PathBuf),
    Url(String),
}

impl SnapshotSource {
    /// `file:///absolute/path` (any existing absolute path; no `..`), or an `http(s)://` URL.
    fn parse(location: &str) -> Result<SnapshotSource, ApiError> {
        if location.starts_with("http://") || location.starts_with("https://") {
            return Ok(SnapshotSource::Url(location.to_string()));
        }
        let Some(rest) = location.strip_prefix("file://") else {
            return Err(ApiError::bad_request(format!(
                "Bad request: snapshot location {location:?} is not a file:// or http(s):// URL"
            )));
        };
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        let path = PathBuf::from(percent_decode(rest)?);
        if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(ApiError::bad_request(format!(
                "Bad request: snapshot location {location:?} must be an absolute path without `..` (file:///path)"
            )));
        }
        Ok(SnapshotSource::File(path))
    }
}

fn percent_decode(s: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request(format!("Bad request: snapshot location has a bad %-escape: {s}"));
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Downloads `url` into `dest` (blocking; runs on the blocking pool).
fn fetch(url: &str, api_key: Option<&str>, dest: &std::path::Path) -> grape::Result<()> {
    let failed = |e: &dyn std::error::Error| {
        let mut message = format!("cannot download snapshot from {url}: {e}");
        let mut source = e.source();
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Error::bad_input(message)
    };
    let client = reqwest::blocking::Client::builder().timeout(None).build().map_err(|e| failed(&e))?;
    let mut request = client.get(url);
    if let Some(key) = api_key {
        request = request.header("api-key", key);
    }
    let mut response = request.send().map_err(|e| failed(&e))?;
    if !response.status().is_success() {
        return Err(Error::bad_input(format!(
            "cannot download snapshot from {url}: status {}",
            response.status()
        )));
    }
    let mut file =
        std::fs::File::create(dest).map_err(|e| Error::io(format!("create {}", dest.display()), e))?;
    response.copy_to(&mut file).map_err(|e| failed(&e))?;
    Ok(())
}

/// An open snapshot file with its size and name, ready to stream.
struct OpenSnapshot {
    file: std::fs::File,
    size: u64,
    name: String,
}

fn open_snapshot(path: PathBuf, name: String) -> grape::Result<OpenSnapshot> {
    let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::not_found(format!("Snapshot {name} not found")),
        _ => Error::io(format!("open {}", path.display()), e),
    })?;
    let size = file.metadata().map_err(|e| Error::io(format!("stat {}", path.display()), e))?.len();
    Ok(OpenSnapshot { file, size, name })
}

/// Streams a snapshot file (never read whole into memory): a blocking-pool task reads chunks into a
/// small channel that the response body drains as the client reads.
fn file_response(t: Timed, opened: Result<OpenSnapshot, ApiError>) -> Response {
    let OpenSnapshot { mut file, size, name } = match opened {
        Ok(o) => o,
        Err(e) => return t.reply::<()>(Err(e)),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        loop {
            let mut buf = vec![0u8; 256 << 10];
            let sent = match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    tx.blocking_send(Ok(Bytes::from(buf)))
                }
                Err(e) => tx.blocking_send(Err(e)),
            };
            if sent.is_err() {
                return; // the client went away
            }
        }
    });
    let mut response = axum::body::Body::new(FileBody { rx, remaining: size }).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// Response body fed by the reader task; its exact size becomes the Content-Length.
struct FileBody {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    remaining: u64,
}

impl HttpBody for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
        }
        polled.map(|chunk| chunk.map(|r| r.map(http_body::Frame::data)))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_locations() {
        assert_eq!(
            SnapshotSource::parse("file:///data/s%20x.snapshot").unwrap(),
            SnapshotSource::File("/data/s x.snapshot".into())
        );
        assert_eq!(
            SnapshotSource::parse("file://localhost/a.snapshot").unwrap(),
            SnapshotSource::File("/a.snapshot".into())
        );
        assert_eq!(
            SnapshotSource::parse("http://h:1/x.snapshot").unwrap(),
            SnapshotSource::Url("http://h:1/x.snapshot".into())
        );
        for bad in ["file://relative/x", "file:///a/../etc/passwd", "/abs/path", "ftp://x", "file:///%zz"] {
            let e = SnapshotSource::parse(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
