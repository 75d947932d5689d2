//! Scale-out on Burn's own collective machinery (`burn-collective`, issue 17).
//!
//! - [`train_data_parallel`]: local data parallelism, one worker thread per device (on the
//!   CPU, several flex devices), the global batch (`train.batch_size`) split into equal,
//!   disjoint parts, the model built once and cloned to every device (checked identical
//!   across workers before the first step), and every step's backbone and head gradients
//!   averaged with `GradientsParams::all_reduce` (burn-optim's `collective` feature) before
//!   the optimiser. Every worker then takes the same optimiser step, so the replicas stay
//!   identical.
//! - `[distributed] shard_head = true`: the head's class weights split by class range over the
//!   workers (`visage_heads::sharded`), embeddings gathered each step by an all-reduce of a
//!   zero-padded buffer, their gradient summed back to each worker's rows.
//! - [`CollectiveExchange`]: the sharded classifier's [`visage_heads::sharded::Exchange`] on
//!   `burn-collective`'s all-reduce.
//!
//! What equals one device: for the softmax-family heads (whose loss is a mean of per-row
//! terms) and backbones without batch statistics (LeNets++, the SphereFace nets), a run on W
//! devices follows the same steps as one device at the same global batch, up to rounding.
//! BatchNorm statistics stay per worker (as in arcface_torch's DDP): backbones with BatchNorm
//! (IResNet, MobileFaceNet) normalise each worker's part of the batch with its own statistics
//! and keep their own running statistics, so they differ from one device. Losses that couple
//! the rows of a batch (triplet, contrastive, center loss, dynamic AdaCos's batch scale) are
//! refused.

mod checkpoint;
mod config;
mod data_parallel;
mod error;
mod exchange;
mod reshard;
mod run;

pub use config::DistributedConfig;
pub use data_parallel::{
    train_data_parallel, train_data_parallel_with_fault, train_data_parallel_with_panic,
    DataParallelSummary,
};
pub use error::DistributedError;
pub use exchange::CollectiveExchange;
pub use run::train_on_devices;
