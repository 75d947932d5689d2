//! Checkpoints: `RUN/checkpoints/step-00000200/` holds `model.bin` (backbone, head, centres),
//! `optim-backbone.bin`, `optim-head.bin`, `state.json` (step, head state, baseline and best
//! scores, training time) and `manifest.json`, the size and SHA-256 of every other file.
//! A data-parallel run with a sharded head writes the head by shard instead of `model.bin` and
//! `optim-head.bin`: `backbone.bin`, and `shard-R.bin` with `optim-shard-R.bin` for every rank
//! R, each shard's class range in `state.json` ([`ShardLayout`]).
//!
//! A checkpoint is written into a temporary folder (`step-00000200.tmp-PID`), flushed, and
//! renamed into place, so a crash or a full disk never leaves a half-written one and never
//! touches an older good one; only after that are checkpoints beyond the last K (and the best)
//! removed. Temporary folders left by a kill are removed when a run starts or resumes.
//!
//! Reading one back verifies it: every file of the manifest present with its size and hash,
//! `state.json` of this config, with the step its folder names and not beyond the run's end.
//! [`newest_intact`] skips (and names) checkpoints that fail and takes the newest good one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use visage_heads::HeadState;

use crate::durable::{sha256_hex, write_new};
use crate::TrainError;

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";

/// The files every checkpoint holds besides the manifest.
pub const CHECKPOINT_FILES: [&str; 4] = [
    "model.bin",
    "optim-backbone.bin",
    "optim-head.bin",
    "state.json",
];

/// Largest `state.json` or `manifest.json` read back (bytes); both are a few hundred bytes.
const MAX_SMALL_FILE: u64 = 1 << 20;

/// Everything besides tensors that a resumed run needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointState {
    /// Steps done (the next step to run).
    pub step: u64,
    /// The head's state (annealing iteration, AdaCos scale).
    pub head_state: HeadState,
    /// A fingerprint of the config the run was started with.
    pub config_fingerprint: String,
    /// Held-out accuracy of the untrained model, if evaluated.
    pub baseline_accuracy: Option<f64>,
    /// Best held-out accuracy so far and its step.
    pub best: Option<(u64, f64)>,
    /// Seconds spent in training steps up to this checkpoint, over every invocation of the
    /// run (0 in checkpoints written before this field existed).
    #[serde(default)]
    pub train_seconds: f64,
    /// How the head was sharded, for checkpoints of a data-parallel run with a sharded head
    /// (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<ShardLayout>,
}

/// The class ranges of a sharded head's checkpoint: shard `R` (in `shard-R.bin`, its
/// optimiser state in `optim-shard-R.bin`) holds classes `ranges[R]` (start inclusive, end
/// exclusive), ranges in rank order covering `0..classes`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardLayout {
    /// Number of classes over all shards.
    pub classes: usize,
    /// `[start, end)` of every shard, in rank order.
    pub ranges: Vec<[usize; 2]>,
}

impl ShardLayout {
    /// The layout of `world` shards over `classes` classes (`visage_heads::sharded::shard_range`).
    pub fn new(classes: usize, world: usize) -> Self {
        ShardLayout {
            classes,
            ranges: (0..world)
                .map(|r| {
                    let range = visage_heads::sharded::shard_range(classes, world, r);
                    [range.start, range.end]
                })
                .collect(),
        }
    }

    /// Number of shards.
    pub fn world(&self) -> usize {
        self.ranges.len()
    }

    /// The file of shard `rank`'s weights.
    pub fn shard_file(rank: usize) -> String {
        format!("shard-{rank}.bin")
    }

    /// The file of shard `rank`'s optimiser state.
    pub fn optim_file(rank: usize) -> String {
        format!("optim-shard-{rank}.bin")
    }

    /// The files a checkpoint of this layout holds besides the manifest.
    pub fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = ["backbone.bin", "optim-backbone.bin", "state.json"]
            .map(String::from)
            .to_vec();
        for r in 0..self.world() {
            files.push(Self::shard_file(r));
            files.push(Self::optim_file(r));
        }
        files
    }
}

/// One file of a checkpoint's manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestEntry {
    /// File name inside the checkpoint folder.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
}

/// A checkpoint's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Every file of the checkpoint but the manifest itself.
    pub files: Vec<ManifestEntry>,
}

/// A checkpoint read back and verified.
#[derive(Debug, Clone)]
pub struct VerifiedCheckpoint {
    /// Its folder.
    pub dir: PathBuf,
    /// Its state.
    pub state: CheckpointState,
}

/// The folder of the checkpoint after `step` steps.
pub fn checkpoint_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join("checkpoints").join(format!("step-{step:08}"))
}

/// The checkpoint folders of a run (named `step-N`; complete ones only ever appear under that
/// name, by rename), oldest first. Not verified: see [`verify_checkpoint`].
pub fn list_checkpoints(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(run_dir.join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let digits = name.strip_prefix("step-")?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let step = digits.parse::<u64>().ok()?;
            e.path().is_dir().then(|| (step, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Removes what a kill or a failed write left in `RUN/checkpoints`: temporary folders
/// (`step-N.tmp-PID`) and set-aside old copies (`step-N.old-PID`). Returns what it removed.
pub fn remove_leftovers(run_dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let mut removed = Vec::new();
    for e in std::fs::read_dir(run_dir.join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().to_string();
        let leftover =
            name.starts_with("step-") && (name.contains(".tmp") || name.contains(".old"));
        if leftover {
            let p = e.path();
            let result = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            result.map_err(|err| TrainError::io(&p, err))?;
            removed.push(p);
        }
    }
    Ok(removed)
}

/// Reads a small regular file whole, refusing anything larger than [`MAX_SMALL_FILE`].
fn read_small(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", file_name(path)))?;
    if !meta.is_file() || meta.len() > MAX_SMALL_FILE {
        return Err(format!(
            "{} is not a regular file of at most {MAX_SMALL_FILE} bytes",
            file_name(path)
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", file_name(path)))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Verifies the checkpoint in `dir`: the manifest lists every checkpoint file with the size
/// and SHA-256 it has now; `state.json` parses, belongs to a run of `fingerprint`, names the
/// step of its folder, and (with `total`) is not beyond the run's last step.
pub fn verify_checkpoint(
    dir: &Path,
    fingerprint: &str,
    total: Option<u64>,
) -> Result<VerifiedCheckpoint, TrainError> {
    let bad = |message: String| TrainError::Checkpoint {
        path: dir.display().to_string(),
        message,
    };
    let manifest_bytes = read_small(&dir.join(MANIFEST)).map_err(|m| {
        bad(format!(
            "{m} (a checkpoint without a manifest was interrupted or written by an older visage)"
        ))
    })?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| bad(format!("{MANIFEST} is corrupt: {e}")))?;
    for entry in &manifest.files {
        if entry.name.contains(['/', '\\']) || entry.name == ".." {
            return Err(bad(format!(
                "{MANIFEST} names {:?}, not a file of the checkpoint",
                entry.name
            )));
        }
        let path = dir.join(&entry.name);
        let meta = std::fs::metadata(&path)
            .map_err(|e| bad(format!("{} is missing or unreadable: {e}", entry.name)))?;
        if !meta.is_file() || meta.len() != entry.bytes {
            return Err(bad(format!(
                "{} has {} bytes; the manifest says {}",
                entry.name,
                meta.len(),
                entry.bytes
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| bad(format!("{}: {e}", entry.name)))?;
        if sha256_hex(&bytes) != entry.sha256 {
            return Err(bad(format!(
                "{} does not match its SHA-256 in the manifest (changed or corrupted since it was written)",
                entry.name
            )));
        }
    }
    let text = read_small(&dir.join("state.json")).map_err(bad)?;
    let state: CheckpointState =
        serde_json::from_slice(&text).map_err(|e| bad(format!("state.json is corrupt: {e}")))?;
    let required: Vec<String> = match &state.shards {
        None => CHECKPOINT_FILES.map(String::from).to_vec(),
        Some(layout) => {
            let expected = ShardLayout::new(layout.classes, layout.world());
            if layout.world() == 0 || *layout != expected {
                return Err(bad(format!(
                    "state.json: shard ranges {:?} are not the split of {} classes over {} shards {:?}",
                    layout.ranges,
                    layout.classes,
                    layout.world(),
                    expected.ranges
                )));
            }
            layout.files()
        }
    };
    for name in &required {
        if !manifest.files.iter().any(|f| &f.name == name) {
            return Err(bad(format!("{MANIFEST} does not list {name}")));
        }
    }
    if state.config_fingerprint != fingerprint {
        return Err(bad("it was written by a run with a different config (data, backbone, head, optim, schedule or train)".into()));
    }
    if dir.file_name() != checkpoint_dir(Path::new(""), state.step).file_name() {
        return Err(bad(format!(
            "state.json says step {}, but the folder is {}",
            state.step,
            file_name(dir)
        )));
    }
    if let Some(total) = total {
        if state.step > total {
            return Err(bad(format!(
                "state.json says step {}, beyond the run's last step {total}",
                state.step
            )));
        }
    }
    if !state.train_seconds.is_finite() || state.train_seconds < 0.0 {
        return Err(bad(format!(
            "state.json: train_seconds {} is not a time",
            state.train_seconds
        )));
    }
    Ok(VerifiedCheckpoint {
        dir: dir.to_path_buf(),
        state,
    })
}

/// The newest checkpoint of the run that passes [`verify_checkpoint`]. Every newer one that
/// fails is passed to `skipped` (with the reason) before an older one is tried; errors when
/// none is intact, naming each failure.
pub fn newest_intact(
    run_dir: &Path,
    fingerprint: &str,
    total: Option<u64>,
    mut skipped: impl FnMut(&TrainError),
) -> Result<VerifiedCheckpoint, TrainError> {
    let mut failures = Vec::new();
    for (_, dir) in list_checkpoints(run_dir).into_iter().rev() {
        match verify_checkpoint(&dir, fingerprint, total) {
            Ok(found) => return Ok(found),
            Err(e) => {
                skipped(&e);
                failures.push(e.to_string());
            }
        }
    }
    Err(TrainError::Checkpoint {
        path: run_dir.join("checkpoints").display().to_string(),
        message: if failures.is_empty() {
            "no complete checkpoint to resume from".into()
        } else {
            format!("no intact checkpoint: {}", failures.join("; "))
        },
    })
}

/// Writes a checkpoint of `state` holding `files` (name, content; `model.bin`,
/// `optim-backbone.bin`, `optim-head.bin`, or the files of its [`ShardLayout`]), plus
/// `state.json` and the manifest, atomically.
/// A checkpoint of the same step that exists already is replaced only after the new one is
/// complete. On failure nothing but the temporary folder was touched, and it is removed.
pub fn write_checkpoint<N: AsRef<str>, D: AsRef<[u8]>>(
    run_dir: &Path,
    state: &CheckpointState,
    files: &[(N, D)],
) -> Result<PathBuf, TrainError> {
    let final_dir = checkpoint_dir(run_dir, state.step);
    let tmp = final_dir.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
        let state_json = serde_json::to_vec_pretty(state).expect("state serialises");
        let mut entries = Vec::new();
        for (name, bytes) in files
            .iter()
            .map(|(n, d)| (n.as_ref(), d.as_ref()))
            .chain([("state.json", state_json.as_slice())])
        {
            write_new(&tmp.join(name), bytes)?;
            entries.push(ManifestEntry {
                name: name.to_string(),
                bytes: bytes.len() as u64,
                sha256: sha256_hex(bytes),
            });
        }
        let manifest =
            serde_json::to_vec_pretty(&Manifest { files: entries }).expect("manifest serialises");
        write_new(&tmp.join(MANIFEST), &manifest)?;
        if final_dir.exists() {
            let old = final_dir.with_extension(format!("old-{}", std::process::id()));
            std::fs::rename(&final_dir, &old).map_err(|e| TrainError::io(&final_dir, e))?;
            std::fs::rename(&tmp, &final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&tmp, &final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
        }
        Ok(final_dir.clone())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Removes all but the last `keep` checkpoints, never the best one.
pub fn prune(run_dir: &Path, keep: usize, best_step: Option<u64>) {
    let all = list_checkpoints(run_dir);
    let cut = all.len().saturating_sub(keep.max(1));
    for (step, dir) in all.into_iter().take(cut) {
        if Some(step) != best_step {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
