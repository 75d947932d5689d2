//! # visage-figures
//!
//! The pictures the face-loss papers explain themselves with, for your own settings:
//!
//! | file | what |
//! |---|---|
//! | `curves.rs` | target logits, decision boundaries, AdaCos `P(theta)`, by the heads' own code |
//! | `analytic.rs` | the analytic figures (no training) |
//! | `preset.rs` | the runs of `visage figures` (`cpu` and `full` presets) |
//! | `feature_space.rs` | train one run, read back its model, extract train/test features |
//! | `scatter.rs` | one run's figure: features by class, class directions, angle histogram |
//! | `contact_sheet.rs` | every run's figure on one sheet |
//! | `pipeline.rs` | the whole set, with one progress line per run |
//!
//! Every figure is written as PNG and SVG (drawn into a temporary file and renamed).

pub mod analytic;
pub mod contact_sheet;
pub mod curves;
pub mod error;
pub mod feature_space;
pub mod lines;
pub mod pipeline;
pub mod preset;
pub mod queue;
pub mod scatter;
pub mod style;

pub use error::FigureError;
