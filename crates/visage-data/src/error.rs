//! The error type of every reader and writer in this crate.

use std::path::PathBuf;

/// What went wrong while reading or writing a dataset file.
///
/// Every variant names the file and, where it applies, the record, offset or field, and what
/// was expected instead, so a user can find the defect in their own data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The operating system refused a read or write.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file's content does not follow its format.
    #[error("{path}: {what}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Where (record, offset, field) and what was expected.
        what: String,
    },
    /// An encoded image (JPEG, PNG) could not be decoded.
    #[error("{path}: {record}: cannot decode image: {message}")]
    Image {
        /// The file holding the image.
        path: PathBuf,
        /// Which image inside the file (record key, list index, or the file itself).
        record: String,
        /// The decoder's message.
        message: String,
    },
    /// A sample's label lies outside the class count the data's metadata gives (a `property`
    /// file, a header record): found before training, not as a panic in the middle of it.
    #[error(
        "{path}: {record}: label {label} is outside the {classes} classes given by {counted_by}"
    )]
    Label {
        /// The data file.
        path: PathBuf,
        /// Which record or sample.
        record: String,
        /// The label found.
        label: usize,
        /// The class count.
        classes: usize,
        /// Where the class count comes from.
        counted_by: String,
    },
    /// A caller passed an argument outside its domain.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl DataError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// A format error in `path`, described by `what`.
    pub fn format(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            what: what.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, DataError>;
