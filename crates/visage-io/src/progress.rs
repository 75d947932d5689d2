//! Progress of long work, reported to the caller: libraries print nothing, a binary draws the
//! bars (the `visage` command implements [`Progress`] with an indicatif bar).
//!
//! The trait lives here, in the crate every visage library already depends on, so that each
//! library reports progress the same way without a dependency on a terminal crate.

use std::sync::{Arc, Mutex};

/// Receives progress: a stage starts with a number of steps, steps advance, the stage ends.
/// Every method has an empty default; [`NoProgress`] ignores everything.
///
/// `Send`, so that work spread over threads can report from any of them (behind a lock).
pub trait Progress: Send {
    /// A stage (`"embed"`, `"identify"`) of `total` steps begins.
    fn start(&mut self, _stage: &str, _total: u64) {}
    /// `steps` more steps are done.
    fn advance(&mut self, _steps: u64) {}
    /// A short status line for the current stage (`"loss 2.31  lr 0.1  850 img/s"`).
    fn message(&mut self, _text: &str) {}
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
    fn message(&mut self, text: &str) {
        (**self).message(text);
    }
    fn finish(&mut self) {
        (**self).finish();
    }
}

/// A [`Progress`] behind a shared lock, for option structs that are cloned and passed by
/// reference (`visage_train::TrainOptions`): every clone reports to the same receiver.
#[derive(Clone)]
pub struct SharedProgress(Arc<Mutex<dyn Progress>>);

impl SharedProgress {
    /// Shares `progress`.
    pub fn new(progress: impl Progress + 'static) -> Self {
        Self(Arc::new(Mutex::new(progress)))
    }

    fn with(&self, f: impl FnOnce(&mut dyn Progress)) {
        // A receiver that panicked while drawing is still usable for the next line.
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut *guard);
    }
}

impl std::fmt::Debug for SharedProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedProgress")
    }
}

impl Progress for SharedProgress {
    fn start(&mut self, stage: &str, total: u64) {
        self.with(|p| p.start(stage, total));
    }
    fn advance(&mut self, steps: u64) {
        self.with(|p| p.advance(steps));
    }
    fn message(&mut self, text: &str) {
        self.with(|p| p.message(text));
    }
    fn finish(&mut self) {
        self.with(|p| p.finish());
    }
}
