//! Errors of the index layer: I/O and file-format problems.

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt index file {file}: {reason}")]
    Corruption { file: String, reason: String },
    /// Quantization parameters that do not fit the vectors (refused before anything is built).
    #[error("{0}")]
    InvalidQuantization(String),
    /// Stored quantization parameters that do not decode.
    #[error("corrupt quantization data: {0}")]
    QuantizationCorruption(String),
}

impl IndexError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        IndexError::Io { context: context.into(), source }
    }

    pub fn corruption(file: impl Into<String>, reason: impl Into<String>) -> Self {
        IndexError::Corruption { file: file.into(), reason: reason.into() }
    }
}

impl From<IndexError> for grape_types::Error {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Io { context, source } => grape_types::Error::Io { context, source },
            IndexError::Corruption { file, reason } => {
                grape_types::Error::Corruption(format!("{file}: {reason}"))
            }
            IndexError::InvalidQuantization(msg) => grape_types::Error::bad_input(msg),
            e @ IndexError::QuantizationCorruption(_) => grape_types::Error::Corruption(e.to_string()),
        }
    }
}

pub type Result<T, E = IndexError> = std::result::Result<T, E>;
