//! Progress of long work, reported to the caller (this crate prints nothing).

/// Receives progress: a stage starts with a number of steps, steps advance, the stage ends.
/// Every method has an empty default; [`NoProgress`] ignores everything.
pub trait Progress {
    /// A stage (`"embed"`) of `total` steps (images) begins.
    fn start(&mut self, _stage: &str, _total: u64) {}
    /// `steps` more steps are done.
    fn advance(&mut self, _steps: u64) {}
    /// The stage is over.
    fn finish(&mut self) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
