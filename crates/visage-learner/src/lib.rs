//! # visage-learner
//!
//! visage on Burn's own training stack: a backbone + head as a burn-train `Learner` model
//! ([`FaceModel`], implementing `TrainStep` and `InferenceStep`), fed by Burn's `DataLoader`
//! over any visage dataset ([`visage_data::BurnDataset`], [`visage_data::ImageBatcher`]), with
//! held-out verification (10-fold accuracy, TAR@FAR, by `visage-eval`'s protocol) as a
//! burn-train metric ([`VerificationMetric`]).
//!
//! burn-train runs one optimiser over the whole model, checkpoints per epoch and owns the loop.
//! visage's own loop ([`visage_train::train`]) stays the tool for what it cannot express: a
//! learning rate and decay per parameter group (backbone, head), rule-updated centres (center
//! loss), gradient clipping across groups and exact mid-epoch resume. `docs/burn-train.md`
//! says which to use when.
//!
//! This crate takes burn-train without its TUI; the dashboard is Burn's `tui` feature, which
//! the example `examples/burn_train_arcface.rs` switches on.

pub mod error;
pub mod model;
pub mod output;
pub mod verification;

pub use error::LearnerError;
pub use model::FaceModel;
pub use output::{EmbeddingOutput, VerificationInput};
pub use verification::{VerificationMetric, VerificationStat};
