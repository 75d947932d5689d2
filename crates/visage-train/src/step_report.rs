//! How a training loop reports its steps: to the caller's [`Progress`] receiver (the `visage`
//! command's bar), else as `step i/n  loss ...` lines on stderr unless quiet. One stage
//! (`"train"`) of the run's steps, started at the step the run starts from, advanced at every
//! `train.log_every` and at the last step.

use visage_io::{Progress, SharedProgress};

/// A training loop's step reports (see the module documentation).
pub(crate) struct StepReport {
    progress: Option<SharedProgress>,
    say: bool,
    reported: u64,
    total: u64,
}

impl StepReport {
    /// Starts the stage of `total` steps at step `start`; without `progress`, lines go to
    /// stderr if `say`.
    pub(crate) fn start(
        progress: Option<SharedProgress>,
        say: bool,
        start: u64,
        total: u64,
    ) -> Self {
        let mut report = StepReport {
            progress,
            say,
            reported: start,
            total,
        };
        if let Some(p) = report.progress.as_mut() {
            p.start("train", total);
            p.advance(start);
        }
        report
    }

    /// Step `done` (1-based) is over with this loss, learning rate and throughput.
    pub(crate) fn step(&mut self, done: u64, loss: f64, lr: f64, images_per_second: f64) {
        let line = format!("loss {loss:.4}  lr {lr:.4}  {images_per_second:.1} img/s");
        match self.progress.as_mut() {
            Some(p) => {
                p.advance(done - self.reported);
                p.message(&line);
                self.reported = done;
            }
            None if self.say => eprintln!("step {done}/{}  {line}", self.total),
            None => {}
        }
    }

    /// The stage is over.
    pub(crate) fn finish(&mut self) {
        if let Some(p) = self.progress.as_mut() {
            p.finish();
        }
    }
}
