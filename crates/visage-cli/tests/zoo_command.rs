//! `visage zoo` through the binary: two tiny configs train into `zoo.md` / `zoo.png` /
//! `zoo.svg` with one progress line per loss; a pattern that finds nothing and a config that
//! does not parse are errors that name the pattern or the file, and write nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-zoo-cmd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 6 identities x 4 images of 28x28, LeNets++; held out: 10 identities, 10 x (2 + 2) pairs.
fn tiny(dir: &Path, name: &str, head: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "[data]\nkind = \"synthetic\"\nidentities = 6\nimages_per_identity = 4\nimage_size = 28\n\
         difficulty = 0.3\n\n[eval]\nkind = \"synthetic\"\nidentities = 10\nimages_per_identity = 4\n\
         pairs_per_fold = 2\nflip = false\n\n[backbone]\nkind = \"lenet_pp\"\nin_channels = 3\n\
         embedding_dim = 16\n\n[head]\n{head}\n\n[optim]\nlr = 0.02\n\n[train]\nsteps = 50\n\
         batch_size = 12\nlog_every = 1\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn zoo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_visage"))
        .arg("zoo")
        .args(["--backend", "flex"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn two_tiny_losses_make_the_table_and_the_chart() {
    let dir = tmp("run");
    tiny(&dir, "tiny-softmax", "kind = \"softmax\"");
    tiny(&dir, "tiny-normface", "kind = \"normface\"\nscale = 8.0");
    let pattern = format!("{}/tiny-*.toml", dir.display());
    let out = dir.join("zoo");
    let o = zoo(&[
        "--configs",
        &pattern,
        "--steps",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("zoo: [1/2] normface: accuracy ") && err.contains("zoo: [2/2] softmax: "),
        "{err}"
    );
    let md = std::fs::read_to_string(out.join("zoo.md")).unwrap();
    assert!(md.starts_with("# The loss zoo\n"), "{md}");
    assert!(
        md.contains("2 steps of sgd")
            && md.contains("| *untrained* | lenet_pp at initialisation |"),
        "{md}"
    );
    assert!(
        md.contains("| `normface` | scale 8.0 |") && md.contains("| `softmax` |  |"),
        "{md}"
    );
    assert!(std::fs::read(out.join("zoo.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));
    assert!(out.join("zoo.svg").exists());
}

#[test]
fn bad_inputs_name_the_pattern_or_the_file() {
    let dir = tmp("bad");
    let out = dir.join("zoo");
    let none = format!("{}/nothing-*.toml", dir.display());
    let o = zoo(&["--configs", &none, "--out", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains(&none) && err.contains("no config file matches"),
        "{err}"
    );

    let broken = dir.join("broken.toml");
    std::fs::write(&broken, "[data\nkind = ").unwrap();
    let o = zoo(&[
        "--configs",
        broken.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("broken.toml"), "{err}");
    assert!(
        !out.exists(),
        "nothing is written before the configs are read"
    );
}
