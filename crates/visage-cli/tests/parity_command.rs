//! `visage parity` end to end on the two CPU backends compiled into the test build (ndarray
//! and flex): every head kind, a small backbone and two training steps agree within the
//! CPU tolerances; a zero tolerance turns the differences into a failing exit; a required
//! backend that is not compiled in fails and says so.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-parity-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 8 identities x 4 images of 16x16, SphereFace's 4-layer net (16-d) with ArcFace, batch 16,
/// center loss on. (Small: burn-ndarray's convolution backward is slow.)
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(
        &path,
        r#"
[data]
kind = "synthetic"
identities = 8
images_per_identity = 4
image_size = 16
difficulty = 0.3

[backbone]
kind = "sphere4"
input_size = [16, 16]
embedding_dim = 16

[head]
kind = "arcface"
scale = 16.0
margin = 0.3

[head.center]
weight = 0.01

[optim]
lr = 0.05

[train]
steps = 10
batch_size = 16
seed = 1
"#,
    )
    .unwrap();
    path
}

fn parity(dir: &Path, extra: &[&str]) -> (std::process::Output, serde_json::Value) {
    let report = dir.join("report.json");
    let _ = std::fs::remove_file(&report);
    let out = Command::new(env!("CARGO_BIN_EXE_visage"))
        .arg("parity")
        .arg("--config")
        .arg(config(dir))
        .arg("--out")
        .arg(dir.join("work"))
        .arg("--report")
        .arg(&report)
        .args(["--backends", "ndarray,flex", "--steps", "2"])
        .args(extra)
        .output()
        .unwrap();
    let json = std::fs::read_to_string(&report)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(serde_json::Value::Null);
    (out, json)
}

#[test]
fn cpu_backends_agree_on_every_head_the_backbone_and_training_steps() {
    let dir = tempdir("agree");
    let (out, report) = parity(&dir, &["--all-heads"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = report["rows"].as_array().unwrap();
    let cases: Vec<&str> = rows.iter().map(|r| r["case"].as_str().unwrap()).collect();
    for kind in [
        "softmax",
        "contrastive",
        "deepid2",
        "triplet",
        "center",
        "lsoftmax",
        "sphereface",
        "normface",
        "cosface",
        "combined",
        "adacos",
    ] {
        assert!(
            cases.contains(&format!("head {kind}").as_str()),
            "{kind}: {cases:?}"
        );
    }
    assert!(cases.contains(&"head arcface (config)"));
    let quantity = |case: &str, q: &str| {
        rows.iter()
            .find(|r| r["case"] == case && r["quantity"] == q)
            .unwrap_or_else(|| panic!("no row {case}: {q}"))
    };
    for q in [
        "forward (training mode)",
        "forward (inference mode)",
        "input gradient",
        "parameter gradients",
    ] {
        assert_eq!(quantity("backbone", q)["pass"], true);
    }
    // sphere4: 4 convolutions (weight, bias) + 4 PReLUs + 1 linear layer (weight, bias).
    assert!(
        quantity("backbone", "parameter gradients")["tensors"]
            .as_u64()
            .unwrap()
            >= 14
    );
    let steps = quantity("train", "loss at every step");
    assert_eq!(steps["pass"], true);
    // Backbone, head weights and the auxiliary centres.
    let weights = quantity("train", "weights after the last step");
    assert!(weights["tensors"].as_u64().unwrap() >= 15);
    assert!(rows.iter().all(|r| r["pass"] == true), "{stdout}");
    assert!(rows
        .iter()
        .all(|r| r["max_rel_diff"].as_f64().unwrap() < 1e-4));
    assert_eq!(report["reference"], "ndarray");
    assert_eq!(report["steps"], 2);
    // Both training runs started from the one initial model.
    let losses = |b: &str| {
        std::fs::read_to_string(dir.join(format!("work/train-{b}/metrics.jsonl")))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"]
                    .as_f64()
                    .unwrap()
            })
            .collect::<Vec<f64>>()
    };
    let (a, b) = (losses("ndarray"), losses("flex"));
    assert_eq!(a.len(), 2);
    assert!((a[0] - b[0]).abs() <= 1e-5 * a[0].abs(), "{a:?} vs {b:?}");
    assert!(stdout.contains("ndarray vs flex"), "{stdout}");
}

#[test]
fn a_breach_fails_and_names_the_quantity() {
    let dir = tempdir("breach");
    let (out, report) = parity(&dir, &["--no-train", "--tolerance-scale", "0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("parity failed"), "{stderr}");
    // The two CPU backends' convolutions do not round alike: some backbone quantity differs.
    let rows = report["rows"].as_array().unwrap();
    let failed: Vec<_> = rows.iter().filter(|r| r["pass"] == false).collect();
    assert!(!failed.is_empty());
    for r in &failed {
        assert!(r["max_rel_diff"].as_f64().unwrap() > 0.0);
        let q = r["quantity"].as_str().unwrap();
        assert!(stderr.contains(q), "{q} not named in: {stderr}");
    }
}

#[test]
fn a_required_backend_that_cannot_run_fails_with_the_reason() {
    let dir = tempdir("required");
    let (out, report) = parity(
        &dir,
        &[
            "--no-train",
            "--backends",
            "ndarray,flex,wgpu",
            "--require",
            "wgpu",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    if cfg!(feature = "wgpu") {
        return; // compiled in: whether it runs depends on the machine
    }
    assert!(!out.status.success());
    assert!(stderr.contains("wgpu is required"), "{stderr}");
    assert!(stderr.contains("--features wgpu"), "{stderr}");
    let wgpu = report["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backend"] == "wgpu")
        .unwrap();
    assert_eq!(wgpu["status"], "skipped");
    // Without the requirement the skip is reported and the CPU pair still compared.
    let (out, report) = parity(&dir, &["--no-train", "--backends", "ndarray,flex,wgpu"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["backends"][2]["status"], "skipped");
}
