//! Every writer of the binary under a disk that fills up: the command runs with a file-size
//! limit (`ulimit -f`, SIGXFSZ ignored, so a write past the limit fails with EFBIG as on a full
//! disk) at several sizes. Each time it must fail with an error (not a panic), leave the output
//! of an earlier successful run byte for byte, leave no temporary file behind, and a rerun
//! without the limit must succeed. Writers: `data synth` (image folder), `data pack`
//! (RecordIO), `align` (crops), `head` (safetensors), `train` (run folder).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-fault-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn visage(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .output()
        .unwrap()
}

/// `visage ARGS` with every file it writes limited to `kib` KiB.
fn limited(kib: u64, args: &[String]) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .output()
        .unwrap()
}

/// Every file under `dir` with its content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn temporaries(dir: &Path) -> Vec<PathBuf> {
    snapshot(dir)
        .into_keys()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.contains(".tmp") || n.contains("partial")
        })
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Runs `args` once unlimited (the earlier output), then at each limit with `again` (the same
/// command, made to replace that output where it refuses to), checking the rules above on
/// `out` (the folder the command writes in).
fn check(name: &str, out: &Path, args: &[String], again: &[String], limits: &[u64]) {
    let first = visage(args);
    assert!(
        first.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = snapshot(out);
    let mut failed = 0;
    for &kib in limits {
        let o = limited(kib, again);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{name} at {kib} KiB: {err}");
        if o.status.success() {
            continue; // everything it writes fits under the limit
        }
        failed += 1;
        assert!(
            err.contains("File too large") || err.contains("file too large"),
            "{name} at {kib} KiB: {err}"
        );
        assert_eq!(
            temporaries(out),
            Vec::<PathBuf>::new(),
            "{name} at {kib} KiB left temporaries"
        );
        let after = snapshot(out);
        for (path, bytes) in &before {
            assert!(
                after.get(path) == Some(bytes),
                "{name} at {kib} KiB: {} was changed or removed",
                path.display()
            );
        }
    }
    assert!(failed > 0, "{name}: no limit made a write fail");
    let last = visage(again);
    assert!(
        last.status.success(),
        "{name}: rerun: {}",
        String::from_utf8_lossy(&last.stderr)
    );
}

#[test]
fn a_full_disk_loses_nothing_and_leaves_no_temporary() {
    let d = tmp("all");
    let p = |x: &Path| x.to_str().unwrap().to_string();

    // data synth: a folder of PNGs.
    let synth = d.join("synth");
    let args = s(&[
        "data",
        "synth",
        "--out",
        &p(&synth),
        "--identities",
        "3",
        "--images-per-identity",
        "3",
        "--size",
        "64",
    ]);
    check("data synth", &synth, &args, &args, &[1, 4]);

    // data pack: PREFIX.rec / .idx / property.
    let pack = d.join("pack");
    let args = s(&[
        "data",
        "pack",
        "--from",
        &p(&synth),
        "--out",
        &p(&pack.join("train")),
    ]);
    check("data pack", &pack, &args, &args, &[1, 8, 32]);

    // align: crops of the synthetic images (landmarks = the template shifted into them).
    let csv = d.join("landmarks.csv");
    let mut lines = String::new();
    for id in 0..3 {
        let name = format!("id{id:06}/id{id:06}_0001.png");
        lines.push_str(&name);
        for [x, y] in [
            [38.3, 51.7],
            [73.5, 51.5],
            [56.0, 71.7],
            [41.5, 92.4],
            [70.7, 92.2],
        ] {
            lines.push_str(&format!(",{},{}", x * 0.5, y * 0.5));
        }
        lines.push('\n');
    }
    std::fs::write(&csv, lines).unwrap();
    let aligned = d.join("aligned");
    let args = s(&[
        "align",
        "--images",
        &p(&synth),
        "--landmarks",
        &p(&csv),
        "--out",
        &p(&aligned),
    ]);
    let mut again = args.clone();
    again.push("--overwrite".into());
    check("align", &aligned, &args, &again, &[1, 8]);

    // head: a safetensors output of ArcFace over 2,000 classes.
    let head = d.join("head");
    std::fs::create_dir_all(&head).unwrap();
    let (n, dim, classes) = (8usize, 16usize, 2000usize);
    let f = |k: usize| ((k * 7919 % 1000) as f32 / 500.0 - 1.0).to_le_bytes();
    let emb: Vec<u8> = (0..n * dim).flat_map(f).collect();
    let w: Vec<u8> = (0..classes * dim).flat_map(|k| f(k + 13)).collect();
    let labels: Vec<u8> = (0..n as i64).flat_map(|l| l.to_le_bytes()).collect();
    use safetensors::{tensor::TensorView, Dtype};
    let views = vec![
        (
            "embeddings".to_string(),
            TensorView::new(Dtype::F32, vec![n, dim], &emb).unwrap(),
        ),
        (
            "labels".to_string(),
            TensorView::new(Dtype::I64, vec![n], &labels).unwrap(),
        ),
        (
            "weight".to_string(),
            TensorView::new(Dtype::F32, vec![classes, dim], &w).unwrap(),
        ),
    ];
    let input = d.join("head-in.safetensors");
    std::fs::write(&input, safetensors::serialize(views, &None).unwrap()).unwrap();
    let spec = d.join("head.toml");
    std::fs::write(&spec, "kind = \"arcface\"\nscale = 16.0\nmargin = 0.3\n").unwrap();
    let args = s(&[
        "head",
        "--spec",
        &p(&spec),
        "--input",
        &p(&input),
        "--output",
        &p(&head.join("out.safetensors")),
    ]);
    check("head", &head, &args, &args, &[1, 16]);

    // train: a run folder (config, metrics, checkpoints, backbone, report); the rerun
    // resumes it.
    let cfg = d.join("tiny.toml");
    std::fs::write(
        &cfg,
        "[data]\nkind = \"synthetic\"\nidentities = 6\nimages_per_identity = 4\nimage_size = 28\n\
         [backbone]\nkind = \"lenet_pp\"\nin_channels = 3\nembedding_dim = 16\n[head]\n\
         kind = \"softmax\"\n[optim]\nlr = 0.02\n[train]\nsteps = 4\nbatch_size = 12\n\
         log_every = 1\ncheckpoint_every = 2\n",
    )
    .unwrap();
    let runs = d.join("runs");
    let run = runs.join("tiny");
    let args = s(&["train", "--config", &p(&cfg), "--out", &p(&run), "--quiet"]);
    let again = s(&[
        "train",
        "--config",
        &p(&cfg),
        "--out",
        &p(&run),
        "--quiet",
        "--overwrite",
    ]);
    // An earlier finished run is replaced only by a complete new one: at each limit the
    // overwrite fails, and what was removed is the old run's by request; the check that
    // matters here is no temporary and no panic, so the earlier output is the empty folder.
    std::fs::create_dir_all(&runs).unwrap();
    for kib in [1u64, 16, 64] {
        let o = limited(kib, &again);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && !err.contains("panicked"),
            "train at {kib} KiB: {err}"
        );
        assert_eq!(
            temporaries(&run),
            Vec::<PathBuf>::new(),
            "train at {kib} KiB"
        );
        if run.join("config.toml").exists() {
            let o = visage(&s(&["train", "--resume", &p(&run), "--quiet"]));
            assert!(
                o.status.success(),
                "train resume after {kib} KiB: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(run.join("report.json").exists());
        }
    }
    let o = visage(
        &args
            .iter()
            .map(|a| a.to_string())
            .chain(["--overwrite".to_string()])
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
