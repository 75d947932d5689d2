//! The margin softmax cross-entropy of the cosine heads, computed over blocks of classes so
//! that the `[N, C]` logits are never held, only `[N, block]` at a time. The weight gradient
//! still passes through weight-sized `[C, d]` buffers (the per-block gradients and their
//! concatenation, the surrogate's product and its backward): measured in docs/losses.md, the
//! step holds more than the full head's when N < d, so it saves memory only where the logits
//! dominate (N large against d). The heads run it on every backend but the CPU training one
//! (`Autodiff<Flex>`), where the fused node of `cosine_ce_flex` (feature `fast-cpu`) computes
//! the same loss with `O(N x block + block x d)` beyond the weights and their gradient.
//!
//! The loss is the one of the full heads (NormFace, CosFace, ArcFace, combined margin, with
//! their margin function on the target cosine):
//!
//! ```text
//! L = 1/N sum_i [ lse_i - s phi(c_{i,y_i}) ],
//! lse_i = log( exp(s phi(c_{i,y_i})) + sum_{j != y_i} exp(s c_ij) ),   c_ij = x_i.w_j / (|x_i| |w_j|)
//! ```
//!
//! Two passes over the class blocks, neither differentiated by autodiff:
//! 1. a running (max, sum) log-sum-exp of each row over the non-target columns;
//! 2. the gradient of `L` with respect to the normalised embeddings and to each block of
//!    normalised class weights, `dL/dc_ij = s p_ij / N` (`p_ij = exp(s c_ij - lse_i)`), the
//!    latter taken back through the row normalisation at once, block by block.
//!
//! The target column goes through autodiff instead (it is `N` cosines, not `N x C`): the
//! target class rows are gathered, normalised and dotted with the normalised embeddings, and
//! the margin function is applied to them as in the full heads, so any margin function works
//! and its slope (ArcFace's fallback, `detach_margin`) is honoured. The pieces meet in one
//! scalar, `L + T - stop_grad(T)` with `T = <x^, G_x> + <W, G_W> + <phi, G_phi>` and the `G`
//! held constant: its value is `L`, its gradient the exact gradient of `L`. Every op is a
//! plain Burn tensor op, so it runs on every backend.
//!
//! Cost: each block's cosines are computed twice (one GEMM more than the full head's three).

use burn::tensor::{backend::Backend, Int, Tensor};

use crate::check::check_batch;
use crate::ops::{l2_norm, l2_normalize, NORM_EPS};
use crate::HeadError;

/// Logit given to the target column inside the blocks: far below any real logit, so that it
/// never sets the running maximum and its exponential is exactly 0 (a finite stand-in for
/// `-inf`, whose `exp(-inf - (-inf))` would be NaN).
const MASKED: f64 = -1.0e30;

/// Margin softmax cross-entropy over blocks of `block` classes (the last block may be
/// shorter). `margin` maps the target cosines `[N, 1]` to the target's margined cosine
/// (unscaled), as the full heads' margin functions do; the identity gives NormFace.
///
/// Returns the mean loss over the batch, shape `[1]`, whose gradient with respect to `x` and
/// `weight` is the gradient of the full head's loss. The logits are not returned: holding
/// them is what this function avoids.
///
/// Checks the shapes (non-empty batch, widths agree, one label per row) and that `block >=
/// 1`; labels must lie in `[0, C)` (not read back here: see [`crate::check::check_labels`]).
///
/// # Shapes
/// - `x`: `[N, d]`, `weight`: `[C, d]` (row = class), `labels`: `[N]` -> `[1]`
pub fn chunked_margin_cross_entropy<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    scale: f64,
    block: usize,
    margin: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 2>,
) -> Result<Tensor<B, 1>, HeadError> {
    let [classes, dim] = weight.dims();
    check_batch(&x, &labels, Some(dim))?;
    if block == 0 {
        return Err(HeadError::InvalidField {
            field: "block",
            value: "0".into(),
            expected: "at least 1 class per block".into(),
        });
    }
    crate::check::scale("scale", scale)?;
    let n = x.dims()[0];
    let device = x.device();
    let block = block.min(classes.max(1));

    // The target column, through autodiff.
    let x_hat = l2_normalize(x);
    let w_target = l2_normalize(weight.clone().select(0, labels.clone()));
    let target_cos = (x_hat.clone() * w_target).sum_dim(1);
    let phi = margin(target_cos);
    let s_phi = phi.clone().detach().mul_scalar(scale);

    let xd = x_hat.clone().detach();
    let wd = weight.clone().detach();
    let labels_col = labels.reshape([n, 1]);
    let blocks: Vec<(usize, usize)> = (0..classes)
        .step_by(block)
        .map(|j0| (j0, (j0 + block).min(classes)))
        .collect();
    // Scaled cosines of one block with the target column masked, and the block's normalised
    // weights.
    let block_logits = |(j0, j1): (usize, usize)| {
        let w_hat = l2_normalize(wd.clone().slice([j0..j1, 0..dim]));
        let z = xd
            .clone()
            .matmul(w_hat.clone().transpose())
            .mul_scalar(scale);
        let columns = Tensor::<B, 1, Int>::arange(j0 as i64..j1 as i64, &device)
            .reshape([1, j1 - j0])
            .expand([n, j1 - j0]);
        let is_target = labels_col.clone().expand([n, j1 - j0]).equal(columns);
        (z.mask_fill(is_target, MASKED), w_hat)
    };

    // Pass 1: log-sum-exp of each row, started from the target term (exp(0) = 1 at m = s phi).
    let mut running_max = s_phi.clone();
    // `ones_like`, not `Tensor::ones`: Burn 0.21 takes a new tensor's dtype from a per-device
    // registry that the first backend on the device sets (NdArray<f32> and NdArray<f64> share
    // one device), so `Tensor::ones` can give f32 in an f64 backend.
    let mut running_sum = s_phi.ones_like();
    for &b in &blocks {
        let (z, _) = block_logits(b);
        let new_max = running_max.clone().max_pair(z.clone().max_dim(1));
        running_sum = running_sum * (running_max - new_max.clone()).exp()
            + (z - new_max.clone()).exp().sum_dim(1);
        running_max = new_max;
    }
    let lse = running_max + running_sum.log();
    let loss_value = (lse.clone() - s_phi.clone()).div_scalar(n as f64).sum();

    // Pass 2: gradients. dL/dc_ij = s p_ij / N off the target; the weights' part is taken back
    // through the row normalisation here, block by block.
    let coefficient = scale / n as f64;
    let mut grad_x_hat = xd.zeros_like();
    let mut grad_weight = Vec::with_capacity(blocks.len());
    for &(j0, j1) in &blocks {
        let (z, w_hat) = block_logits((j0, j1));
        let g = (z - lse.clone()).exp().mul_scalar(coefficient);
        grad_x_hat = grad_x_hat + g.clone().matmul(w_hat.clone());
        let g_w_hat = g.transpose().matmul(xd.clone());
        grad_weight.push(normalize_backward(
            wd.clone().slice([j0..j1, 0..dim]),
            w_hat,
            g_w_hat,
        ));
    }
    let grad_weight = Tensor::cat(grad_weight, 0);
    let p_target = (s_phi - lse).exp();
    let grad_phi = p_target.sub_scalar(1.0).mul_scalar(coefficient);

    let surrogate =
        (x_hat * grad_x_hat).sum() + (weight * grad_weight).sum() + (phi * grad_phi).sum();
    Ok(loss_value + surrogate.clone() - surrogate.detach())
}

/// The gradient with respect to the rows `w` of the loss whose gradient with respect to
/// `w_hat = w / |w|` is `g`: `(g - w_hat <w_hat, g>) / |w|`, and 0 for rows whose largest
/// magnitude is below [`NORM_EPS`] (as [`l2_normalize`], which gives them no gradient).
fn normalize_backward<B: Backend>(
    w: Tensor<B, 2>,
    w_hat: Tensor<B, 2>,
    g: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let [rows, dim] = w.dims();
    let tiny = w
        .clone()
        .abs()
        .max_dim(1)
        .lower_elem(NORM_EPS)
        .expand([rows, dim]);
    let along = (w_hat.clone() * g.clone()).sum_dim(1);
    ((g - w_hat * along) / l2_norm(w)).mask_fill(tiny, 0.0)
}
