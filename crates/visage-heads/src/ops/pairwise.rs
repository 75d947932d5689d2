//! Pairwise distances inside a batch, and the same-identity mask, for the metric losses.

use burn::tensor::{backend::Backend, DType, Int, Tensor};

use super::NORM_EPS;

/// Batches with `N * N * d` at most this many elements get their distances from explicit
/// differences (exact for identical rows); larger ones use the Gram form
/// `|a|^2 + |b|^2 - 2 a.b`, clamped at 0, which loses precision for near-identical rows.
pub const EXPLICIT_DIFFERENCE_BUDGET: usize = 1 << 25;

/// Squared L2 distances `[N, N]` between the rows of `x`.
///
/// # Shapes
/// - `x`: `[N, d]` -> `[N, N]`
pub fn pairwise_squared_distances<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let [n, d] = x.dims();
    if n * n * d <= EXPLICIT_DIFFERENCE_BUDGET {
        let a = x.clone().reshape([n, 1, d]).expand([n, n, d]);
        let b = x.reshape([1, n, d]).expand([n, n, d]);
        (a - b).square().sum_dim(2).reshape([n, n])
    } else {
        let sq = x.clone().square().sum_dim(1); // [N, 1]
        let gram = x.clone().matmul(x.transpose());
        (sq.clone() + sq.transpose() - gram.mul_scalar(2.0)).clamp_min(0.0)
    }
}

/// `sqrt` of squared distances, with zero distances given a zero gradient
/// (the squared distance is clamped at `NORM_EPS^2` before the root).
pub fn sqrt_distances<B: Backend>(squared: Tensor<B, 2>) -> Tensor<B, 2> {
    squared.clamp_min(NORM_EPS * NORM_EPS).sqrt()
}

/// `1.0` where `labels[i] == labels[j]`, else `0.0`.
///
/// # Shapes
/// - `labels`: `[N]` -> `[N, N]`
pub fn same_label_mask<B: Backend>(labels: Tensor<B, 1, Int>, dtype: DType) -> Tensor<B, 2> {
    let n = labels.dims()[0];
    let rows = labels.clone().reshape([n, 1]).expand([n, n]);
    let cols = labels.reshape([1, n]).expand([n, n]);
    crate::ops::mask_to_float(rows.equal(cols), dtype)
}
