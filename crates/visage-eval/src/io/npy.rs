//! NumPy `.npy` arrays: the reader and writer of [`visage_io::npy`], with this crate's
//! [`EvalError`].

use std::path::Path;

pub use visage_io::npy::{encode_npy, ElementType, NpyHeader, RawArray};

use crate::EvalError;

/// Parses `.npy` bytes; `path` only names the file in errors ([`visage_io::npy::parse_npy`]).
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<RawArray, EvalError> {
    Ok(visage_io::npy::parse_npy(path, bytes)?)
}

/// Parses the header of a `.npy` file of `file_len` bytes whose first bytes are `prefix`
/// ([`visage_io::npy::parse_npy_header`]).
pub fn parse_npy_header(
    path: &Path,
    prefix: &[u8],
    file_len: usize,
) -> Result<NpyHeader, EvalError> {
    Ok(visage_io::npy::parse_npy_header(path, prefix, file_len)?)
}

/// Reads and parses a `.npy` file.
pub fn read_npy(path: &Path) -> Result<RawArray, EvalError> {
    Ok(visage_io::npy::read_npy(path)?)
}
