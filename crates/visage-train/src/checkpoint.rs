//! Checkpoints: `RUN/checkpoints/step-00000200/` holds `model.bin` (backbone, head, centres),
//! `optim-backbone.bin`, `optim-head.bin` and `state.json` (step, head state, baseline and
//! best scores). A checkpoint is written into a temporary folder and renamed into place, so a
//! crash never leaves a half-written one and never touches an older good one; only after that
//! are checkpoints beyond the last K (and the best) removed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use visage_heads::HeadState;

use crate::TrainError;

/// Everything besides tensors that a resumed run needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointState {
    /// Steps done (the next step to run).
    pub step: u64,
    /// The head's state (annealing iteration, AdaCos scale).
    pub head_state: HeadState,
    /// A fingerprint of the config the run was started with.
    pub config_fingerprint: String,
    /// Held-out accuracy of the untrained model, if evaluated.
    pub baseline_accuracy: Option<f64>,
    /// Best held-out accuracy so far and its step.
    pub best: Option<(u64, f64)>,
}

/// The folder of the checkpoint after `step` steps.
pub fn checkpoint_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join("checkpoints").join(format!("step-{step:08}"))
}

/// The complete checkpoints of a run, oldest first.
pub fn list_checkpoints(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(run_dir.join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step = name.strip_prefix("step-")?.parse::<u64>().ok()?;
            e.path()
                .join("state.json")
                .exists()
                .then(|| (step, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Reads a checkpoint's state, checking it belongs to a run of `fingerprint`.
pub fn read_state(dir: &Path, fingerprint: &str) -> Result<CheckpointState, TrainError> {
    let path = dir.join("state.json");
    let bad = |message: String| TrainError::Checkpoint {
        path: dir.display().to_string(),
        message,
    };
    let text =
        std::fs::read_to_string(&path).map_err(|e| bad(format!("reading state.json: {e}")))?;
    let state: CheckpointState =
        serde_json::from_str(&text).map_err(|e| bad(format!("state.json is corrupt: {e}")))?;
    if state.config_fingerprint != fingerprint {
        return Err(bad("it was written by a run with a different config (data, backbone, head, optim, schedule or train)".into()));
    }
    for file in ["model.bin", "optim-backbone.bin", "optim-head.bin"] {
        if !dir.join(file).exists() {
            return Err(bad(format!("{file} is missing")));
        }
    }
    Ok(state)
}

/// Writes a checkpoint through `write` (which fills the folder it is given), atomically.
pub fn write_checkpoint(
    run_dir: &Path,
    state: &CheckpointState,
    write: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<PathBuf, TrainError> {
    let final_dir = checkpoint_dir(run_dir, state.step);
    let tmp = final_dir.with_extension(format!("tmp{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    write(&tmp)?;
    let json = serde_json::to_string_pretty(state).expect("state serialises");
    std::fs::write(tmp.join("state.json"), json).map_err(|e| TrainError::io(&tmp, e))?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
    Ok(final_dir)
}

/// Removes all but the last `keep` checkpoints, never the best one.
pub fn prune(run_dir: &Path, keep: usize, best_step: Option<u64>) {
    let all = list_checkpoints(run_dir);
    let cut = all.len().saturating_sub(keep.max(1));
    for (step, dir) in all.into_iter().take(cut) {
        if Some(step) != best_step {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
