//! `visage train` killed with SIGKILL at random moments (during steps, evaluations and
//! checkpoint writes alike), then resumed with `--resume` (or started again with `--overwrite`
//! when it died before its config was written): the finished run's metrics equal the
//! uninterrupted run's step by step, with one whole line per step and no temporary left behind.
//! The moments are drawn from a seed printed by the test (`VISAGE_KILL_SEED` replays one).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-kill-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 6 identities x 4 images of 28x28, LeNets++, a checkpoint every step, an evaluation every 4.
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("kill.toml");
    std::fs::write(
        &path,
        "[data]\nkind = \"synthetic\"\nidentities = 6\nimages_per_identity = 4\nimage_size = 28\n\
         difficulty = 0.3\nflip = 0.0\n\n[eval]\nkind = \"synthetic\"\nidentities = 10\n\
         images_per_identity = 4\npairs_per_fold = 1\nflip = false\n\n[backbone]\nkind = \"lenet_pp\"\n\
         in_channels = 3\nembedding_dim = 16\n\n[head]\nkind = \"softmax\"\n\n[optim]\nlr = 0.02\n\n\
         [train]\nsteps = 12\nbatch_size = 12\nlog_every = 1\ncheckpoint_every = 1\n\
         keep_checkpoints = 2\neval_every = 4\n",
    )
    .unwrap();
    path
}

fn visage(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_visage"));
    c.arg("train")
        .args(["--backend", "flex", "--quiet"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn finish(args: &[&str]) {
    let o = visage(args).output().unwrap();
    assert!(
        o.status.success(),
        "visage train {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// (step, loss as f32) of every loss line, checking each line is whole JSON.
fn losses(run: &Path) -> Vec<(u64, f32)> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(text.ends_with('\n'), "half line in {}", run.display());
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| Some((v["step"].as_u64()?, v.get("loss")?.as_f64()? as f32)))
        .collect()
}

fn leftovers(run: &Path) -> Vec<String> {
    [run.to_path_buf(), run.join("checkpoints")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp") || n.contains(".old"))
        .collect()
}

#[test]
fn killed_at_random_moments_and_resumed_equals_the_uninterrupted_run() {
    let dir = tmp("runs");
    let cfg = config(&dir);
    let cfg = cfg.to_str().unwrap();
    let reference = dir.join("reference");
    let started = Instant::now();
    finish(&["--config", cfg, "--out", reference.to_str().unwrap()]);
    let whole = started.elapsed();
    let expected = losses(&reference);
    assert_eq!(expected.len(), 12);

    let seed: u64 = std::env::var("VISAGE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("VISAGE_KILL_SEED={seed}");
    let mut state = seed | 1;
    let mut next = || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut outcomes = Vec::new();
    for round in 0..4 {
        let run = dir.join(format!("killed-{round}"));
        let run_s = run.to_str().unwrap();
        // Up to three kills in a row, each at a random moment of the whole run's duration.
        let mut kills = 0;
        for _ in 0..3 {
            let resumable = run.join("config.toml").exists();
            let args: Vec<&str> = if resumable {
                vec!["--resume", run_s]
            } else {
                vec!["--config", cfg, "--out", run_s, "--overwrite"]
            };
            let mut child = visage(&args).spawn().unwrap();
            let wait = Duration::from_micros(next() % (whole.as_micros() as u64).max(1));
            std::thread::sleep(wait);
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                kills += 1;
            }
            let status = child.wait().unwrap();
            outcomes.push(format!("round {round}: after {wait:?}: {status}"));
        }
        if run.join("config.toml").exists() {
            finish(&["--resume", run_s]);
        } else {
            finish(&["--config", cfg, "--out", run_s, "--overwrite"]);
        }
        assert_eq!(
            losses(&run),
            expected,
            "round {round} ({kills} kills, seed {seed}): {outcomes:?}"
        );
        assert!(leftovers(&run).is_empty(), "{:?}", leftovers(&run));
        assert!(run.join("report.json").exists() && run.join("backbone.safetensors").exists());
    }
    println!("{}", outcomes.join("\n"));
}
