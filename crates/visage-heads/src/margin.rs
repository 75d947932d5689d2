//! The shared shape of the normalised-softmax heads (NormFace, CosFace, ArcFace, combined
//! margin, AdaCos): `logits = s * cos`, with the target column replaced by a margin function
//! of the target cosine.

use burn::tensor::{backend::Backend, Int, Tensor};

use crate::normalize::cosine_matrix;
use crate::target::{gather_target, replace_target, target_mask};

/// Cosines `[N, C]` with the target column `c_y` replaced by `margin(c_y)` (unscaled).
///
/// # Shapes
/// - `x`: `[N, d]`, `weight`: `[C, d]`, `labels`: `[N]` -> `[N, C]`
pub fn margin_cosines<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    margin: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 2>,
) -> Tensor<B, 2> {
    let classes = weight.dims()[0];
    let cos = cosine_matrix(x, weight);
    let target = gather_target(cos.clone(), labels.clone());
    let mask = target_mask(labels, classes);
    replace_target(cos, mask, margin(target.clone()), target)
}

/// Clamp margin used where a cosine feeds `sqrt(1 - c^2)` or `acos`: `c` is held in
/// `[-1 + COS_EPS, 1 - COS_EPS]` there (the infinite slope of both at +-1 gives NaN otherwise).
pub const COS_EPS: f64 = 1e-7;

/// `c` clamped into `[-1 + COS_EPS, 1 - COS_EPS]`.
pub fn clamp_cos<B: Backend, const D: usize>(c: Tensor<B, D>) -> Tensor<B, D> {
    c.clamp(-1.0 + COS_EPS, 1.0 - COS_EPS)
}
