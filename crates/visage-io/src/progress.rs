//! Progress of long work, reported to the caller: libraries print nothing, a binary draws the
//! bars (the `visage` command implements [`Progress`] with an indicatif bar).
//!
//! The trait lives here, in the crate every visage library already depends on, so that each
//! library reports progress the same way without a dependency on a terminal crate.

/// Receives progress: a stage starts with a number of steps, steps advance, the stage ends.
/// Every method has an empty default; [`NoProgress`] ignores everything.
///
/// `Send`, so that work spread over threads can report from any of them (behind a lock).
pub trait Progress: Send {
    /// A stage (`"embed"`, `"identify"`) of `total` steps begins.
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

impl<P: Progress + ?Sized> Progress for &mut P {
    fn start(&mut self, stage: &str, total: u64) {
        (**self).start(stage, total);
    }
    fn advance(&mut self, steps: u64) {
        (**self).advance(steps);
    }
    fn finish(&mut self) {
        (**self).finish();
    }
}
