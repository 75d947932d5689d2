//! The one error type of the crate: every bad input names the file, record, field or shape and
//! what was expected.

use std::path::PathBuf;

/// Errors of reading, validating and evaluating embeddings.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The file could not be opened, read, written or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The path exists but is not a regular file (a folder, a named pipe, a device): it is
    /// refused rather than read (reading a pipe would wait forever).
    #[error("{path}: not a regular file (folders, named pipes and devices are not read)")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file extension is not one this crate reads or writes.
    #[error("{path}: unsupported file extension (expected .npy or .safetensors)")]
    UnsupportedExtension {
        /// The file.
        path: PathBuf,
    },
    /// A `.npy` file is malformed or holds something other than what was asked for.
    #[error("{path}: invalid .npy file: {reason}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// A `.safetensors` file is malformed or holds something other than what was asked for.
    #[error("{path}: invalid .safetensors file: {reason}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// A line of a pairs file is malformed.
    #[error("{path}:{line}: {reason}")]
    PairsFile {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// Two inputs disagree in shape, or an input has a shape the protocol cannot use.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An embedding holds NaN or an infinity.
    #[error("{what}: row {row}, column {column} is not finite ({value})")]
    NonFinite {
        /// Which matrix (e.g. "embeddings", "probes").
        what: String,
        /// Row of the first non-finite value.
        row: usize,
        /// Column of the first non-finite value.
        column: usize,
        /// The value.
        value: f32,
    },
    /// The input is well formed but the protocol cannot be run on it (e.g. no impostor pair).
    #[error("{0}")]
    Protocol(String),
    /// A report could not be serialised.
    #[error("{path}: cannot serialise report: {source}")]
    Json {
        /// The output file.
        path: PathBuf,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn npy(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        EvalError::Npy {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn safetensors(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        EvalError::Safetensors {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// The file layer's errors in this crate's terms: malformed `.npy` and `.safetensors` content
/// becomes [`EvalError::Npy`] and [`EvalError::Safetensors`], a path that is not a regular
/// file [`EvalError::NotAFile`], the rest [`EvalError::Io`]; every one still names the file.
impl From<visage_io::IoError> for EvalError {
    fn from(e: visage_io::IoError) -> Self {
        use visage_io::IoError as E;
        match e {
            E::Npy { path, reason } => EvalError::Npy { path, reason },
            E::NotAFile { path } => EvalError::NotAFile { path },
            E::MissingTensor {
                path,
                name,
                available,
            } => EvalError::Safetensors {
                path,
                reason: format!(
                    "no tensor named '{name}' (the file holds: {})",
                    available.join(", ")
                ),
            },
            E::Safetensors { .. }
            | E::Dtype { .. }
            | E::Shape { .. }
            | E::NonFinite { .. }
            | E::Encode { .. } => EvalError::Safetensors {
                path: e.path().to_path_buf(),
                reason: e.without_path(),
            },
            other => {
                let (path, source) = other.into_path_and_io();
                EvalError::Io { path, source }
            }
        }
    }
}
