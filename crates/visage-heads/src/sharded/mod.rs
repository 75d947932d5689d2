//! The sharded classifier (model parallelism of the class weights, as InsightFace's Partial
//! FC, An et al. ICCVW 2021): the class-weight matrix `W [C, d]` is split by class range over
//! `world_size` shards; each shard computes the logits of its own classes for every
//! embedding of the (global) batch, and the softmax cross-entropy is made exact across shards
//! by all-reducing each row's maximum, its sum of exponentials and its target logit:
//!
//! ```text
//! M_i = max_k max_{j in k} z_ij            (all-reduce max)
//! S_i = sum_k sum_{j in k} exp(z_ij - M_i) (all-reduce sum)
//! t_i = z_{i,y_i}, held by one shard       (all-reduce sum of the masked column)
//! L   = 1/N sum_i (M_i + log S_i - t_i),   dL/dz_ij = (exp(z_ij - M_i - log S_i) - [j = y_i]) / N
//! ```
//!
//! Each shard's loss tensor has the value `L` and, through autodiff, the exact gradient of
//! `L` with respect to its class weights (and bias); its gradient with respect to the
//! embeddings (and to a learned NormFace scale) is this shard's part, and the parts summed
//! over the shards are the full gradient. With `sample_rate < 1`, Partial FC v2's sampling
//! ([`sample_classes`]) restricts the softmax to the positives plus sampled negatives.
//!
//! The exchange is the [`Exchange`] trait (all-reduce sum/max of `[N, k]` tensors), so the
//! heads crate carries no transport: [`LocalExchange`] joins threads of one process,
//! `visage-train` joins devices and machines through `burn-collective`.

mod error;
mod exchange;
mod head;
mod sampling;

use std::ops::Range;

pub use error::ShardError;
pub use exchange::{
    Exchange, ExchangeError, LocalExchange, ReduceOp, SingleExchange, LOCAL_EXCHANGE_TIMEOUT,
};
pub use head::{ShardedHead, ShardedOutput};
pub use sampling::sample_classes;

/// The class range of shard `rank` of `world_size` over `classes` classes, as arcface_torch
/// splits them: `C / W` classes each, the first `C % W` shards one more.
pub fn shard_range(classes: usize, world_size: usize, rank: usize) -> Range<usize> {
    let world = world_size.max(1);
    let (base, extra) = (classes / world, classes % world);
    let start = base * rank + rank.min(extra);
    let len = base + usize::from(rank < extra);
    start..start + len
}
