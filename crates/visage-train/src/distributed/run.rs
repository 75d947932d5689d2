//! `visage train --devices N`: the data-parallel run in a run directory.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use serde_json::json;

use super::{train_data_parallel, DistributedError};
use crate::durable::append_line;
use crate::run_dir::{claim_run_dir, write_run_config};
use crate::{save_model, train, TrainConfig, TrainError, TrainOptions, TrainSummary};

/// Trains `config` in `run_dir` on `devices` workers of `device`'s kind (one clone of
/// `device` per worker; on the CPU, flex devices): [`crate::train`] for `devices <= 1`, else
/// [`train_data_parallel`], writing `config.toml`, one `metrics.jsonl` line per step
/// (`{"step", "loss", "workers"}`) and the trained model as `model.bin`. Resume, early stop
/// and held-out evaluation are single-device features for now: asking for them with
/// `devices > 1` is an error naming the option.
pub fn train_on_devices<B: AutodiffBackend>(
    config: &TrainConfig,
    run_dir: &Path,
    options: &TrainOptions,
    device: &B::Device,
    devices: usize,
) -> Result<TrainSummary, DistributedError> {
    // A sharded head that samples its classes (Partial FC v2) runs the data-parallel loop even
    // on one device: the single-device trainer has no sampling. Sharded at rate 1 on one
    // device is the full head, which the single-device trainer runs as it is.
    let sampled = config.sharded_head().is_some_and(|rate| rate < 1.0);
    if devices <= 1 && !sampled {
        return Ok(train::<B>(config, run_dir, options, device)?);
    }
    let devices = devices.max(1);
    let refuse = |what: &str| -> Result<(), DistributedError> {
        let why = match devices {
            1 => format!(
                "1 device with {} < 1 (the sampled sharded head runs the data-parallel loop)",
                config.sample_rate_key()
            ),
            _ => format!("{devices} devices"),
        };
        Err(TrainError::config(
            "distributed.devices",
            format!("{why}: {what} is not supported by data-parallel training yet"),
        )
        .into())
    };
    if options.resume {
        refuse("--resume")?;
    }
    if options.stop_after.is_some() {
        refuse("--stop-after")?;
    }
    if options.initial_model.is_some() || config.train.init_backbone.is_some() {
        refuse("starting from a model record")?;
    }
    if config.eval.is_some() {
        refuse("held-out evaluation ([eval])")?;
    }
    claim_run_dir(run_dir, options.overwrite)?;
    write_run_config(run_dir, config)?;
    let summary = train_data_parallel::<B>(config, &vec![device.clone(); devices])?;
    let metrics = run_dir.join("metrics.jsonl");
    for (step, loss) in &summary.losses {
        append_line(
            &metrics,
            &json!({"step": step + 1, "loss": loss, "workers": devices}).to_string(),
        )?;
    }
    save_model(&summary.model, &run_dir.join("model"))?;
    if !options.quiet {
        eprintln!(
            "{} workers: {} steps, {:.1} images/s",
            devices,
            summary.losses.len(),
            summary.images_per_second
        );
    }
    Ok(TrainSummary {
        run_dir: run_dir.to_path_buf(),
        losses: summary.losses,
        baseline: None,
        report: None,
        train_seconds: summary.train_seconds,
        images_per_second: summary.images_per_second,
        interrupted: false,
        already_finished: false,
        skipped_checkpoints: Vec::new(),
    })
}
