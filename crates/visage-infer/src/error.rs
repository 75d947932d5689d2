//! The errors of inference: each names the file, tensor, image or setting at fault.

use std::path::PathBuf;

use visage_backbones::BackboneError;
use visage_data::DataError;
use visage_eval::EvalError;
use visage_train::TrainError;

/// What went wrong while loading a model, reading its inputs, embedding or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// A backbone setting or a weights file (state dict) is wrong.
    #[error("{0}")]
    Backbone(#[from] BackboneError),
    /// An image, dataset or pair list cannot be read.
    #[error("{0}")]
    Data(#[from] DataError),
    /// Embeddings, verification, plots or the report failed.
    #[error("{0}")]
    Eval(#[from] EvalError),
    /// A plot of the report could not be drawn or written.
    #[error("{0}")]
    Report(#[from] visage_report::ReportError),
    /// A Burn record or a training config cannot be read.
    #[error("{0}")]
    Train(#[from] TrainError),
    /// An input size `HxW` / `H,W` that does not parse or holds a zero.
    #[error("input_size `{text}`: {reason} (expected HxW or H,W, e.g. 112x112)")]
    InputSize {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file or folder that cannot serve: missing, of the wrong kind or content.
    #[error("{}: {message}", path.display())]
    File {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong, and what was expected.
        message: String,
    },
    /// An image whose size is not the backbone's input size.
    #[error(
        "{source_name}: image {image} is {}x{} (HxW) but the backbone expects {}x{}: {hint}",
        got[0], got[1], expected[0], expected[1]
    )]
    ImageSize {
        /// The file, folder or dataset holding the image.
        source_name: String,
        /// Which image (index, pair or path).
        image: String,
        /// Its size `[H, W]`.
        got: [usize; 2],
        /// The backbone's input size `[H, W]`.
        expected: [usize; 2],
        /// How to fix it.
        hint: &'static str,
    },
    /// Weights that do not load into the backbone asked for.
    #[error(
        "{}: weights for a {kind} backbone (check the backbone kind or config, embedding_dim, \
         in_channels and input_size: --backbone/--config, --embedding-dim, --in-channels, \
         --input-size): {source}",
        path.display()
    )]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// The backbone asked for (`sphere20`, `iresnet50`, ..).
        kind: String,
        /// Why they do not load.
        source: Box<InferError>,
    },
    /// A setting out of range.
    #[error("{0}")]
    Invalid(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, InferError>;
