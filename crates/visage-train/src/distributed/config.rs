//! The `[distributed]` table of a training config.

use serde::{Deserialize, Serialize};

/// `[distributed]`: how many devices a run spreads over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributedConfig {
    /// Worker threads, one per device, on this machine (1: the ordinary single-device loop).
    /// On the CPU each worker is a flex device. `train.batch_size` is the global batch and
    /// must be a multiple of it.
    #[serde(default = "one")]
    pub devices: usize,
}

fn one() -> usize {
    1
}

impl Default for DistributedConfig {
    fn default() -> Self {
        DistributedConfig { devices: 1 }
    }
}
