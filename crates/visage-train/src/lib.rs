//! # visage-train
//!
//! The training loop: a TOML config ([`TrainConfig`]) names the data, backbone, head,
//! optimiser, schedule and loop; [`train`] runs it on any `B: AutodiffBackend`, with
//! checkpoints written atomically and exact resume, progress on the terminal,
//! `metrics.jsonl`, and held-out verification every N steps and at the end. [`zoo`] trains
//! every loss on one budget and tabulates the held-out results.

pub mod config;
pub mod data;
pub mod distributed;
pub mod durable;
pub mod error;
pub mod extract;
pub mod inherit;
pub mod optim;
pub mod schedule;
mod step_report;

pub use config::TrainConfig;
pub use error::TrainError;
pub mod backbone_record;
pub mod checkpoint;
pub mod record_file;
pub mod record_layout;
pub mod run_dir;
pub mod trained;
pub mod trainer;
pub mod zoo;

pub use backbone_record::load_backbone;
pub use trained::load_trained;
pub use trainer::{
    config_fingerprint, init_model, load_model, save_model, train, TrainOptions, TrainSummary,
    Trainee,
};
