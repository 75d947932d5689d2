//! The error type of this crate.

/// Why a visage model cannot train under burn-train as asked.
#[derive(Debug, thiserror::Error)]
pub enum LearnerError {
    /// The head or an auxiliary loss needs what burn-train's one-optimiser step cannot express.
    #[error("{what}: {why}; train it with visage's own loop (`visage train`)")]
    Unsupported {
        /// The part of the model (`head`, `center`).
        what: String,
        /// What burn-train lacks for it.
        why: String,
    },
    /// A pair set that the verification protocol cannot score.
    #[error("verification set: {0}")]
    PairSet(String),
}
