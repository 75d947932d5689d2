//! The loss zoo: every loss trained on the same data, backbone, batch, steps and seed, then
//! compared on held-out verification.
//!
//! [`find_configs`] expands `configs/synth-*.toml`-style patterns, [`ZooEntry::load`] reads a
//! config and applies the [`ZooPreset`] (and a `steps` override) to it, [`check_budget`] lists
//! what differs between the entries besides the head, [`run_zoo`] trains each entry in its own
//! run directory (skipping finished runs, resuming interrupted ones) and [`write_zoo`] writes
//! `zoo.md` (the table of [`visage_report::zoo`]), `zoo.png` and `zoo.svg`.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use serde_json::Value;
use visage_report::ZooRow;

use crate::checkpoint::list_checkpoints;
use crate::config::{DataKind, EvalKind, SamplerKind};
use crate::{config_fingerprint, train, TrainConfig, TrainError, TrainOptions};

/// Steps of the CPU preset: the 12 synthetic configs took 31 minutes on 2 cores shared with
/// other work (flex backend, release), under an hour with the release build.
pub const CPU_STEPS: u64 = 500;
/// Steps of the GPU preset.
pub const GPU_STEPS: u64 = 4000;

/// A budget applied on top of every config of the zoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZooPreset {
    /// The configs as they are, with [`CPU_STEPS`] steps and evaluation only at the end.
    #[default]
    Cpu,
    /// A larger problem for one GPU: 1,000 synthetic identities x 32 images at 112x112,
    /// IResNet-18 (512-d), batch 256, [`GPU_STEPS`] steps; held out: 1,000 identities x 8
    /// images, 10 folds of 300 + 300 pairs. Heads, optimiser and schedule as configured.
    Gpu,
}

impl ZooPreset {
    /// The preset's name (`cpu`, `gpu`).
    pub fn name(self) -> &'static str {
        match self {
            ZooPreset::Cpu => "cpu",
            ZooPreset::Gpu => "gpu",
        }
    }

    /// Applies the preset, then `steps` if given, to `config`. Either way the zoo evaluates
    /// only at the end (the untrained baseline and the final model).
    pub fn apply(self, config: &mut TrainConfig, steps: Option<u64>) {
        let default_steps = match self {
            ZooPreset::Cpu => CPU_STEPS,
            ZooPreset::Gpu => {
                let d = &mut config.data;
                if d.kind == DataKind::Synthetic {
                    d.identities = Some(1000);
                    d.images_per_identity = Some(32);
                    d.image_size = Some(112);
                }
                let b = &mut config.backbone;
                b.kind = "iresnet18".into();
                b.depth = None;
                b.input_size = Some([112, 112]);
                b.embedding_dim = Some(512);
                b.in_channels = None;
                if let Some(e) = config
                    .eval
                    .as_mut()
                    .filter(|e| e.kind == EvalKind::Synthetic)
                {
                    e.identities = Some(1000);
                    e.images_per_identity = Some(8);
                    e.pairs_per_fold = Some(300);
                }
                config.train.batch_size = 256;
                config.train.checkpoint_every = 1000;
                GPU_STEPS
            }
        };
        config.train.steps = Some(steps.unwrap_or(default_steps));
        config.train.epochs = None;
        config.train.eval_every = 0;
    }
}

/// One loss of the zoo: a config with the preset applied.
#[derive(Debug, Clone)]
pub struct ZooEntry {
    /// The run directory's name: the config file's stem (`synth-arcface`).
    pub name: String,
    /// The loss as the table names it: the stem after its last `-` (`arcface`).
    pub loss: String,
    /// The config file.
    pub path: PathBuf,
    /// The config as trained (preset and overrides applied).
    pub config: TrainConfig,
}

impl ZooEntry {
    /// Reads `path` (its chain of `base` configs merged in, see [`crate::inherit`]), validates
    /// it and applies `preset` and `steps`. Errors name the file. The budget check
    /// ([`check_budget`]) compares these resolved configs.
    pub fn load(path: &Path, preset: ZooPreset, steps: Option<u64>) -> Result<Self, TrainError> {
        let in_file = |e: TrainError| match e {
            TrainError::Parse { .. } => e,
            other => TrainError::InConfig {
                path: path.display().to_string(),
                source: Box::new(other),
            },
        };
        let mut config = TrainConfig::from_file(path).map_err(in_file)?;
        preset.apply(&mut config, steps);
        config.validate_static().map_err(in_file)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        let loss = name.rsplit('-').next().unwrap_or(&name).to_string();
        Ok(ZooEntry {
            name,
            loss,
            path: path.to_path_buf(),
            config,
        })
    }

    /// The head's settings in a few words: its fields but `kind` in name order, the auxiliary
    /// losses, and the P x K sampler where used (e.g. `margin 0.2, mining semi_hard;
    /// P x K = 16 x 4`).
    pub fn settings(&self) -> String {
        let words = |v: Value| -> String {
            v.as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, v)| *k != "kind" && !v.is_null() && !v.is_object())
                        .map(|(k, v)| format!("{k} {}", v.to_string().trim_matches('"')))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        let head = &self.config.head;
        let mut parts = vec![words(serde_json::to_value(&head.table).unwrap_or_default())];
        if let Some(c) = head.center {
            parts.push(format!(
                "+ center loss: {}",
                words(serde_json::to_value(c).unwrap_or_default())
            ));
        }
        if let Some(c) = head.contrastive {
            parts.push(format!(
                "+ contrastive: {}",
                words(serde_json::to_value(c).unwrap_or_default())
            ));
        }
        let t = &self.config.train;
        if t.sampler == SamplerKind::Pk {
            let k = t.k.unwrap_or(2);
            parts.push(format!("P x K = {} x {k}", t.batch_size / k));
        }
        parts.retain(|p| !p.is_empty());
        parts.join("; ")
    }
}

fn matches(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            matches(&pattern[1..], name) || (!name.is_empty() && matches(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => matches(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => matches(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// Expands each of `patterns` into config files, sorted by name and without repeats: a
/// folder gives its `*.toml` files; a path whose file name holds `*` or `?` gives the files of
/// its folder that match; any other path must be an existing file. Errors name the pattern
/// that found nothing.
pub fn find_configs(patterns: &[String]) -> Result<Vec<PathBuf>, TrainError> {
    let mut out = Vec::new();
    for pattern in patterns {
        let p = Path::new(pattern);
        let (dir, wanted) = if p.is_dir() {
            (p.to_path_buf(), "*.toml".to_string())
        } else {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !name.contains(['*', '?']) {
                if !p.is_file() {
                    return Err(TrainError::Zoo(format!("{pattern}: no such config file")));
                }
                out.push(p.to_path_buf());
                continue;
            }
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            (dir, name)
        };
        let read = std::fs::read_dir(&dir).map_err(|e| TrainError::io(&dir, e))?;
        let mut found: Vec<PathBuf> = read
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|f| {
                f.is_file()
                    && f.file_name()
                        .is_some_and(|n| matches(wanted.as_bytes(), n.as_encoded_bytes()))
            })
            .collect();
        if found.is_empty() {
            return Err(TrainError::Zoo(format!(
                "{pattern}: no config file matches"
            )));
        }
        found.sort();
        out.extend(found);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    Ok(out)
}

/// What differs between the entries besides the head (and its auxiliary losses): one line
/// per entry and differing section, e.g. `synth-triplet: train (sampler pk, k 4)`, against
/// the first entry. Empty when the budget is the same everywhere.
pub fn check_budget(entries: &[ZooEntry]) -> Vec<String> {
    let flat = |c: &TrainConfig| -> serde_json::Map<String, Value> {
        let mut v = serde_json::to_value(c).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.remove("head");
            m.remove("output");
        }
        let mut out = serde_json::Map::new();
        for (section, table) in v.as_object().cloned().unwrap_or_default() {
            match table {
                Value::Object(fields) => {
                    for (k, v) in fields {
                        out.insert(format!("{section}.{k}"), v);
                    }
                }
                other => {
                    out.insert(section, other);
                }
            }
        }
        out
    };
    let Some(first) = entries.first() else {
        return Vec::new();
    };
    let reference = flat(&first.config);
    let mut lines = Vec::new();
    for e in &entries[1..] {
        let mine = flat(&e.config);
        let mut keys: Vec<&String> = reference.keys().chain(mine.keys()).collect();
        keys.sort();
        keys.dedup();
        let diffs: Vec<String> = keys
            .into_iter()
            .filter(|k| reference.get(*k) != mine.get(*k))
            .map(|k| {
                let show = |v: Option<&Value>| v.map_or("unset".into(), |v| v.to_string());
                format!(
                    "`{k}` {} (vs {})",
                    show(mine.get(k)),
                    show(reference.get(k))
                )
            })
            .collect();
        if !diffs.is_empty() {
            lines.push(format!(
                "{} differs from {}: {}",
                e.name,
                first.name,
                diffs.join(", ")
            ));
        }
    }
    lines
}

/// How [`run_zoo`] trains.
#[derive(Debug, Clone, Default)]
pub struct ZooOptions {
    /// Train every entry from scratch even where its run directory holds a finished run.
    pub fresh: bool,
    /// Print only errors (passed to each run).
    pub quiet: bool,
}

/// What became of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZooRunKind {
    /// Trained from scratch now.
    Trained,
    /// Continued from a checkpoint of an interrupted run (train time: this invocation only).
    Resumed,
    /// A finished run of the same config was found and its report read.
    Reused,
    /// Training stopped on a non-finite loss; the row says so and has no numbers.
    Diverged,
}

/// One trained (or reused) entry.
#[derive(Debug, Clone)]
pub struct ZooOutcome {
    /// The entry's name (its run directory under the zoo folder).
    pub name: String,
    /// The table's row.
    pub row: ZooRow,
    /// The untrained baseline of this run, where the run has one (not when resumed).
    pub baseline: Option<ZooRow>,
    /// How the row was obtained.
    pub kind: ZooRunKind,
    /// The run directory.
    pub run_dir: PathBuf,
}

fn row_from_eval(loss: &str, settings: &str, eval: &Value, seconds: Option<f64>) -> Option<ZooRow> {
    Some(ZooRow {
        loss: loss.to_string(),
        settings: settings.to_string(),
        accuracy_mean: eval.get("accuracy_mean")?.as_f64()?,
        accuracy_std: eval.get("accuracy_std")?.as_f64()?,
        tar_at_far_1e3: eval.get("tar_at_far")?.get("1e-3").and_then(Value::as_f64),
        eer: eval.get("eer")?.as_f64()?,
        train_seconds: seconds,
        baseline: seconds.is_none(),
        diverged: None,
    })
}

/// The untrained row's name in the table.
pub const BASELINE_NAME: &str = "untrained";

fn read_outcome(
    entry: &ZooEntry,
    run_dir: &Path,
    kind: ZooRunKind,
) -> Result<ZooOutcome, TrainError> {
    let path = run_dir.join("report.json");
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    let bad = || TrainError::Zoo(format!("{}: not a finished run's report", path.display()));
    let report: Value = serde_json::from_str(&text).map_err(|_| bad())?;
    let seconds = report
        .get("train_seconds")
        .and_then(Value::as_f64)
        .ok_or_else(bad)?;
    let row = row_from_eval(
        &entry.loss,
        &entry.settings(),
        report.get("verification").ok_or_else(bad)?,
        Some(seconds),
    )
    .ok_or_else(bad)?;
    let backbone = &entry.config.backbone;
    let baseline = report.get("untrained").and_then(|u| {
        row_from_eval(
            BASELINE_NAME,
            &format!("{} at initialisation", backbone.kind),
            u,
            None,
        )
    });
    Ok(ZooOutcome {
        name: entry.name.clone(),
        row,
        baseline,
        kind,
        run_dir: run_dir.to_path_buf(),
    })
}

/// The fingerprint of the config stored in `run_dir`, if it has a readable one.
fn stored_fingerprint(run_dir: &Path) -> Option<String> {
    TrainConfig::from_file(&run_dir.join("config.toml"))
        .ok()
        .map(|c| config_fingerprint(&c))
}

/// Trains every entry in `out/<entry name>`, one after the other, and calls `on_done` after
/// each. A run directory that holds a finished run of the same config (same
/// [`config_fingerprint`]) is reused unless `options.fresh`; one with checkpoints of the same
/// config is resumed; one that holds another config is an error (nothing is overwritten).
/// A run whose loss becomes non-finite is recorded as [`ZooRunKind::Diverged`] and the zoo
/// goes on; any other error stops it.
pub fn run_zoo<B: AutodiffBackend>(
    entries: &[ZooEntry],
    out: &Path,
    options: &ZooOptions,
    device: &B::Device,
    mut on_done: impl FnMut(&ZooOutcome),
) -> Result<Vec<ZooOutcome>, TrainError> {
    if entries.is_empty() {
        return Err(TrainError::Zoo("no configs to train".into()));
    }
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
    let mut outcomes = Vec::with_capacity(entries.len());
    for entry in entries {
        let run_dir = out.join(&entry.name);
        let wanted = config_fingerprint(&entry.config);
        let stored = stored_fingerprint(&run_dir);
        let same = stored.as_deref() == Some(wanted.as_str());
        if run_dir.join("config.toml").exists() && !same && !options.fresh {
            return Err(TrainError::Zoo(format!(
                "{} holds a run of another config (other steps or preset?): remove it or choose another --out",
                run_dir.display()
            )));
        }
        let outcome = if same && !options.fresh && run_dir.join("report.json").exists() {
            read_outcome(entry, &run_dir, ZooRunKind::Reused)?
        } else {
            let resume = same && !options.fresh && !list_checkpoints(&run_dir).is_empty();
            if options.fresh && run_dir.exists() {
                std::fs::remove_dir_all(&run_dir).map_err(|e| TrainError::io(&run_dir, e))?;
            }
            if !options.quiet {
                eprintln!(
                    "zoo: {} ({}) -> {}",
                    entry.loss,
                    entry.path.display(),
                    run_dir.display()
                );
            }
            // Reached with a folder of this config's unfinished run (or none): a new start
            // replaces what it left.
            let train_options = TrainOptions {
                resume,
                overwrite: !resume,
                quiet: options.quiet,
                ..TrainOptions::default()
            };
            match train::<B>(&entry.config, &run_dir, &train_options, device) {
                Ok(_) => {
                    let kind = if resume {
                        ZooRunKind::Resumed
                    } else {
                        ZooRunKind::Trained
                    };
                    read_outcome(entry, &run_dir, kind)?
                }
                Err(TrainError::NonFinite { step, .. }) => ZooOutcome {
                    name: entry.name.clone(),
                    row: ZooRow {
                        loss: entry.loss.clone(),
                        settings: entry.settings(),
                        accuracy_mean: f64::NAN,
                        accuracy_std: f64::NAN,
                        tar_at_far_1e3: None,
                        eer: f64::NAN,
                        train_seconds: None,
                        baseline: false,
                        diverged: Some(step),
                    },
                    baseline: None,
                    kind: ZooRunKind::Diverged,
                    run_dir: run_dir.clone(),
                },
                Err(e) => return Err(e),
            }
        };
        on_done(&outcome);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The table's rows: the first untrained baseline found (every entry starts from the same
/// backbone initialisation when backbone and seed agree), then one row per outcome.
pub fn zoo_rows(outcomes: &[ZooOutcome]) -> Vec<ZooRow> {
    outcomes
        .iter()
        .find_map(|o| o.baseline.clone())
        .into_iter()
        .chain(outcomes.iter().map(|o| o.row.clone()))
        .collect()
}

/// The preamble of `zoo.md`: the command that ran (`command`, without the program name),
/// the backend, the budget every loss had ([`describe_budget`]), and what this invocation
/// did with each run (trained, resumed, reused, diverged) in `wall_seconds`.
pub fn zoo_preamble(
    command: &str,
    backend: &str,
    budget: &str,
    outcomes: &[ZooOutcome],
    wall_seconds: f64,
) -> String {
    let count = |k: ZooRunKind| outcomes.iter().filter(|o| o.kind == k).count();
    format!(
        "# The loss zoo\n\n\
         `visage {command}` on the {backend} backend.\n\n\
         Every loss: {budget}\n\n\
         Train time is the wall time of the training steps only (no evaluation or \
         checkpointing). This invocation: {} trained, {} resumed, {} reused finished runs, \
         {} diverged; {wall_seconds:.0} s of wall time.",
        count(ZooRunKind::Trained),
        count(ZooRunKind::Resumed),
        count(ZooRunKind::Reused),
        count(ZooRunKind::Diverged),
    )
}

/// Writes `out/zoo.md` (`preamble`, a blank line, the table, and `notes` as a list when
/// there are any), `out/zoo.png` and `out/zoo.svg`, each through a temporary file.
pub fn write_zoo(
    out: &Path,
    rows: &[ZooRow],
    preamble: &str,
    notes: &[String],
    chart_title: &str,
) -> Result<(), TrainError> {
    let mut text = format!(
        "{}\n\n{}",
        preamble.trim_end(),
        visage_report::zoo_markdown(rows)
    );
    if !notes.is_empty() {
        text.push('\n');
        for n in notes {
            text.push_str(&format!("- {n}\n"));
        }
    }
    let md = out.join("zoo.md");
    visage_eval::io::write_atomic(&md, text.as_bytes())?;
    for name in ["zoo.png", "zoo.svg"] {
        visage_report::plot_zoo(out.join(name), rows, chart_title)?;
    }
    Ok(())
}

/// One sentence on what every entry shares, from the first entry's config (data, held-out
/// set, backbone, batch, steps, optimiser, seed).
pub fn describe_budget(entries: &[ZooEntry]) -> String {
    let Some(c) = entries.first().map(|e| &e.config) else {
        return String::new();
    };
    let data = match c.data.kind {
        DataKind::Synthetic => format!(
            "{} synthetic identities x {} images at {s}x{s}",
            c.data.identities.unwrap_or(0),
            c.data.images_per_identity.unwrap_or(0),
            s = c.data.image_size.unwrap_or(112)
        ),
        other => format!("{other:?} data"),
    };
    let held_out = match &c.eval {
        Some(e) if e.kind == EvalKind::Synthetic => {
            let per_fold = e.pairs_per_fold.unwrap_or(30);
            format!(
                "held out: {} other identities x {} images, 10 folds of {per_fold} genuine + {per_fold} impostor pairs",
                e.identities.unwrap_or(100),
                e.images_per_identity.unwrap_or(10)
            )
        }
        Some(e) => format!("held out: {:?} pairs", e.kind),
        None => "no held-out set".into(),
    };
    let b = &c.backbone;
    let name = |v: Value| v.as_str().unwrap_or("?").to_string();
    format!(
        "{data}; {held_out}; backbone {} ({}-d); batch {}; {} steps of {} (lr {}, {} schedule); seed {}.",
        b.kind,
        b.embedding_dim.map_or("default".into(), |d| d.to_string()),
        c.train.batch_size,
        c.train.steps.unwrap_or(0),
        name(serde_json::to_value(c.optim.kind).unwrap_or_default()),
        c.optim.lr(),
        name(serde_json::to_value(c.schedule.kind).unwrap_or_default()),
        c.train.seed,
    )
}

/// A zoo ready to run: the entries loaded from config patterns with the preset applied, what
/// differs between them besides the head, and the budget they share. [`ZooPlan::run`] trains
/// and writes the report: the whole of `visage zoo` but the flags and the printing.
#[derive(Debug, Clone)]
pub struct ZooPlan {
    /// The entries, one per config file.
    pub entries: Vec<ZooEntry>,
    /// What differs between the entries besides the head ([`check_budget`]).
    pub differences: Vec<String>,
    /// One sentence on the shared budget ([`describe_budget`]).
    pub budget: String,
    /// Training steps of each entry (the first entry's).
    pub steps: u64,
    /// The preset applied.
    pub preset: ZooPreset,
    /// When the plan was made: the zoo's wall time counts from here.
    pub started: std::time::Instant,
}

/// What [`ZooPlan::run`] did and wrote.
#[derive(Debug, Clone)]
pub struct ZooReport {
    /// Each entry's outcome, in order.
    pub outcomes: Vec<ZooOutcome>,
    /// `zoo.md`'s path (its text is [`ZooReport::markdown`]).
    pub markdown_path: PathBuf,
    /// `zoo.png`'s path (`zoo.svg` beside it).
    pub chart_path: PathBuf,
    /// Seconds from [`ZooPlan::prepare`] to the report written.
    pub wall_seconds: f64,
}

impl ZooReport {
    /// The text of `zoo.md` as written.
    pub fn markdown(&self) -> Result<String, TrainError> {
        std::fs::read_to_string(&self.markdown_path)
            .map_err(|e| TrainError::io(&self.markdown_path, e))
    }
}

impl ZooPlan {
    /// Expands `patterns` ([`find_configs`]), loads each config with `preset` and `steps`
    /// applied ([`ZooEntry::load`]) and lists what differs between them.
    pub fn prepare(
        patterns: &[String],
        preset: ZooPreset,
        steps: Option<u64>,
    ) -> Result<Self, TrainError> {
        let started = std::time::Instant::now();
        let paths = find_configs(patterns)?;
        let entries = paths
            .iter()
            .map(|p| ZooEntry::load(p, preset, steps))
            .collect::<Result<Vec<_>, _>>()?;
        if entries.is_empty() {
            return Err(TrainError::Zoo("no configs to train".into()));
        }
        Ok(ZooPlan {
            differences: check_budget(&entries),
            budget: describe_budget(&entries),
            steps: entries[0].config.train.steps.unwrap_or(0),
            entries,
            preset,
            started,
        })
    }

    /// Trains every entry in `out/<entry name>` ([`run_zoo`], `on_done(i, n, outcome)` after
    /// each, `i` from 1), then writes `out/zoo.md` (preamble naming `command` and `backend`,
    /// the table, the differences as notes), `out/zoo.png` and `out/zoo.svg` ([`write_zoo`]).
    pub fn run<B: AutodiffBackend>(
        self,
        out: &Path,
        options: &ZooOptions,
        command: &str,
        backend: &str,
        device: &B::Device,
        mut on_done: impl FnMut(usize, usize, &ZooOutcome),
    ) -> Result<ZooReport, TrainError> {
        let n = self.entries.len();
        let mut i = 0;
        let outcomes = run_zoo::<B>(&self.entries, out, options, device, |o| {
            i += 1;
            on_done(i, n, o);
        })?;
        let wall_seconds = self.started.elapsed().as_secs_f64();
        let preamble = zoo_preamble(command, backend, &self.budget, &outcomes, wall_seconds);
        let title = format!(
            "Loss zoo: held-out verification ({} steps, {backend})",
            self.steps
        );
        write_zoo(
            out,
            &zoo_rows(&outcomes),
            &preamble,
            &self.differences,
            &title,
        )?;
        Ok(ZooReport {
            outcomes,
            markdown_path: out.join("zoo.md"),
            chart_path: out.join("zoo.png"),
            wall_seconds,
        })
    }
}

impl ZooOutcome {
    /// One line on this outcome, the `i`-th of `n`: accuracy, TAR@FAR=1e-3, EER and train
    /// time, or the step where it diverged (what `visage zoo` prints after each loss).
    pub fn progress_line(&self, i: usize, n: usize) -> String {
        let r = &self.row;
        if let Some(step) = r.diverged {
            return format!(
                "zoo: [{i}/{n}] {}: diverged (non-finite loss at step {step})",
                r.loss
            );
        }
        let how = match self.kind {
            ZooRunKind::Trained | ZooRunKind::Diverged => "",
            ZooRunKind::Resumed => " (resumed; time of the resumed part)",
            ZooRunKind::Reused => " (finished run reused)",
        };
        let tar = r
            .tar_at_far_1e3
            .map_or("undefined".into(), |v| format!("{:.2} %", 100.0 * v));
        format!(
            "zoo: [{i}/{n}] {}: accuracy {:.2} % +- {:.2}, TAR@FAR=1e-3 {tar}, EER {:.2} %, {:.0} s{how}",
            r.loss,
            100.0 * r.accuracy_mean,
            100.0 * r.accuracy_std,
            100.0 * r.eer,
            r.train_seconds.unwrap_or(0.0),
        )
    }
}
