//! Typed errors of the figures: every message names the file, folder or setting at fault.

use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong while training a figure's run or drawing it.
#[derive(Debug, Error)]
pub enum FigureError {
    /// Training (or reading the trained model back) failed; the message names the config key.
    #[error("{run}: {source}")]
    Train {
        /// The run's name.
        run: String,
        /// The cause (boxed: a training error is large, and this error travels in every
        /// `Result` of the crate).
        #[source]
        source: Box<visage_train::TrainError>,
    },
    /// A data file could not be read.
    #[error("data: {0}")]
    Data(#[from] visage_data::DataError),
    /// A tensor could not be read back from the device.
    #[error(transparent)]
    ReadBack(#[from] visage_io::ReadBackError),
    /// A setting cannot be drawn (e.g. an embedding that is neither 2-D nor 3-D).
    #[error("{what}: {message}")]
    Setting {
        /// The setting (config key or option).
        what: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The backbone produced a NaN or infinite feature.
    #[error("{run}: feature {index} of the {split} images is not finite")]
    NonFinite {
        /// The run's name.
        run: String,
        /// `train` or `test`.
        split: &'static str,
        /// The image's position.
        index: usize,
    },
    /// Drawing a figure failed.
    #[error("{path}: cannot draw: {reason}")]
    Plot {
        /// The figure's file.
        path: PathBuf,
        /// The plotting library's message.
        reason: String,
    },
    /// A file-system error.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl FigureError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FigureError::Io {
            path: path.into(),
            source,
        }
    }

    /// A setting that cannot be drawn.
    pub fn setting(what: impl Into<String>, message: impl Into<String>) -> Self {
        FigureError::Setting {
            what: what.into(),
            message: message.into(),
        }
    }

    /// A training error of run `run`.
    pub fn train(run: impl Into<String>, source: visage_train::TrainError) -> Self {
        FigureError::Train {
            run: run.into(),
            source: Box::new(source),
        }
    }
}
