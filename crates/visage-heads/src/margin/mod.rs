//! Margins: public functions from the target cosine `c = cos theta_y` (and, for L-Softmax and
//! A-Softmax, the norms) to the target logit, usable on any cosines or logits, and
//! [`apply_to_target`], which puts one on the target column of a `[N, C]` matrix.
//!
//! Every function takes a tensor of any shape (the gathered target column `[N, 1]` in the
//! heads) and works element-wise, so a chunked or sharded classifier can gather the target
//! cosine wherever it lives, apply the margin, and put it back into the block that holds it.
//!
//! ```ignore
//! // ArcFace on your own classifier: cos [N, C] from anywhere, labels [N]
//! let logits = margin::apply_to_target(cos, labels.clone(), |c| margin::arcface(c, 0.5, false))
//!     .mul_scalar(64.0);
//! let loss = loss::cross_entropy(logits, labels);
//! ```

mod annealing;
mod arcface;
mod combined;
mod cosface;
mod psi;

pub use annealing::Annealing;
pub use arcface::arcface;
pub use combined::combined;
pub use cosface::cosface;
pub use psi::{large_margin, psi};

use burn::tensor::{backend::Backend, Int, Tensor};

use crate::ops::{gather_target, replace_target, target_mask};

/// Clamp margin used where a cosine feeds `sqrt(1 - c^2)` or `acos`: `c` is held in
/// `[-1 + COS_EPS, 1 - COS_EPS]` there (the infinite slope of both at +-1 gives NaN otherwise).
pub const COS_EPS: f64 = 1e-7;

/// `c` clamped into `[-1 + COS_EPS, 1 - COS_EPS]`.
pub fn clamp_cos<B: Backend, const D: usize>(c: Tensor<B, D>) -> Tensor<B, D> {
    c.clamp(-1.0 + COS_EPS, 1.0 - COS_EPS)
}

/// `m` with the target entry `m[i, labels[i]] = t_i` replaced by `margin(t)`:
/// `m + onehot * (margin(t) - t)`, differentiable through both.
///
/// # Shapes
/// - `m`: `[N, C]`, `labels`: `[N]`; `margin` maps `[N, 1]` to `[N, 1]` -> `[N, C]`
pub fn apply_to_target<B: Backend>(
    m: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    margin: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 2>,
) -> Tensor<B, 2> {
    let classes = m.dims()[1];
    let target = gather_target(m.clone(), labels.clone());
    let mask = target_mask(labels, classes, m.dtype());
    replace_target(m, mask, margin(target.clone()), target)
}

/// The value of `with_margin` with the gradient of `plain` (`plain + stop_grad(with_margin -
/// plain)`): InsightFace's detached margin (since Dec 2022).
///
/// # Shapes
/// - any shape, the same for both
pub fn straight_through<B: Backend, const D: usize>(
    plain: Tensor<B, D>,
    with_margin: Tensor<B, D>,
) -> Tensor<B, D> {
    plain.clone() + (with_margin - plain).detach()
}
