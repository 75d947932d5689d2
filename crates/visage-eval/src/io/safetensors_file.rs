//! `.safetensors` tensors through the `safetensors` crate: an 8-byte little-endian header
//! length, a JSON header (dtype, shape, data offsets per tensor), then the raw data.

use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use super::npy::{ElementType, RawArray};
use crate::EvalError;

fn element_type(dtype: Dtype) -> Option<ElementType> {
    Some(match dtype {
        Dtype::F32 => ElementType::F32,
        Dtype::F64 => ElementType::F64,
        Dtype::BOOL => ElementType::Bool,
        Dtype::U8 => ElementType::U8,
        Dtype::I8 => ElementType::I8,
        Dtype::I16 => ElementType::I16,
        Dtype::U16 => ElementType::U16,
        Dtype::I32 => ElementType::I32,
        Dtype::U32 => ElementType::U32,
        Dtype::I64 => ElementType::I64,
        Dtype::U64 => ElementType::U64,
        _ => return None,
    })
}

/// Parses `.safetensors` bytes and returns the tensor named `key`; `path` names the file in
/// errors, which list the keys the file does hold when `key` is absent.
pub fn parse_safetensors_tensor(
    path: &Path,
    bytes: &[u8],
    key: &str,
) -> Result<RawArray, EvalError> {
    let tensors =
        SafeTensors::deserialize(bytes).map_err(|e| EvalError::safetensors(path, e.to_string()))?;
    let view = tensors.tensor(key).map_err(|_| {
        let mut names: Vec<String> = tensors.names().into_iter().cloned().collect();
        names.sort();
        EvalError::safetensors(
            path,
            format!(
                "no tensor named '{key}' (the file holds: {})",
                names.join(", ")
            ),
        )
    })?;
    let dtype = element_type(view.dtype()).ok_or_else(|| {
        EvalError::safetensors(
            path,
            format!("tensor '{key}' has unsupported dtype {:?}", view.dtype()),
        )
    })?;
    Ok(RawArray {
        dtype,
        shape: view.shape().to_vec(),
        data: view.data().to_vec(),
    })
}

/// Reads the tensor named `key` from a `.safetensors` file.
pub fn read_safetensors_tensor(path: &Path, key: &str) -> Result<RawArray, EvalError> {
    let bytes = super::read_regular_file(path)?;
    parse_safetensors_tensor(path, &bytes, key)
}

/// Encodes one f32 tensor named `key` as `.safetensors` bytes.
pub fn encode_safetensors_f32(
    path: &Path,
    key: &str,
    shape: &[usize],
    values: &[f32],
) -> Result<Vec<u8>, EvalError> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, shape.to_vec(), &bytes)
        .map_err(|e| EvalError::safetensors(path, e.to_string()))?;
    safetensors::serialize([(key, view)], &None)
        .map_err(|e| EvalError::safetensors(path, e.to_string()))
}
