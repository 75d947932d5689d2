//! Target-class bookkeeping shared by the classification heads.
//!
//! The target mask is built from an equality against an `arange` (no host sync, unlike
//! `Tensor::one_hot`, which validates on the host).

use burn::tensor::{backend::Backend, DType, Int, Tensor};

/// One-hot float mask `[N, C]`: 1 at `(i, labels[i])`, 0 elsewhere.
///
/// # Shapes
/// - `labels`: `[N]` -> `[N, C]`
pub fn target_mask<B: Backend>(
    labels: Tensor<B, 1, Int>,
    classes: usize,
    dtype: DType,
) -> Tensor<B, 2> {
    let n = labels.dims()[0];
    let device = labels.device();
    let columns = Tensor::<B, 1, Int>::arange(0..classes as i64, &device)
        .reshape([1, classes])
        .expand([n, classes]);
    let rows = labels.reshape([n, 1]).expand([n, classes]);
    crate::ops::mask_to_float(rows.equal(columns), dtype)
}

/// The entries `m[i, labels[i]]` as a column `[N, 1]`.
///
/// # Shapes
/// - `m`: `[N, C]`, `labels`: `[N]` -> `[N, 1]`
pub fn gather_target<B: Backend>(m: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 2> {
    let n = labels.dims()[0];
    m.gather(1, labels.reshape([n, 1]))
}

/// Replaces the target column of `logits` by `new_target` (both already scaled):
/// `logits + mask * (new_target - old_target)`, differentiable in all three.
///
/// # Shapes
/// - `logits`, `mask`: `[N, C]`; `new_target`, `old_target`: `[N, 1]` -> `[N, C]`
pub fn replace_target<B: Backend>(
    logits: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    new_target: Tensor<B, 2>,
    old_target: Tensor<B, 2>,
) -> Tensor<B, 2> {
    logits + mask * (new_target - old_target)
}
