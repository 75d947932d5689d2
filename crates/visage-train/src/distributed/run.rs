//! `visage train --devices N`: the data-parallel run in a run directory.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;

use super::data_parallel::{run_data_parallel, RunFiles};
use super::DistributedError;
use serde_json::json;

use crate::durable::write_file;
use crate::run_dir::open_run_dir;
use crate::{save_model, train, TrainConfig, TrainError, TrainOptions, TrainSummary};

/// Trains `config` in `run_dir` on `devices` workers of `device`'s kind (one clone of
/// `device` per worker; on the CPU, flex devices).
///
/// A replicated head on one device is [`crate::train`]. Otherwise (several devices, or a
/// sharded head on any number, one included) it is the data-parallel loop, which writes
/// `config.toml`, one `metrics.jsonl` line per step (`{"step", "loss", "lr", "workers"}`),
/// checkpoints every `train.checkpoint_every` steps and at the end (a sharded head is written
/// shard by shard, see docs/scaling-out.md), the trained model (the shards joined) as
/// `model.bin`, and `report.json` (config, steps, workers, training time and images/s). `options.resume` continues from the newest
/// intact checkpoint on any number of devices (a sharded head is re-sharded);
/// `options.stop_after` stops as if killed. Starting from a model record and held-out
/// evaluation are single-device features for now: asking for them here is an error naming
/// the option.
pub fn train_on_devices<B: AutodiffBackend>(
    config: &TrainConfig,
    run_dir: &Path,
    options: &TrainOptions,
    device: &B::Device,
    devices: usize,
) -> Result<TrainSummary, DistributedError> {
    // A sharded head runs the data-parallel loop even on one device: the single-device
    // trainer has no class sampling and writes no shards.
    let sharded = config.sharded_head().is_some();
    if devices <= 1 && !sharded {
        return Ok(train::<B>(config, run_dir, options, device)?);
    }
    let devices = devices.max(1);
    let refuse = |what: &str| -> Result<(), DistributedError> {
        let why = match devices {
            1 => "1 device with a sharded head (which runs the data-parallel loop)".to_string(),
            _ => format!("{devices} devices"),
        };
        Err(TrainError::config(
            "distributed.devices",
            format!("{why}: {what} is not supported by data-parallel training yet"),
        )
        .into())
    };
    if options.initial_model.is_some() || config.train.init_backbone.is_some() {
        refuse("starting from a model record")?;
    }
    if config.eval.is_some() {
        refuse("held-out evaluation ([eval])")?;
    }
    let say = |s: String| {
        if !options.quiet {
            eprintln!("{s}");
        }
    };
    let resume = open_run_dir(run_dir, config, options.resume, options.overwrite, &say)?;
    let files = RunFiles {
        run_dir,
        resume,
        stop_after: options.stop_after,
        progress: options.progress.clone(),
        quiet: options.quiet,
    };
    let summary =
        run_data_parallel::<B>(config, &vec![device.clone(); devices], None, Some(&files))?;
    let report = run_dir.join("report.json");
    let already_finished = resume && summary.losses.is_empty() && report.is_file();
    if !summary.interrupted && !already_finished {
        save_model(&summary.model, &run_dir.join("model.bin"))?;
        let steps = summary.start_step + summary.losses.len() as u64;
        let json = json!({
            "config": config,
            "steps": steps,
            "workers": devices,
            "train_seconds": summary.total_train_seconds,
            "images_per_second": steps as f64 * config.train.batch_size as f64
                / summary.total_train_seconds.max(1e-9),
        });
        write_file(
            &report,
            serde_json::to_string_pretty(&json)
                .unwrap_or_default()
                .as_bytes(),
        )?;
    }
    if !options.quiet && !already_finished {
        eprintln!(
            "{} workers: steps {}..{}, {:.1} images/s",
            devices,
            summary.start_step,
            summary.start_step + summary.losses.len() as u64,
            summary.images_per_second
        );
    }
    Ok(TrainSummary {
        run_dir: run_dir.to_path_buf(),
        losses: summary.losses,
        baseline: None,
        report: None,
        train_seconds: if already_finished {
            summary.total_train_seconds
        } else {
            summary.train_seconds
        },
        images_per_second: summary.images_per_second,
        interrupted: summary.interrupted,
        already_finished,
        skipped_checkpoints: summary.skipped_checkpoints,
    })
}
