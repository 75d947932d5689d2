//! Typed errors of training: every message names the config key, file or step at fault.

use thiserror::Error;

/// What can go wrong before or during training.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A config key has an impossible value, or a needed key is missing.
    #[error("config: `{key}`: {message}")]
    Config {
        /// The dotted key, e.g. `train.batch_size`.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The config file is not valid TOML of the expected shape (unknown keys included).
    #[error("{path}: {message}")]
    Parse {
        /// The config file.
        path: String,
        /// The parser's message (it names the key).
        message: String,
    },
    /// A config's chain of bases cannot be resolved (missing base, cycle, bad `base` key).
    #[error(transparent)]
    Inherit(#[from] crate::inherit::InheritError),
    /// A head error (bad head field).
    #[error("config: [head]: {0}")]
    Head(#[from] visage_heads::HeadError),
    /// A tensor could not be read back from the device.
    #[error(transparent)]
    ReadBack(#[from] visage_io::ReadBackError),
    /// A backbone error.
    #[error("config: [backbone]: {0}")]
    Backbone(#[from] visage_backbones::BackboneError),
    /// A data error (missing or malformed file).
    #[error("data: {0}")]
    Data(#[from] visage_data::DataError),
    /// An evaluation error.
    #[error("evaluation: {0}")]
    Eval(#[from] visage_eval::EvalError),
    /// A report (plot or chart) could not be drawn or written.
    #[error("report: {0}")]
    Report(#[from] visage_report::ReportError),
    /// A checkpoint is corrupt or does not match the config.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint directory.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The loss became NaN or infinite.
    #[error(
        "step {step}: the loss is {value} (not finite); lower the learning rate or check the data"
    )]
    NonFinite {
        /// The step.
        step: u64,
        /// The loss value.
        value: f64,
    },
    /// An error inside a config file, with the file's name.
    #[error("{path}: {source}")]
    InConfig {
        /// The config file.
        path: String,
        /// The error.
        #[source]
        source: Box<TrainError>,
    },
    /// A new run was asked for in a folder that holds files already.
    #[error("{path} is not empty (it holds {found}): resume that run (`visage train --resume {path}`), replace it (`--overwrite`), or choose another --out")]
    RunExists {
        /// The run directory.
        path: String,
        /// What is in it (a few names).
        found: String,
    },
    /// The loss zoo cannot run as asked (no configs found, a run directory in the way).
    #[error("zoo: {0}")]
    Zoo(String),
    /// A file-system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl TrainError {
    /// A config error at `key`.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        TrainError::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
