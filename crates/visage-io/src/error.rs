//! [`IoError`]: what can go wrong reading or writing a file, naming the file and the field.

use std::path::PathBuf;

/// An error of the file layer; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The operating system refused a read, write, rename or folder creation.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `writing`, `renaming onto`, `creating`).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The path is a folder, a named pipe or a device, which are not read (a pipe would
    /// block forever).
    #[error(
        "{}: not a regular file (folders, named pipes and devices are not read)",
        path.display()
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is larger than the memory that could be reserved for it.
    #[error("{}: cannot allocate {bytes} bytes to read the file", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// The bytes do not parse as safetensors (header, offsets or sizes).
    #[error("{}: not a valid safetensors file: {reason}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A `.npy` file is malformed (magic, header, dtype, shape against the file's size).
    #[error("{}: invalid .npy file: {reason}", path.display())]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// A tensor that must be present is absent.
    #[error("{}: tensor `{name}` is missing (the file holds: {})", path.display(), available.join(", "))]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The tensors the file does hold, sorted.
        available: Vec<String>,
    },
    /// A tensor has another element type than expected.
    #[error("{}: tensor `{name}` has dtype {found}; expected {expected}", path.display())]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its dtype.
        found: String,
        /// The dtype expected.
        expected: String,
    },
    /// A tensor has another shape than expected (`_` in `expected`: any size).
    #[error("{}: tensor `{name}` has shape {found:?}; expected [{expected}]", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its shape.
        found: Vec<usize>,
        /// The constraint, e.g. `_, 512`.
        expected: String,
    },
    /// A float tensor holds a NaN or an infinity where finite values are required.
    #[error(
        "{}: tensor `{name}` holds a non-finite value ({value}) at flat index {index} (pass \
         --allow-non-finite to use it anyway)",
        path.display()
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The first non-finite value.
        value: f32,
        /// Its flat (row-major) index.
        index: usize,
    },
    /// Tensors could not be encoded (a shape that does not match its values).
    #[error("{}: cannot encode tensor `{name}`: {reason}", path.display())]
    Encode {
        /// The file being written.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl IoError {
    /// An operating-system error while doing `action` on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IoError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The file at fault.
    pub fn path(&self) -> &std::path::Path {
        match self {
            IoError::Io { path, .. }
            | IoError::NotAFile { path }
            | IoError::TooLarge { path, .. }
            | IoError::Safetensors { path, .. }
            | IoError::Npy { path, .. }
            | IoError::MissingTensor { path, .. }
            | IoError::Dtype { path, .. }
            | IoError::Shape { path, .. }
            | IoError::NonFinite { path, .. }
            | IoError::Encode { path, .. } => path,
        }
    }

    /// The file at fault and the error as an operating-system error (the source itself for
    /// [`IoError::Io`]; otherwise this error's message, of kind `OutOfMemory` for
    /// [`IoError::TooLarge`] and `InvalidData` for the rest), for a crate whose own error
    /// type carries `(path, std::io::Error)`.
    pub fn into_path_and_io(self) -> (PathBuf, std::io::Error) {
        let path = self.path().to_path_buf();
        match self {
            IoError::Io { source, .. } => (path, source),
            IoError::TooLarge { bytes, .. } => (
                path,
                std::io::Error::new(
                    std::io::ErrorKind::OutOfMemory,
                    format!("cannot allocate {bytes} bytes to read the file"),
                ),
            ),
            other => (
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
            ),
        }
    }

    /// The message without the leading `PATH: ` (for an error type that prints the path
    /// itself).
    pub fn without_path(&self) -> String {
        let text = self.to_string();
        let prefix = format!("{}: ", self.path().display());
        match text.strip_prefix(&prefix) {
            Some(rest) => rest.to_string(),
            None => text,
        }
    }

    /// The underlying operating-system error, if this is one (to tell a full disk from a
    /// format error, for instance).
    pub fn io_source(&self) -> Option<&std::io::Error> {
        match self {
            IoError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
