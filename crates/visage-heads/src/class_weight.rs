//! The class-weight matrix every classification head holds.

use burn::module::{Initializer, Param};
use burn::tensor::{backend::Backend, Tensor};

use crate::HeadError;

/// Standard deviation of the normal initialisation of class weights (InsightFace's
/// `torch.normal(0, 0.01, (C, d))`).
pub const CLASS_WEIGHT_INIT_STD: f64 = 0.01;

/// A fresh `[C, d]` class-weight parameter drawn from `N(0, 0.01^2)`.
pub fn init_class_weight<B: Backend>(
    classes: usize,
    dim: usize,
    device: &B::Device,
) -> Param<Tensor<B, 2>> {
    Initializer::Normal {
        mean: 0.0,
        std: CLASS_WEIGHT_INIT_STD,
    }
    .init([classes, dim], device)
}

/// Wraps a given `[C, d]` matrix as the class-weight parameter, checking its shape.
pub fn class_weight_from<B: Backend>(
    weight: Tensor<B, 2>,
    classes: usize,
    dim: usize,
) -> Result<Param<Tensor<B, 2>>, HeadError> {
    let shape = weight.dims();
    if shape != [classes, dim] {
        return Err(HeadError::Shape {
            tensor: "weight",
            actual: shape.to_vec(),
            expected: format!("[{classes}, {dim}] (classes x embedding width, row = class)"),
        });
    }
    Ok(Param::from_tensor(weight))
}

/// Checks a head's class count and embedding width.
pub fn check_dims(classes: usize, dim: usize, min_classes: usize) -> Result<(), HeadError> {
    if classes < min_classes {
        return Err(HeadError::InvalidField {
            field: "classes",
            value: classes.to_string(),
            expected: format!("at least {min_classes}"),
        });
    }
    if dim == 0 {
        return Err(HeadError::InvalidField {
            field: "embedding_dim",
            value: "0".into(),
            expected: "at least 1".into(),
        });
    }
    Ok(())
}
