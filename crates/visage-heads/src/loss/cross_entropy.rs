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
