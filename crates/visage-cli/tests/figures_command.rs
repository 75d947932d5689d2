//! `visage figures` end to end: the analytic figures (no training, no data), and bad input
//! (a missing data folder, an unknown run, a bad config) named in the error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-figures-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn figures(out: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage"))
        .arg("figures")
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn analytic_figures_need_no_data() {
    let dir = temp_dir("analytic");
    let out = dir.join("figs");
    let o = figures(&out, &["--only", "analytic", "--data", "/no/such/folder"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in ["target_logits", "decision_margins", "adacos_probability"] {
        let png = std::fs::read(out.join("analytic").join(format!("{name}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}.png");
        let svg =
            std::fs::read_to_string(out.join("analytic").join(format!("{name}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{name}.svg");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_named() {
    let dir = temp_dir("bad");
    let out = dir.join("figs");
    let o = figures(&out, &["--only", "features", "--data", "/no/such/folder"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("/no/such/folder") && err.contains("dataset-fashion-mnist"),
        "{err}"
    );

    let o = figures(&out, &["--runs", "softmax,nope"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("`nope`") && err.contains("normface-3d"),
        "{err}"
    );

    let config = dir.join("run.toml");
    std::fs::write(
        &config,
        "[data]\nkind = \"mnist\"\npath = \"/no/such/folder\"\n",
    )
    .unwrap();
    let o = figures(&out, &["--config", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("run.toml"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
