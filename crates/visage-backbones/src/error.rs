//! Errors of this crate: bad configurations and bad weight files.

use std::path::PathBuf;

/// What can go wrong building a backbone or loading its weights.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    /// A depth the architecture does not define.
    #[error("{backbone}: depth {depth} is not defined (supported: {supported})")]
    UnsupportedDepth {
        /// Backbone family.
        backbone: &'static str,
        /// Depth asked for.
        depth: usize,
        /// Depths that exist.
        supported: &'static str,
    },
    /// An input too small for the network's downsampling.
    #[error("{backbone}: input size {input_size:?} is too small for the network's downsampling")]
    InputTooSmall {
        /// Backbone family.
        backbone: &'static str,
        /// Input height and width.
        input_size: [usize; 2],
    },
    /// A backbone name that does not parse.
    #[error(
        "unknown backbone `{0}` (expected lenet_pp, sphere4/10/20/36/64, \
         iresnet18/34/50/100/200 (or r18 ..), mobilefacenet (or mbf))"
    )]
    UnknownBackbone(String),
    /// A configuration field that does not fit the backbone.
    #[error("backbone config: {0}")]
    InvalidConfig(String),
    /// The weight file could not be read or parsed.
    #[error("cannot read weights from {path}: {message}")]
    ReadWeights {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        message: String,
    },
    /// A tensor the model needs is absent from the file.
    #[error(
        "weights {path}: key `{key}` is missing (needed for `{module_path}`, shape {expected:?}){hint}"
    )]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// PyTorch key looked for.
        key: String,
        /// Path of the tensor in the Burn module.
        module_path: String,
        /// Expected PyTorch shape.
        expected: Vec<usize>,
        /// Extra help (e.g. near keys present in the file).
        hint: String,
    },
    /// A tensor of the file has the wrong shape.
    #[error(
        "weights {path}: key `{key}` has shape {found:?}, expected {expected:?} (PyTorch layout)"
    )]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// PyTorch key.
        key: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor of the file has a dtype that is not a float.
    #[error("weights {path}: key `{key}` has dtype {dtype}, expected a float tensor")]
    BadDtype {
        /// The file.
        path: PathBuf,
        /// PyTorch key.
        key: String,
        /// Its dtype.
        dtype: String,
    },
    /// A tensor of the file cannot be read as it claims to be (a storage shorter than the
    /// tensor needs, strides past its end, a shape that overflows, a missing storage).
    #[error("weights {path}: tensor `{key}`: {message}")]
    CorruptTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A tensor of the file holds NaN or an infinity (allowed only when asked for, see
    /// [`crate::ReadOptions::allow_non_finite`]).
    #[error(
        "weights {path}: tensor `{key}` holds a non-finite value ({value}) at flat index          {index} (pass --allow-non-finite to load it anyway)"
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// Flat (C-order) index of the first non-finite value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// The file holds weights the model has no place for (e.g. a deeper network's).
    #[error(
        "weights {path}: {count} key(s) the model does not use, e.g. {examples:?}: \
         wrong backbone or depth?"
    )]
    UnusedKeys {
        /// The file.
        path: PathBuf,
        /// How many.
        count: usize,
        /// The first few.
        examples: Vec<String>,
    },
}
