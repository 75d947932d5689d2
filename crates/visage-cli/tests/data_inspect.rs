//! `visage data inspect` tells the truth: a consistent dataset gives its summary and exit 0;
//! a `property` file that disagrees with the labels, a truncated last record, a 0x0 MNIST
//! image, a `pairs.txt` that is a folder, a named pipe, and (with `--deep`) corrupt or
//! mixed-size images past the first give exit status 1 and a message naming the problem.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-data-cmd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `visage` with `args`; fails the test if it runs longer than 60 s (a hang).
fn visage(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("visage {args:?} still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn inspect(path: &Path, deep: bool) -> (Option<i32>, serde_json::Value, String) {
    let p = path.to_str().unwrap();
    let mut args = vec!["data", "inspect", p];
    if deep {
        args.push("--deep");
    }
    let out = visage(&args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn problems(json: &serde_json::Value) -> Vec<String> {
    json["problems"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn synth(out: &Path, identities: &str, images: &str) {
    let o = visage(&[
        "data",
        "synth",
        "--out",
        out.to_str().unwrap(),
        "--identities",
        identities,
        "--images-per-identity",
        images,
        "--size",
        "16",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn consistent_data_passes_and_disagreements_are_reported_with_status_1() {
    let d = temp_dir("inspect");
    let folder = d.join("folder");
    synth(&folder, "3", "3");
    for deep in [false, true] {
        let (code, json, err) = inspect(&folder, deep);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(json["format"], "image_folder");
        assert_eq!(json["deep"], deep);
        assert_eq!(json["images"], 9);
        assert!(problems(&json).is_empty());
    }

    // Pack it, then make the property file disagree with the labels (0..=2).
    let o = visage(&[
        "data",
        "pack",
        "--from",
        folder.to_str().unwrap(),
        "--out",
        d.join("pack").join("train").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pack = d.join("pack");
    assert_eq!(inspect(&pack, true).0, Some(0));
    std::fs::write(pack.join("property"), "2,16,16").unwrap();
    let (code, json, err) = inspect(&pack, false);
    assert_eq!(code, Some(1), "{err}");
    let p = problems(&json);
    assert!(
        p.iter()
            .any(|m| m.contains("property: says 2 classes, but record key")),
        "{p:?}"
    );
    assert!(err.contains("problem(s) found"), "{err}");

    // A truncated last record.
    std::fs::write(pack.join("property"), "3,16,16").unwrap();
    let rec = std::fs::read(pack.join("train.rec")).unwrap();
    std::fs::write(pack.join("train.rec"), &rec[..rec.len() - 20]).unwrap();
    let (code, _, err) = inspect(&pack, false);
    assert_eq!(code, Some(1));
    assert!(err.contains("truncated"), "{err}");

    // Corrupt and mixed-size images past the first: --deep reports them.
    let id = folder.join("id000001");
    let second = std::fs::read_dir(&id)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&second, b"\x89PNG\r\n\x1a\nbroken").unwrap();
    let small = folder.join("id000000").join("id000000_0002.png");
    let o = visage(&[
        "data",
        "synth",
        "--out",
        d.join("small").to_str().unwrap(),
        "--identities",
        "1",
        "--images-per-identity",
        "1",
        "--size",
        "12",
    ]);
    assert!(o.status.success());
    std::fs::copy(
        d.join("small").join("id000000").join("id000000_0001.png"),
        &small,
    )
    .unwrap();
    let (code, json, err) = inspect(&folder, true);
    assert_eq!(code, Some(1), "{err}");
    let p = problems(&json);
    assert!(p.iter().any(|m| m.contains("cannot decode")), "{p:?}");
    assert!(
        p.iter()
            .any(|m| m.contains("mixed image sizes") && m.contains("12x12")),
        "{p:?}"
    );
}

#[test]
fn unreadable_inputs_are_errors_naming_the_problem() {
    let d = temp_dir("inspect-bad");
    // A 0x0 MNIST image file.
    let mut idx = vec![0, 0, 8, 3];
    for v in [2u32, 0, 0] {
        idx.extend_from_slice(&v.to_be_bytes());
    }
    std::fs::write(d.join("t-images-idx3-ubyte"), &idx).unwrap();
    let (code, _, err) = inspect(&d.join("t-images-idx3-ubyte"), false);
    assert_eq!(code, Some(1));
    assert!(err.contains("0x0 pixels"), "{err}");

    // pairs.txt that is a folder.
    let lfw = d.join("lfw");
    synth(&lfw, "2", "2");
    std::fs::create_dir(lfw.join("pairs.txt")).unwrap();
    let (code, _, err) = inspect(&lfw, false);
    assert_eq!(code, Some(1));
    assert!(err.contains("pairs.txt: is a directory"), "{err}");

    // A named pipe is refused, not waited on.
    #[cfg(unix)]
    {
        let fifo = d.join("pack.bin");
        let made = Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if made {
            let (code, _, err) = inspect(&fifo, false);
            assert_eq!(code, Some(1));
            assert!(err.contains("named pipe"), "{err}");
        }
    }

    // Synthetic sizes whose product overflows are refused before drawing.
    let o = visage(&[
        "data",
        "synth",
        "--out",
        d.join("huge").to_str().unwrap(),
        "--identities",
        "18446744073709551615",
        "--images-per-identity",
        "2",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("samples allowed"));
}
