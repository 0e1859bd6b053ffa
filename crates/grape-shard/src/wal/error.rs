//! Errors of the write-ahead log.

/// What can go wrong in the write-ahead log.
#[derive(thiserror::Error, Debug)]
pub enum WalError {
    /// The operating system failed a file operation. After a failed write or fsync the log refuses
    /// further writes (the state of the file is unknown); reopening it recovers.
    #[error("WAL I/O error: {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A segment failed a format or checksum check somewhere recovery may not repair.
    #[error("WAL corrupt: segment {segment} at byte {offset}: {reason}")]
    Corrupt { segment: String, offset: u64, reason: String },
    /// A record is larger than the format allows.
    #[error("WAL record of {size} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge { size: usize, max: usize },
    /// The log was closed with [`super::Wal::close`].
    #[error("WAL is closed")]
    Closed,
    /// The caller asked for something the log's state does not allow (e.g. resetting the next index
    /// of a log that holds records).
    #[error("invalid WAL request: {0}")]
    InvalidRequest(String),
}

impl WalError {
    pub(super) fn io(context: impl Into<String>, source: std::io::Error) -> WalError {
        WalError::Io { context: context.into(), source }
    }
}

impl From<WalError> for grape_types::Error {
    fn from(e: WalError) -> Self {
        match e {
            WalError::Io { context, source } => {
                grape_types::Error::Io { context: format!("write-ahead log: {context}"), source }
            }
            e @ WalError::Corrupt { .. } => grape_types::Error::Corruption(e.to_string()),
            e @ WalError::RecordTooLarge { .. } => grape_types::Error::BadInput(e.to_string()),
            WalError::Closed => grape_types::Error::Closed,
            e @ WalError::InvalidRequest(_) => grape_types::Error::Internal(e.to_string()),
        }
    }
}
