//! The order runs train in: by priority, each run that starts from another's backbone
//! ([`RunSpec::start_from`]) only once that run is done.

use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::preset::RunSpec;
use crate::FigureError;

/// How a run taken from the queue starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// From its random initialisation.
    Fresh,
    /// From run `parent`'s trained backbone. `retrained`: the parent was trained in this
    /// invocation, so a finished run of this one (from the parent's old backbone) is stale.
    From {
        /// The run started from.
        parent: String,
        /// Whether the parent trained anew in this invocation.
        retrained: bool,
    },
    /// Its parent failed (or the runs start from each other in a cycle): not trained.
    Failed(String),
}

/// A run to train now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    /// Its place in the training order (0 first).
    pub position: usize,
    /// Its index in the job's runs.
    pub index: usize,
    /// How it starts.
    pub start: Start,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Waiting,
    Taken,
    Done { reused: bool },
    Failed,
}

/// The runs still to train, shared by the worker threads.
pub struct Queue<'a> {
    runs: &'a [RunSpec],
    order: Vec<usize>,
    slots: Mutex<Vec<Slot>>,
    changed: Condvar,
}

impl<'a> Queue<'a> {
    /// A queue of `runs` trained in `order` (indices into `runs`, each once).
    pub fn new(runs: &'a [RunSpec], order: Vec<usize>) -> Self {
        Self {
            runs,
            order,
            slots: Mutex::new(vec![Slot::Waiting; runs.len()]),
            changed: Condvar::new(),
        }
    }

    /// The first run in order that can start now, waiting while the runs left all wait for
    /// runs being trained; `None` when none is left or `stopped()` says so.
    pub fn take(&self, stopped: &dyn Fn() -> bool) -> Option<Next> {
        let mut slots = self.slots.lock().ok()?;
        loop {
            if stopped() {
                return None;
            }
            let mut waiting = None;
            for (position, &index) in self.order.iter().enumerate() {
                if slots[index] != Slot::Waiting {
                    continue;
                }
                waiting.get_or_insert((position, index));
                if let Some(start) = self.ready(&slots, index) {
                    slots[index] = Slot::Taken;
                    return Some(Next {
                        position,
                        index,
                        start,
                    });
                }
            }
            let (position, index) = waiting?;
            if !slots.contains(&Slot::Taken) {
                // Nothing being trained can release the waiting runs: they start from each
                // other.
                slots[index] = Slot::Taken;
                let parent = self.runs[index].start_from.clone().unwrap_or_default();
                return Some(Next {
                    position,
                    index,
                    start: Start::Failed(parent),
                });
            }
            slots = self
                .changed
                .wait_timeout(slots, Duration::from_millis(500))
                .ok()?
                .0;
        }
    }

    fn ready(&self, slots: &[Slot], index: usize) -> Option<Start> {
        let Some(parent) = &self.runs[index].start_from else {
            return Some(Start::Fresh);
        };
        let from = |retrained| Start::From {
            parent: parent.clone(),
            retrained,
        };
        match self.runs.iter().position(|r| &r.name == parent) {
            // Not in this job: its finished run from an earlier invocation.
            None => Some(from(false)),
            Some(p) => match slots[p] {
                Slot::Done { reused } => Some(from(!reused)),
                Slot::Failed => Some(Start::Failed(parent.clone())),
                Slot::Waiting | Slot::Taken => None,
            },
        }
    }

    /// Marks run `index` done (`Some(reused)`) or failed (`None`) and wakes the waiting.
    pub fn finish(&self, index: usize, reused: Option<bool>) {
        if let Ok(mut slots) = self.slots.lock() {
            slots[index] = match reused {
                Some(reused) => Slot::Done { reused },
                None => Slot::Failed,
            };
        }
        self.changed.notify_all();
    }

    /// Wakes the waiting threads (to see a stop).
    pub fn wake(&self) {
        self.changed.notify_all();
    }
}

/// `run` ready to train after `start`: its `[train] init_backbone` set to the parent's
/// `runs_dir/<parent>/backbone.bin`, and, when the parent trained anew, its own finished run
/// marked stale (its `report.json` removed) so that it trains again.
pub fn with_start(run: &RunSpec, runs_dir: &Path, start: &Start) -> Result<RunSpec, FigureError> {
    let mut run = run.clone();
    if let Start::From { parent, retrained } = start {
        run.config.train.init_backbone = Some(runs_dir.join(parent).join("backbone.bin"));
        let report = runs_dir.join(&run.name).join("report.json");
        if *retrained && report.exists() {
            std::fs::remove_file(&report).map_err(|e| FigureError::io(&report, e))?;
        }
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::{preset_runs, Preset};

    fn runs(names: &[(&str, Option<&str>)]) -> Vec<RunSpec> {
        let template = preset_runs(Preset::Cpu, Path::new("/nonexistent")).unwrap()[0].clone();
        names
            .iter()
            .map(|(name, from)| RunSpec {
                name: name.to_string(),
                start_from: from.map(str::to_string),
                ..template.clone()
            })
            .collect()
    }

    fn never() -> bool {
        false
    }

    #[test]
    fn a_run_waits_for_the_run_it_starts_from() {
        let runs = runs(&[("a", None), ("b", Some("a")), ("c", None)]);
        let q = Queue::new(&runs, vec![0, 1, 2]);
        let first = q.take(&never).unwrap();
        assert_eq!(
            (first.position, first.index, first.start),
            (0, 0, Start::Fresh)
        );
        // b waits for a: c comes next.
        let second = q.take(&never).unwrap();
        assert_eq!((second.index, second.start), (2, Start::Fresh));
        q.finish(0, Some(false));
        let third = q.take(&never).unwrap();
        assert_eq!(
            (third.position, third.index, third.start),
            (
                1,
                1,
                Start::From {
                    parent: "a".into(),
                    retrained: true
                }
            )
        );
        q.finish(1, Some(true));
        q.finish(2, Some(true));
        assert!(q.take(&never).is_none());
    }

    #[test]
    fn a_reused_parent_keeps_the_child_reusable_and_a_failed_one_fails_it() {
        let runs = runs(&[("a", None), ("b", Some("a")), ("c", None), ("d", Some("c"))]);
        let q = Queue::new(&runs, vec![0, 2, 1, 3]);
        assert_eq!(q.take(&never).unwrap().index, 0);
        assert_eq!(q.take(&never).unwrap().index, 2);
        q.finish(0, Some(true));
        q.finish(2, None);
        let b = q.take(&never).unwrap();
        assert_eq!(
            b.start,
            Start::From {
                parent: "a".into(),
                retrained: false
            }
        );
        let d = q.take(&never).unwrap();
        assert_eq!((d.index, d.start), (3, Start::Failed("c".into())));
    }

    #[test]
    fn a_cycle_or_a_stop_ends_the_wait() {
        let runs = runs(&[("a", Some("b")), ("b", Some("a"))]);
        let q = Queue::new(&runs, vec![0, 1]);
        assert_eq!(q.take(&never).unwrap().start, Start::Failed("b".into()));
        q.finish(0, None);
        assert_eq!(q.take(&never).unwrap().start, Start::Failed("a".into()));
        // A parent outside the job: its finished run is used.
        let runs = runs_outside();
        let q = Queue::new(&runs, vec![0]);
        assert_eq!(
            q.take(&never).unwrap().start,
            Start::From {
                parent: "elsewhere".into(),
                retrained: false
            }
        );
        // A stop while waiting.
        let runs = self::runs(&[("a", None), ("b", Some("a"))]);
        let q = Queue::new(&runs, vec![0, 1]);
        q.take(&never).unwrap();
        assert!(q.take(&|| true).is_none());
    }

    fn runs_outside() -> Vec<RunSpec> {
        runs(&[("x", Some("elsewhere"))])
    }

    #[test]
    fn with_start_points_at_the_parents_backbone_and_drops_a_stale_report() {
        let dir = std::env::temp_dir().join(format!("visage-queue-{}", std::process::id()));
        let child = dir.join("b");
        std::fs::create_dir_all(&child).unwrap();
        std::fs::write(child.join("report.json"), "{}").unwrap();
        let runs = runs(&[("b", Some("a"))]);
        let kept = with_start(
            &runs[0],
            &dir,
            &Start::From {
                parent: "a".into(),
                retrained: false,
            },
        )
        .unwrap();
        assert_eq!(
            kept.config.train.init_backbone,
            Some(dir.join("a").join("backbone.bin"))
        );
        assert!(child.join("report.json").exists());
        with_start(
            &runs[0],
            &dir,
            &Start::From {
                parent: "a".into(),
                retrained: true,
            },
        )
        .unwrap();
        assert!(!child.join("report.json").exists());
        let fresh = with_start(&runs[0], &dir, &Start::Fresh).unwrap();
        assert_eq!(fresh.config.train.init_backbone, None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
