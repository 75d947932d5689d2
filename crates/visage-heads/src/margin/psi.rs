//! The angular margin function psi of L-Softmax and A-Softmax (Liu et al. 2016, 2017).
//!
//! `psi(theta) = (-1)^k cos(m theta) - 2k` for `theta in [k pi/m, (k+1) pi/m]`, `k = 0..m-1`.
//! It is continuous and decreasing on `[0, pi]`, and `psi = cos` for `m = 1`.
//! `cos(m theta)` comes from the multiple-angle polynomials in `c = cos theta`
//! (`m=2: 2c^2-1`, `m=3: 4c^3-3c`, `m=4: 8c^4-8c^2+1`), so the gradient needs no `acos`;
//! `theta = acos(c)` is used only, without gradient, to find the integer `k`.

use std::f64::consts::PI;

use burn::tensor::{backend::Backend, Tensor};

/// `cos(m theta)` as a polynomial of `c = cos theta`, for `m` in `1..=4`.
fn cos_multiple<B: Backend, const D: usize>(c: Tensor<B, D>, m: u32) -> Tensor<B, D> {
    match m {
        1 => c,
        2 => c.square().mul_scalar(2.0).sub_scalar(1.0),
        3 => {
            let c2 = c.clone().square();
            c * c2.mul_scalar(4.0).sub_scalar(3.0)
        }
        _ => {
            let c2 = c.square();
            (c2.clone() * c2.mul_scalar(8.0).sub_scalar(8.0)).add_scalar(1.0)
        }
    }
}

/// `psi(theta)` from `c = cos theta` (any shape), for an integer margin `m` in `1..=4`.
///
/// `c` is clamped to `[-1, 1]` first (a cosine computed in floating point can overshoot).
///
/// # Shapes
/// - `c`: any shape -> the same
pub fn psi<B: Backend, const D: usize>(c: Tensor<B, D>, m: u32) -> Tensor<B, D> {
    let c = c.clamp(-1.0, 1.0);
    if m == 1 {
        return c;
    }
    // k = floor(m theta / pi), held in [0, m-1] (theta = pi gives k = m otherwise).
    let k = c
        .clone()
        .detach()
        .acos()
        .mul_scalar(m as f64 / PI)
        .floor()
        .clamp(0.0, (m - 1) as f64);
    // (-1)^k = 1 - 2 (k mod 2)
    let sign = k
        .clone()
        .remainder_scalar(2.0)
        .mul_scalar(-2.0)
        .add_scalar(1.0);
    sign * cos_multiple(c, m) - k.mul_scalar(2.0)
}

/// L-Softmax / A-Softmax target logit `|.| psi(theta_y)` from the target cosine `c` and the
/// magnitude it multiplies: `|W_y| |x|` for L-Softmax (Liu 2016), `|x|` for A-Softmax
/// (SphereFace, Liu 2017, W normalised). Integer margin `m` in `1..=4`.
///
/// # Shapes
/// - `c`, `magnitude`: the same shape (`[N, 1]` in the heads) -> that shape
pub fn large_margin<B: Backend, const D: usize>(
    c: Tensor<B, D>,
    magnitude: Tensor<B, D>,
    m: u32,
) -> Tensor<B, D> {
    magnitude * psi(c, m)
}
