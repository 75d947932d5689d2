//! Burn tensors read back to the host, with one error policy: a [`ReadBackError`] (a device
//! that fails at execution, data of another element type), never a panic and never an empty
//! vector standing in for the values.

use burn::tensor::backend::Backend;
use burn::tensor::{Element, Tensor};

/// Reading a tensor back to the host failed.
#[derive(Debug, thiserror::Error)]
#[error("reading a tensor of shape {shape:?} back to the host: {reason}")]
pub struct ReadBackError {
    /// The tensor's shape.
    pub shape: Vec<usize>,
    /// What went wrong (the device's execution error, or the data conversion's).
    pub reason: String,
}

/// The values of `t` in row-major order, converted to `E`, and its shape.
pub fn read_back<E: Element, B: Backend, const D: usize>(
    t: Tensor<B, D>,
) -> Result<(Vec<E>, Vec<usize>), ReadBackError> {
    let shape = t.dims().to_vec();
    let error = |reason: String| ReadBackError {
        shape: shape.clone(),
        reason,
    };
    let data = t.try_into_data().map_err(|e| error(e.to_string()))?;
    let values = data
        .convert::<E>()
        .into_vec::<E>()
        .map_err(|e| error(format!("{e:?}")))?;
    Ok((values, shape))
}

/// The single value of a one-element tensor (a loss), as f64.
pub fn read_back_scalar<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<f64, ReadBackError> {
    let (values, shape) = read_back::<f64, B, D>(t)?;
    match values.as_slice() {
        [v] => Ok(*v),
        _ => Err(ReadBackError {
            shape,
            reason: format!("{} values where one was expected", values.len()),
        }),
    }
}
