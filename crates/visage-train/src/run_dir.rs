//! The run directory: who may write in it, and what a resume keeps of it.
//!
//! A new run only starts in an empty (or missing) folder, unless the caller asks to overwrite:
//! then the files a run writes ([`RUN_FILES`]) are removed first, so nothing of the old run is
//! mixed into the new one (its checkpoints would otherwise sort after the new ones and be
//! taken for them), and anything else in the folder is left alone. A resume keeps the folder
//! and cuts `metrics.jsonl` back to the step it resumes from.

use std::path::Path;

use crate::durable::write_file;
use crate::TrainError;

/// What a run writes in its directory (and what `overwrite` removes).
pub const RUN_FILES: [&str; 7] = [
    "config.toml",
    "metrics.jsonl",
    "eval-set.json",
    "report.json",
    "backbone.bin",
    "backbone.safetensors",
    "checkpoints",
];

/// Writes the run's `config.toml` (the config as resolved, bases merged in), through a
/// temporary file renamed into place. A config that cannot be written as TOML is an error
/// naming the file, not an empty file.
pub fn write_run_config(run_dir: &Path, config: &crate::TrainConfig) -> Result<(), TrainError> {
    let path = run_dir.join("config.toml");
    let text = toml::to_string_pretty(config).map_err(|e| {
        TrainError::io(
            &path,
            std::io::Error::other(format!("the config cannot be written as TOML: {e}")),
        )
    })?;
    write_file(&path, text.as_bytes())
}

/// Makes `run_dir` ready for a new run: creates it, and refuses one that holds anything
/// unless `overwrite`, in which case the files of [`RUN_FILES`] (and temporary files of an
/// interrupted write) are removed and everything else is kept.
pub fn claim_run_dir(run_dir: &Path, overwrite: bool) -> Result<(), TrainError> {
    std::fs::create_dir_all(run_dir).map_err(|e| TrainError::io(run_dir, e))?;
    let mut names: Vec<String> = std::fs::read_dir(run_dir)
        .map_err(|e| TrainError::io(run_dir, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    if !overwrite {
        let holds_run = names.iter().any(|n| RUN_FILES.contains(&n.as_str()));
        let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
        return Err(TrainError::RunExists {
            path: run_dir.display().to_string(),
            found: format!(
                "{}{}{}",
                if holds_run { "a run: " } else { "" },
                shown.join(", "),
                if names.len() > shown.len() {
                    ", ..."
                } else {
                    ""
                }
            ),
        });
    }
    for name in &names {
        let ours = RUN_FILES.contains(&name.as_str()) || is_temporary(name);
        if !ours {
            continue;
        }
        let path = run_dir.join(name);
        let removed = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|e| TrainError::io(&path, e))?;
    }
    Ok(())
}

/// Whether `name` is a temporary file of an interrupted write in a run directory: the
/// trainer's `.NAME.tmp-PID`, or the safetensors export's `NAME.safetensors.tmp`.
fn is_temporary(name: &str) -> bool {
    (name.starts_with('.') && name.contains(".tmp-")) || name.ends_with(".safetensors.tmp")
}

/// Removes the temporary files an interrupted write left in `run_dir` (not in its
/// checkpoints: see [`crate::checkpoint::remove_leftovers`]). Returns what it removed.
pub fn remove_temporaries(run_dir: &Path) -> Result<Vec<std::path::PathBuf>, TrainError> {
    let mut removed = Vec::new();
    for e in std::fs::read_dir(run_dir)
        .map_err(|e| TrainError::io(run_dir, e))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if is_temporary(&name) && e.path().is_file() {
            std::fs::remove_file(e.path()).map_err(|err| TrainError::io(&e.path(), err))?;
            removed.push(e.path());
        }
    }
    Ok(removed)
}

/// Cuts `metrics.jsonl` back to what a run resumed after `step` steps had written: the lines
/// of steps before `step`, and those of `step` itself except the final evaluation (which the
/// resumed run writes again). A half-written last line is dropped too. Returns how many lines
/// were dropped; the file is rewritten (atomically) only when there is something to drop.
pub fn truncate_metrics(path: &Path, step: u64) -> Result<usize, TrainError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(TrainError::io(path, e)),
    };
    let mut kept = Vec::with_capacity(text.len());
    let mut dropped = 0;
    for line in text.split_inclusive(|&b| b == b'\n') {
        let keep = line.ends_with(b"\n")
            && serde_json::from_slice::<serde_json::Value>(line)
                .ok()
                .and_then(|v| {
                    let s = v.get("step")?.as_u64()?;
                    let is_final = v.get("final").and_then(|f| f.as_bool()) == Some(true);
                    Some(s < step || (s == step && !is_final))
                })
                .unwrap_or(false);
        if keep {
            kept.extend_from_slice(line);
        } else {
            dropped += 1;
        }
    }
    if dropped > 0 {
        write_file(path, &kept)?;
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("visage-rundir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_folder_with_anything_in_it_is_refused_without_overwrite() {
        let d = scratch("claim");
        claim_run_dir(&d.join("new"), false).unwrap();
        claim_run_dir(&d.join("new"), false).unwrap(); // still empty
        std::fs::write(d.join("new/config.toml"), "x").unwrap();
        let err = claim_run_dir(&d.join("new"), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("--resume"),
            "{err}"
        );
        std::fs::write(d.join("notes.txt"), "mine").unwrap();
        let err = claim_run_dir(&d, false).unwrap_err().to_string();
        assert!(err.contains("notes.txt"), "{err}");
    }

    #[test]
    fn overwrite_removes_the_run_files_and_keeps_the_rest() {
        let d = scratch("overwrite");
        std::fs::create_dir_all(d.join("checkpoints/step-00000004")).unwrap();
        for f in [
            "config.toml",
            "metrics.jsonl",
            "report.json",
            "notes.txt",
            ".report.json.tmp-1",
            "backbone.safetensors.tmp",
        ] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        claim_run_dir(&d, true).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec!["notes.txt".to_string()]);
    }

    #[test]
    fn metrics_are_cut_back_to_the_resumed_step() {
        let d = scratch("metrics");
        let p = d.join("metrics.jsonl");
        let lines = [
            r#"{"step":0,"eval":{},"untrained":true}"#,
            r#"{"step":1,"loss":2.0}"#,
            r#"{"step":2,"loss":1.5}"#,
            r#"{"step":2,"eval":{}}"#,
            r#"{"step":3,"loss":1.0}"#,
        ];
        std::fs::write(&p, format!("{}\n{{\"step\":4,\"lo", lines.join("\n"))).unwrap();
        assert_eq!(truncate_metrics(&p, 2).unwrap(), 2);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("{}\n", lines[..4].join("\n"))
        );
        assert_eq!(truncate_metrics(&p, 2).unwrap(), 0);
        // The final evaluation of the resumed step goes: it is written again.
        std::fs::write(
            &p,
            "{\"step\":3,\"loss\":1.0}\n{\"step\":3,\"eval\":{},\"final\":true}\n",
        )
        .unwrap();
        assert_eq!(truncate_metrics(&p, 3).unwrap(), 1);
        assert_eq!(truncate_metrics(&d.join("missing.jsonl"), 3).unwrap(), 0);
    }
}

/// Opens `run_dir` for a run of `config` and says whether it resumes from a checkpoint.
///
/// With `resume`: the folder must hold a run (`config.toml`); what an interrupted write left
/// (temporary checkpoint folders and files) is removed and named through `say`; a run killed
/// before its first checkpoint starts again from step 0 (its stale `metrics.jsonl` removed),
/// and the result is `false`. Without: [`claim_run_dir`] (refusing a folder that holds
/// another run unless `overwrite`), then the config is written first, so that a run killed at
/// any later point can be resumed.
pub fn open_run_dir(
    run_dir: &Path,
    config: &crate::TrainConfig,
    resume: bool,
    overwrite: bool,
    say: &dyn Fn(String),
) -> Result<bool, TrainError> {
    if !resume {
        claim_run_dir(run_dir, overwrite)?;
        write_run_config(run_dir, config)?;
        return Ok(false);
    }
    if !run_dir.join("config.toml").is_file() {
        return Err(TrainError::Checkpoint {
            path: run_dir.display().to_string(),
            message: "no run to resume here (no config.toml)".into(),
        });
    }
    let mut leftovers = crate::checkpoint::remove_leftovers(run_dir)?;
    leftovers.extend(remove_temporaries(run_dir)?);
    for leftover in leftovers {
        say(format!(
            "removed {} (left by an interrupted write)",
            leftover.display()
        ));
    }
    if !crate::checkpoint::list_checkpoints(run_dir).is_empty() {
        return Ok(true);
    }
    say(format!(
        "{}: no checkpoint yet; starting from step 0",
        run_dir.display()
    ));
    let stale = run_dir.join("metrics.jsonl");
    if stale.exists() {
        std::fs::remove_file(&stale).map_err(|e| TrainError::io(&stale, e))?;
    }
    Ok(false)
}

/// A run to start or to continue: its config, its directory, and whether it resumes (what
/// `visage train --config` / `--resume` resolve to before [`crate::train`]).
#[derive(Debug, Clone)]
pub struct RunStart {
    /// The training config.
    pub config: crate::TrainConfig,
    /// The run directory.
    pub run_dir: std::path::PathBuf,
    /// Continue from the run's last checkpoint.
    pub resume: bool,
}

impl RunStart {
    /// A new run of the config file `config_path`, in `out`, else the config's
    /// `[output] dir`, else `runs/<config name>` ([`crate::TrainConfig::run_dir`]).
    pub fn new_run(
        config_path: &Path,
        out: Option<std::path::PathBuf>,
    ) -> Result<Self, TrainError> {
        let config = crate::TrainConfig::from_file(config_path)?;
        let run_dir = out.unwrap_or_else(|| config.run_dir(config_path));
        Ok(RunStart {
            config,
            run_dir,
            resume: false,
        })
    }

    /// The run in `dir`, continued: its own `config.toml`.
    pub fn resume(dir: &Path) -> Result<Self, TrainError> {
        Ok(RunStart {
            config: crate::TrainConfig::from_file(&dir.join("config.toml"))?,
            run_dir: dir.to_path_buf(),
            resume: true,
        })
    }
}
