//! `.safetensors` tensors through [`visage_io::TensorFile`], with this crate's [`EvalError`]:
//! an 8-byte little-endian header length, a JSON header (dtype, shape, data offsets per
//! tensor), then the raw data.

use std::path::Path;

use visage_io::TensorFile;

use super::npy::RawArray;
use crate::EvalError;

/// Parses `.safetensors` bytes and returns the tensor named `key`; `path` names the file in
/// errors, which list the keys the file does hold when `key` is absent.
pub fn parse_safetensors_tensor(
    path: &Path,
    bytes: &[u8],
    key: &str,
) -> Result<RawArray, EvalError> {
    Ok(TensorFile::from_bytes(path, bytes.to_vec())?.raw_array(key)?)
}

/// Reads the tensor named `key` from a `.safetensors` file.
pub fn read_safetensors_tensor(path: &Path, key: &str) -> Result<RawArray, EvalError> {
    Ok(TensorFile::open(path)?.raw_array(key)?)
}

/// Encodes one f32 tensor named `key` as `.safetensors` bytes.
pub fn encode_safetensors_f32(
    path: &Path,
    key: &str,
    shape: &[usize],
    values: &[f32],
) -> Result<Vec<u8>, EvalError> {
    Ok(visage_io::safetensors::encode_f32(
        path, key, shape, values,
    )?)
}
