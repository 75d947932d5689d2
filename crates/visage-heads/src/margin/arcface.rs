//! ArcFace's additive angular margin (Deng et al. 2019), in its safe form.

use std::f64::consts::PI;

use burn::tensor::{backend::Backend, Tensor};

use super::clamp_cos;

/// ArcFace's target cosine `cos(theta + m)` of the target cosine `c`, with its fallback.
///
/// `cos(theta + m)` is computed as `c cos m - sqrt(1 - c^2) sin m` with `c` clamped to
/// `[-1 + 1e-7, 1 - 1e-7]` inside the square root (no `acos`, no NaN at `c = +-1`).
/// Past `theta + m > pi` the target would rise again, so:
/// - default (th/mm, as pytorch-metric-learning, face.evoLVe and InsightFace before Dec 2022):
///   `cos(theta + m)` if `c > cos(pi - m)`, else `c - m sin m`;
/// - `easy_margin`: `cos(theta + m)` if `c > 0`, else `c`.
///
/// # Shapes
/// - `c`: any shape -> the same
pub fn arcface<B: Backend, const D: usize>(
    c: Tensor<B, D>,
    m: f64,
    easy_margin: bool,
) -> Tensor<B, D> {
    let sin_theta = clamp_cos(c.clone()).square().neg().add_scalar(1.0).sqrt();
    let phi = c.clone().mul_scalar(m.cos()) - sin_theta.mul_scalar(m.sin());
    if easy_margin {
        c.clone().mask_where(c.greater_elem(0.0), phi)
    } else {
        let th = (PI - m).cos();
        let mm = m.sin() * m;
        c.clone().sub_scalar(mm).mask_where(c.greater_elem(th), phi)
    }
}
