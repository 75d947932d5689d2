//! A run's trained modules read back from its last checkpoint, on any backend (inference
//! included), for whoever needs the head as well as the backbone (class weights, centres).

use std::path::Path;

use burn::module::Module;
use burn::record::{BinFileRecorder, FullPrecisionSettings};
use burn::tensor::backend::Backend;
use visage_heads::CenterLossConfig;

use crate::checkpoint::{list_checkpoints, read_state};
use crate::config::TrainConfig;
use crate::trainer::{config_fingerprint, Trainee};
use crate::TrainError;

/// The modules of the run in `run_dir` (trained with `config` on `classes` classes) as its
/// last complete checkpoint holds them: backbone, head and auxiliary centres. A finished run's
/// last checkpoint is its final model. Errors when the run has no checkpoint, or when the
/// checkpoint was written by a run of another config.
pub fn load_trained<B: Backend>(
    config: &TrainConfig,
    run_dir: &Path,
    classes: usize,
    device: &B::Device,
) -> Result<Trainee<B>, TrainError> {
    let (_, dir) = list_checkpoints(run_dir)
        .pop()
        .ok_or_else(|| TrainError::Checkpoint {
            path: run_dir.join("checkpoints").display().to_string(),
            message: "no complete checkpoint to read the trained model from".into(),
        })?;
    read_state(&dir, &config_fingerprint(config))?;
    let dim = config.backbone.embedding_dim()?;
    let skeleton = Trainee {
        backbone: config.backbone.init(device)?,
        head: config.head.spec.to_config(classes, dim)?.init(device)?,
        center: match config.head.center {
            Some(c) => Some(
                CenterLossConfig::new(classes, dim)
                    .with_alpha(c.alpha.unwrap_or(0.5))
                    .init(device)?,
            ),
            None => None,
        },
    };
    let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
    skeleton
        .load_file(dir.join("model"), &recorder, device)
        .map_err(|e| TrainError::Checkpoint {
            path: dir.display().to_string(),
            message: e.to_string(),
        })
}
