//! Softmax cross-entropy, the mean over the batch.

use burn::tensor::{activation::log_softmax, backend::Backend, Int, Tensor};

use crate::target::gather_target;

/// `mean_i [ -log softmax(logits_i)[labels_i] ]`, computed with a stable log-softmax.
///
/// # Shapes
/// - `logits`: `[N, C]`, `labels`: `[N]` -> `[1]`
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let log_p = log_softmax(logits, 1);
    gather_target(log_p, labels).neg().mean()
}
