//! CosFace / AM-Softmax's additive cosine margin (Wang et al. 2018).

use burn::tensor::{backend::Backend, Tensor};

/// `c - m`: CosFace's target cosine (scale it by s afterwards).
///
/// # Shapes
/// - `c`: any shape -> the same
pub fn cosface<B: Backend, const D: usize>(c: Tensor<B, D>, m: f64) -> Tensor<B, D> {
    c.sub_scalar(m)
}
