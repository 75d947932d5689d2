//! L2 normalisation that is safe at zero.

use burn::tensor::{backend::Backend, Tensor};

/// Norms below this are treated as this value (as `torch.nn.functional.normalize`'s `eps`).
pub const NORM_EPS: f64 = 1e-12;

/// Row-wise L2 norm `[N, 1]`, clamped below at [`NORM_EPS`].
///
/// The clamp is applied to the squared norm *before* the square root, so a zero row has a
/// finite (zero) gradient instead of `0 * inf = NaN`.
///
/// # Shapes
/// - `x`: `[N, d]` -> `[N, 1]`
pub fn l2_norm<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    x.square().sum_dim(1).clamp_min(NORM_EPS * NORM_EPS).sqrt()
}

/// Rows divided by their L2 norm; a zero row stays zero (so its cosines are 0).
///
/// # Shapes
/// - `x`: `[N, d]` -> `[N, d]`
pub fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = l2_norm(x.clone());
    x / norm
}

/// Cosine of every embedding with every class weight: `normalize(x) normalize(W)^T`.
///
/// # Shapes
/// - `x`: `[N, d]`, `weight`: `[C, d]` -> `[N, C]`
pub fn cosine_matrix<B: Backend>(x: Tensor<B, 2>, weight: Tensor<B, 2>) -> Tensor<B, 2> {
    l2_normalize(x).matmul(l2_normalize(weight).transpose())
}
