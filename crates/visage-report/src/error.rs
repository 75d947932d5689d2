//! The error type of the crate: every failure names the output file and what went wrong.

use std::path::PathBuf;

/// What can go wrong while drawing or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A plot could not be drawn (the drawing backend failed).
    #[error("{path}: cannot draw plot: {reason}")]
    Plot {
        /// The output file.
        path: PathBuf,
        /// The drawing backend's message.
        reason: String,
    },
    /// The numbers given cannot make this report (e.g. a zoo chart with no trained loss).
    #[error("{path}: {reason}")]
    Empty {
        /// The output file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The embeddings, pairs or report files cannot be read or written, or the protocol
    /// cannot run on them.
    #[error(transparent)]
    Eval(#[from] visage_eval::EvalError),
    /// The protocol cannot run on the embeddings of this file (shapes, non-finite values).
    #[error("{}: {source}", path.display())]
    Input {
        /// The embeddings file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: visage_eval::EvalError,
    },
    /// The file could not be written, synced or renamed into place.
    #[error(transparent)]
    Io(#[from] visage_io::IoError),
}
