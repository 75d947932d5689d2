//! The combined margin of the ArcFace paper (eq. 4): `cos(m1 theta + m2) - m3`.

use burn::tensor::{backend::Backend, Tensor};

use super::clamp_cos;

/// `cos(m1 acos(c) + m2) - m3`, `c` clamped to `+-(1 - COS_EPS)` before the `acos`; no
/// fallback past `m1 theta + m2 > pi`. `(1, m, 0)` is ArcFace without its fallback, `(1, 0, m)`
/// CosFace.
///
/// # Shapes
/// - `c`: any shape -> the same
pub fn combined<B: Backend, const D: usize>(
    c: Tensor<B, D>,
    m1: f64,
    m2: f64,
    m3: f64,
) -> Tensor<B, D> {
    clamp_cos(c)
        .acos()
        .mul_scalar(m1)
        .add_scalar(m2)
        .cos()
        .sub_scalar(m3)
}
