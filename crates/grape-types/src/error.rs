//! The engine's error taxonomy. Messages follow Qdrant's wording where Qdrant has one.

/// Errors returned by the engine. Each variant is a kind a caller can branch on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input is invalid; the message names the field and the problem.
    #[error("Wrong input: {0}")]
    BadInput(String),
    /// A vector has the wrong number of components.
    #[error("Wrong input: Vector dimension error: expected dim: {expected}, got {got}")]
    DimensionMismatch { expected: usize, got: usize },
    /// A collection, alias, point or vector name does not exist.
    #[error("Not found: {0}")]
    NotFound(String),
    /// Something with this name already exists.
    #[error("Wrong input: {0} already exists!")]
    AlreadyExists(String),
    /// Another process holds the database directory.
    #[error("database directory {0} is locked by another process")]
    Locked(String),
    /// The database or collection was closed.
    #[error("database is closed")]
    Closed,
    /// Stored data failed a checksum or format check.
    #[error("Service internal error: data corruption: {0}")]
    Corruption(String),
    /// An I/O error from the operating system.
    #[error("Service internal error: {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The cluster cannot serve the request now (no leader, no quorum, replicas unreachable); retrying
    /// later may succeed. A write that fails this way may or may not have been applied.
    #[error("Service unavailable: {0}")]
    Unavailable(String),
    /// An internal invariant failed; a bug.
    #[error("Service internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    pub fn bad_input(msg: impl Into<String>) -> Self {
        Error::BadInput(msg.into())
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
