//! Reading and writing embeddings, labels and same/different flags as `.npy` or
//! `.safetensors` (chosen by the file extension), and pairs files.
//!
//! - Embeddings: f32 `[N, d]` (`<f4`; `<f8` is accepted and converted), safetensors key
//!   `embeddings` by default.
//! - Labels: integer `[N]` (any little-endian integer type, returned as i64), key `labels`.
//! - Issame: bool or u8 `[N]` holding only 0 and 1, key `issame`.
//!
//! Every output is written to a temporary file beside the target and renamed into place.

pub mod npy;
pub mod pairs_file;
pub mod safetensors_file;
pub mod stream;

use std::path::Path;

pub use npy::{ElementType, RawArray};
pub use pairs_file::read_pairs_file;
pub use stream::EmbeddingReader;

use crate::{Embeddings, EvalError};

/// Default safetensors key of an embedding matrix.
pub const EMBEDDINGS_KEY: &str = "embeddings";
/// Default safetensors key of a label vector.
pub const LABELS_KEY: &str = "labels";
/// Default safetensors key of a same/different vector.
pub const ISSAME_KEY: &str = "issame";

/// The two container formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// NumPy `.npy`.
    Npy,
    /// `.safetensors`.
    Safetensors,
}

impl FileFormat {
    /// The format of `path` by its extension (case-insensitive).
    pub fn of(path: &Path) -> Result<Self, EvalError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("npy") => Ok(FileFormat::Npy),
            Some("safetensors") => Ok(FileFormat::Safetensors),
            _ => Err(EvalError::UnsupportedExtension {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Reads a whole file after checking it is a regular file ([`EvalError::NotAFile`]
/// otherwise: a named pipe is refused, not waited on). The buffer is reserved fallibly, so a
/// file larger than the memory available is an error, not an allocation abort
/// ([`visage_io::read_regular_file`]).
pub fn read_regular_file(path: &Path) -> Result<Vec<u8>, EvalError> {
    Ok(visage_io::read_regular_file(path)?)
}

/// The metadata of `path`, or [`EvalError::NotAFile`] unless it is a regular file.
pub(crate) fn regular_file_metadata(path: &Path) -> Result<std::fs::Metadata, EvalError> {
    Ok(visage_io::fs::regular_file_metadata(path)?)
}

fn read_raw(path: &Path, key: &str) -> Result<RawArray, EvalError> {
    match FileFormat::of(path)? {
        FileFormat::Npy => npy::read_npy(path),
        FileFormat::Safetensors => safetensors_file::read_safetensors_tensor(path, key),
    }
}

fn shape_error(path: &Path, reason: String) -> EvalError {
    match FileFormat::of(path) {
        Ok(FileFormat::Safetensors) => EvalError::safetensors(path, reason),
        _ => EvalError::npy(path, reason),
    }
}

/// Converts a raw array to an f32 matrix `[N, d]` (f32 as is, f64 rounded to f32).
pub fn raw_to_embeddings(path: &Path, raw: &RawArray) -> Result<Embeddings, EvalError> {
    let (rows, dim) = embedding_shape(path, raw.dtype, &raw.shape)?;
    let data: Vec<f32> = match raw.dtype {
        ElementType::F32 => raw
            .data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        ElementType::F64 => raw
            .data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8-byte chunk")) as f32)
            .collect(),
        other => {
            return Err(shape_error(
                path,
                format!("embeddings must be float32 or float64, got {other:?}"),
            ))
        }
    };
    Embeddings::new(rows, dim, data)
}

/// `[rows, dim]` of an embedding matrix of element type `dtype` and shape `shape`, or the
/// error [`raw_to_embeddings`] gives (not 2-D, not float32/float64).
pub(crate) fn embedding_shape(
    path: &Path,
    dtype: ElementType,
    shape: &[usize],
) -> Result<(usize, usize), EvalError> {
    let (rows, dim) = match shape[..] {
        [rows, dim] => (rows, dim),
        _ => {
            return Err(shape_error(
                path,
                format!("embeddings must be a 2-D [N, d] matrix, got shape {shape:?}"),
            ))
        }
    };
    match dtype {
        ElementType::F32 | ElementType::F64 => Ok((rows, dim)),
        other => Err(shape_error(
            path,
            format!("embeddings must be float32 or float64, got {other:?}"),
        )),
    }
}

/// Reads an embedding matrix from `.npy` or `.safetensors` (key `embeddings`).
pub fn read_embeddings(path: impl AsRef<Path>) -> Result<Embeddings, EvalError> {
    read_embeddings_key(path, EMBEDDINGS_KEY)
}

/// Reads an embedding matrix; `key` selects the safetensors tensor (ignored for `.npy`).
pub fn read_embeddings_key(path: impl AsRef<Path>, key: &str) -> Result<Embeddings, EvalError> {
    let path = path.as_ref();
    raw_to_embeddings(path, &read_raw(path, key)?)
}

fn vector_len(path: &Path, raw: &RawArray, what: &str) -> Result<usize, EvalError> {
    match raw.shape[..] {
        [n] | [n, 1] => Ok(n),
        _ => Err(shape_error(
            path,
            format!("{what} must be a 1-D [N] vector, got shape {:?}", raw.shape),
        )),
    }
}

/// Converts a raw integer vector to i64 labels.
pub fn raw_to_labels(path: &Path, raw: &RawArray) -> Result<Vec<i64>, EvalError> {
    vector_len(path, raw, "labels")?;
    let d = &raw.data;
    let labels: Vec<i64> = match raw.dtype {
        ElementType::I64 => d
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
        ElementType::U64 => {
            let mut out = Vec::with_capacity(d.len() / 8);
            for (i, c) in d.chunks_exact(8).enumerate() {
                let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
                out.push(i64::try_from(v).map_err(|_| {
                    shape_error(path, format!("label {i} = {v} does not fit in i64"))
                })?);
            }
            out
        }
        ElementType::I32 => d
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes(c.try_into().expect("4 bytes"))))
            .collect(),
        ElementType::U32 => d
            .chunks_exact(4)
            .map(|c| i64::from(u32::from_le_bytes(c.try_into().expect("4 bytes"))))
            .collect(),
        ElementType::I16 => d
            .chunks_exact(2)
            .map(|c| i64::from(i16::from_le_bytes([c[0], c[1]])))
            .collect(),
        ElementType::U16 => d
            .chunks_exact(2)
            .map(|c| i64::from(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        ElementType::I8 => d.iter().map(|&b| i64::from(b as i8)).collect(),
        ElementType::U8 => d.iter().map(|&b| i64::from(b)).collect(),
        other => {
            return Err(shape_error(
                path,
                format!("labels must be integers (e.g. int64), got {other:?}"),
            ))
        }
    };
    Ok(labels)
}

/// Reads integer labels `[N]` from `.npy` or `.safetensors` (key `labels`).
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<i64>, EvalError> {
    read_labels_key(path, LABELS_KEY)
}

/// Reads integer labels; `key` selects the safetensors tensor (ignored for `.npy`).
pub fn read_labels_key(path: impl AsRef<Path>, key: &str) -> Result<Vec<i64>, EvalError> {
    let path = path.as_ref();
    raw_to_labels(path, &read_raw(path, key)?)
}

/// Converts a raw bool/u8 vector holding only 0 and 1 to flags.
pub fn raw_to_issame(path: &Path, raw: &RawArray) -> Result<Vec<bool>, EvalError> {
    vector_len(path, raw, "issame")?;
    match raw.dtype {
        ElementType::Bool | ElementType::U8 | ElementType::I8 => {}
        other => {
            return Err(shape_error(
                path,
                format!("issame must be bool or uint8, got {other:?}"),
            ))
        }
    }
    raw.data
        .iter()
        .enumerate()
        .map(|(i, &b)| match b {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(shape_error(
                path,
                format!("issame[{i}] = {v}: expected 0 or 1"),
            )),
        })
        .collect()
}

/// Reads same/different flags `[N]` (bool or u8) from `.npy` or `.safetensors` (key `issame`).
pub fn read_issame(path: impl AsRef<Path>) -> Result<Vec<bool>, EvalError> {
    read_issame_key(path, ISSAME_KEY)
}

/// Reads same/different flags; `key` selects the safetensors tensor (ignored for `.npy`).
pub fn read_issame_key(path: impl AsRef<Path>, key: &str) -> Result<Vec<bool>, EvalError> {
    let path = path.as_ref();
    raw_to_issame(path, &read_raw(path, key)?)
}

/// Writes an embedding matrix as f32 `.npy` (`<f4`, C order) or `.safetensors` (key
/// `embeddings`), chosen by the extension; written to a temporary file, then renamed.
pub fn write_embeddings(path: impl AsRef<Path>, embeddings: &Embeddings) -> Result<(), EvalError> {
    let path = path.as_ref();
    let shape = [embeddings.rows, embeddings.dim];
    if embeddings.data.len() != embeddings.rows * embeddings.dim {
        return Err(EvalError::Shape(format!(
            "embeddings [{}, {}] hold {} values",
            embeddings.rows,
            embeddings.dim,
            embeddings.data.len()
        )));
    }
    let bytes = match FileFormat::of(path)? {
        FileFormat::Npy => {
            let data: Vec<u8> = embeddings
                .data
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            npy::encode_npy("<f4", &shape, &data)
        }
        FileFormat::Safetensors => safetensors_file::encode_safetensors_f32(
            path,
            EMBEDDINGS_KEY,
            &shape,
            &embeddings.data,
        )?,
    };
    write_atomic(path, &bytes)
}

/// Writes `bytes` as the new content of `path`: a temporary sibling, fsync, rename
/// ([`visage_io::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EvalError> {
    Ok(visage_io::write_atomic(path, bytes)?)
}
