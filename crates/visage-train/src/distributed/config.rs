//! The `[distributed]` table of a training config.

use serde::{Deserialize, Serialize};

/// `[distributed]`: how many devices a run spreads over.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributedConfig {
    /// Worker threads, one per device, on this machine (1: the ordinary single-device loop).
    /// On the CPU each worker is a flex device. `train.batch_size` is the global batch and
    /// must be a multiple of it.
    #[serde(default = "one")]
    pub devices: usize,
    /// Shard the head's class weights over the workers by class range (Partial FC,
    /// `visage_heads::sharded`) instead of replicating them: each worker holds `C / devices`
    /// classes and the embeddings of the whole global batch are gathered every step.
    #[serde(default)]
    pub shard_head: bool,
    /// With `shard_head`: the fraction of each shard's classes used per step (Partial FC v2
    /// sampling; the batch's classes are always kept), in `(0, 1]`.
    #[serde(default = "full_rate")]
    pub sample_rate: f64,
}

fn full_rate() -> f64 {
    1.0
}

fn one() -> usize {
    1
}

impl Default for DistributedConfig {
    fn default() -> Self {
        DistributedConfig {
            devices: 1,
            shard_head: false,
            sample_rate: 1.0,
        }
    }
}
