//! A run's trained modules read back from its last checkpoint, on any backend (inference
//! included), for whoever needs the head as well as the backbone (class weights, centres).

use std::path::Path;

use burn::tensor::backend::Backend;

use crate::checkpoint::{list_checkpoints, verify_checkpoint};
use crate::config::TrainConfig;
use crate::trainer::{config_fingerprint, init_model, load_model, Trainee};
use crate::TrainError;

/// The modules of the run in `run_dir` (trained with `config` on `classes` classes) as its
/// newest checkpoint holds them (verified against its manifest): backbone, head and auxiliary centres. A finished run's
/// last checkpoint is its final model. Errors when the run has no checkpoint, or when the
/// checkpoint was written by a run of another config.
pub fn load_trained<B: Backend>(
    config: &TrainConfig,
    run_dir: &Path,
    classes: usize,
    device: &B::Device,
) -> Result<Trainee<B>, TrainError> {
    // The newest checkpoint only: an older one is not the trained model, so a newest one that
    // fails verification is an error here (a resume falls back; a reader of results must not).
    let (_, dir) = list_checkpoints(run_dir)
        .pop()
        .ok_or_else(|| TrainError::Checkpoint {
            path: run_dir.join("checkpoints").display().to_string(),
            message: "no complete checkpoint to read the trained model from".into(),
        })?;
    verify_checkpoint(&dir, &config_fingerprint(config), None)?;
    load_model(
        init_model::<B>(config, classes, device)?,
        &dir.join("model.bin"),
        device,
    )
}
