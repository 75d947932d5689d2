//! Softmax cross-entropy, the mean over the batch.

use burn::tensor::{activation::log_softmax, backend::Backend, Int, Tensor};

use crate::ops::gather_target;

/// `mean_i [ -log softmax(logits_i)[labels_i] ]`, computed with a stable log-softmax, and the
/// mean taken as `sum_i (l_i / N)` so that it cannot overflow where every `l_i` is finite
/// (a plain sum of N losses near `f32::MAX / N` would).
///
/// # Shapes
/// - `logits`: `[N, C]`, `labels`: `[N]` -> `[1]`
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let log_p = log_softmax(logits, 1);
    let n = labels.dims()[0].max(1);
    gather_target(log_p, labels)
        .neg()
        .div_scalar(n as f64)
        .sum()
}

/// Row-wise `log sum_j exp(logits_ij)`, stable (the row maximum, without gradient, taken out
/// first; the gradient is the softmax).
///
/// # Shapes
/// - `logits`: `[N, C]` -> `[N, 1]`
pub fn log_sum_exp<B: Backend>(logits: Tensor<B, 2>) -> Tensor<B, 2> {
    let max = logits.clone().detach().max_dim(1);
    (logits - max.clone()).exp().sum_dim(1).log() + max
}

/// The log-sum-exp of two blocks of the same rows from theirs:
/// `log(exp(a) + exp(b))`, stable. Folding it over the blocks of a chunked or sharded
/// classifier gives [`log_sum_exp`] of the whole row without the whole `[N, C]` matrix.
///
/// # Shapes
/// - `a`, `b`: `[N, 1]` -> `[N, 1]`
pub fn merge_log_sum_exp<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 2> {
    let max = a.clone().detach().max_pair(b.clone().detach());
    ((a - max.clone()).exp() + (b - max.clone()).exp()).log() + max
}

/// Cross-entropy from its two parts, `mean_i (lse_i - t_i)`: the row log-sum-exp of the
/// logits (e.g. folded block by block with [`merge_log_sum_exp`]) and the target logit
/// (the margin applied to the gathered target cosine). Equals [`cross_entropy`] on the
/// whole matrix up to rounding.
///
/// # Shapes
/// - `log_sum_exp`, `target_logit`: `[N, 1]` -> `[1]`
pub fn cross_entropy_from_parts<B: Backend>(
    log_sum_exp: Tensor<B, 2>,
    target_logit: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let n = log_sum_exp.dims()[0].max(1);
    (log_sum_exp - target_logit).div_scalar(n as f64).sum()
}
