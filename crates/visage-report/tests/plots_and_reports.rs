//! The PNG plots and the JSON report writer produce complete files at the requested paths
//! (no temporary files left behind).

use std::path::{Path, PathBuf};

use visage_eval::roc::RocCurve;
use visage_eval::write_report;
use visage_report::{histogram_path, plot_roc, plot_score_histograms};

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-eval-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// PNG signature, then the IHDR chunk: width and height as big-endian u32 at bytes 16..24.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&b[12..16], b"IHDR");
    let w = u32::from_be_bytes(b[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(b[20..24].try_into().unwrap());
    (w, h)
}

#[test]
fn roc_and_histogram_pngs_are_written() {
    let dir = tmp_dir("plots");
    let genuine: Vec<f64> = (0..300).map(|i| 0.3 + 0.6 * (i as f64 / 300.0)).collect();
    let impostor: Vec<f64> = (0..700).map(|i| -0.2 + 0.6 * (i as f64 / 700.0)).collect();
    let mut scores = genuine.clone();
    scores.extend(&impostor);
    let same: Vec<bool> = (0..1000).map(|i| i < 300).collect();
    let roc = RocCurve::new(&scores, &same).unwrap();
    let roc_png = dir.join("roc.png");
    plot_roc(&roc_png, &roc, "test ROC").unwrap();
    let hist = histogram_path(&roc_png);
    assert_eq!(hist, dir.join("roc_hist.png"));
    plot_score_histograms(&hist, &genuine, &impostor, "test scores").unwrap();
    assert_eq!(png_size(&roc_png), (900, 650));
    assert_eq!(png_size(&hist), (900, 650));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn report_is_written_atomically_as_json() {
    let dir = tmp_dir("report");
    let path = dir.join("out.json");
    let value = serde_json::json!({"accuracy_mean": 0.5, "tar_at_far": {"1e-6": null}});
    write_report(&path, &value).unwrap();
    let back: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(back, value);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    let err = write_report(dir.join("missing/out.json"), &value).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}
