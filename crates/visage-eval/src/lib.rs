//! Face-recognition evaluation on plain embedding matrices (no training code, no Burn).
//!
//! - [`io`]: embeddings / labels / same-flags from `.npy` and `.safetensors`, pairs files.
//! - [`verification`] and [`roc`]: the InsightFace 10-fold accuracy and pooled ROC numbers
//!   (TAR@FAR, EER, AUC); [`report::verify_pairs`] runs both into a [`VerificationReport`].
//! - [`identification`]: MegaFace-style 1:N rank-k rates and TAR@FAR=1e-6, computed in blocks.
//!
//! Plots and the loss zoo's table live in `visage-report`, which draws these numbers.
//!
//! Protocols follow `docs/evaluation.md` in the repository; distances and scores that decide a
//! number are computed in f64.

pub mod embeddings;
pub mod error;
pub mod identification;
pub mod io;
pub mod kfold;
pub mod pairs;
pub mod report;
pub mod roc;
pub mod score_block;
pub mod similarity;
pub mod topk;
pub mod verification;

pub use embeddings::Embeddings;
pub use error::EvalError;
pub use identification::{
    identify, identify_with_progress, IdentificationConfig, IdentificationReport, RankRates,
};
pub use pairs::{Pair, Pairs};
pub use report::{
    score_pairs, verify_interleaved, verify_pairs, write_report, PairScores, Verification,
    VerificationReport,
};
pub use roc::RocCurve;
pub use verification::{ten_fold_accuracy, TenFoldAccuracy};
