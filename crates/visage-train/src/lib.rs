//! # visage-train
//!
//! The training loop: a TOML config ([`TrainConfig`]) names the data, backbone, head,
//! optimiser, schedule and loop; [`train`] runs it on any `B: AutodiffBackend`, with
//! checkpoints written atomically and exact resume, progress on the terminal,
//! `metrics.jsonl`, and held-out verification every N steps and at the end.

pub mod config;
pub mod data;
pub mod error;
pub mod extract;
pub mod optim;
pub mod schedule;

pub use config::TrainConfig;
pub use error::TrainError;
pub mod checkpoint;
pub mod trained;
pub mod trainer;

pub use trained::load_trained;
pub use trainer::{config_fingerprint, train, TrainOptions, TrainSummary, Trainee};
