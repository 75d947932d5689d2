//! Errors of distributed training: each names the worker it happened on.

use thiserror::Error;

use crate::TrainError;

/// What can go wrong in a distributed run.
#[derive(Debug, Error)]
pub enum DistributedError {
    /// The configuration or the data cannot be trained on (before any worker starts).
    #[error(transparent)]
    Train(Box<TrainError>),
    /// A worker failed; the others were stopped.
    #[error("worker {worker}: {source}")]
    Worker {
        /// The worker's rank.
        worker: usize,
        /// What it hit.
        source: Box<TrainError>,
    },
    /// A collective operation failed on a worker.
    #[error("worker {worker}: collective {operation} failed: {message}")]
    Collective {
        /// The worker's rank.
        worker: usize,
        /// `register`, `all_reduce` or `finish_collective`.
        operation: &'static str,
        /// burn-collective's error, printed.
        message: String,
    },
    /// The replicas do not start from the same weights.
    #[error("worker {worker}: its initial model differs from the other workers' (parameter fingerprint {local:?}, group range {min:?}..{max:?})")]
    Diverged {
        /// The worker's rank.
        worker: usize,
        /// Its fingerprint (sum, sum of squares of every parameter).
        local: [f64; 2],
        /// The smallest fingerprint of the group.
        min: [f64; 2],
        /// The largest fingerprint of the group.
        max: [f64; 2],
    },
    /// The sharded head failed on a worker (layout, unsupported kind, exchange).
    #[error("worker {worker}: sharded head: {source}")]
    Shard {
        /// The worker's rank.
        worker: usize,
        /// The sharded head's error.
        source: Box<visage_heads::sharded::ShardError>,
    },
    /// This worker stopped because others failed at a step.
    #[error("worker {worker}: stopped at step {step} because worker(s) {failed:?} failed")]
    PeerFailed {
        /// The worker's rank.
        worker: usize,
        /// The ranks that failed.
        failed: Vec<usize>,
        /// The step.
        step: u64,
    },
    /// A worker thread panicked.
    #[error("worker {worker} panicked: {message}")]
    Panicked {
        /// The worker's rank.
        worker: usize,
        /// The panic's message.
        message: String,
    },
}

impl From<TrainError> for DistributedError {
    fn from(e: TrainError) -> Self {
        DistributedError::Train(Box::new(e))
    }
}
