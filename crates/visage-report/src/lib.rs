//! Reports drawn from visage's evaluation numbers, kept apart from the numbers themselves
//! (`visage-eval` computes, this crate draws and tabulates):
//!
//! - [`plot`]: ROC and score-histogram PNGs of a verification run;
//! - [`zoo`]: the loss zoo's Markdown table and bar chart;
//! - [`verify`]: 1:1 verification from files, report and plots ([`verify_files`]).
//!
//! Every file is written through a temporary sibling renamed into place
//! ([`visage_io::write_atomic_by_path`]); errors are [`ReportError`], each naming
//! the output file.

pub mod error;
pub mod plot;
pub mod verify;
pub mod zoo;

pub use error::ReportError;
pub use plot::{histogram_path, plot_roc, plot_score_histograms};
pub use verify::{verify_files, PairsSource, VerifyOutcome, VerifyRequest};
pub use zoo::{plot_zoo, zoo_markdown, ZooRow};
