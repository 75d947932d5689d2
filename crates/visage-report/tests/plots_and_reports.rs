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

/// `verify_files` (what `visage verify` calls): 10 genuine pairs of identical rows and 10
/// impostor pairs of orthogonal rows separate perfectly, so by hand: accuracy 1, EER 0,
/// AUC 1; the report and both plots are written.
#[test]
fn verify_files_end_to_end() {
    use visage_report::{verify_files, PairsSource, VerifyRequest};
    let dir = tmp_dir("verify_files");
    let mut rows = Vec::new();
    let mut lines = String::new();
    for i in 0..20 {
        let a = i as f32 * 0.07;
        let (c, s) = (a.cos(), a.sin());
        rows.extend([c, s]);
        if i < 10 {
            rows.extend([c, s]);
        } else {
            rows.extend([-s, c]);
        }
        lines.push_str(&format!("{} {} {}\n", 2 * i, 2 * i + 1, u8::from(i < 10)));
    }
    let embeddings = visage_eval::Embeddings::new(40, 2, rows).unwrap();
    let emb_path = dir.join("emb.npy");
    visage_eval::io::write_embeddings(&emb_path, &embeddings).unwrap();
    std::fs::write(dir.join("pairs.txt"), lines).unwrap();
    let request = VerifyRequest {
        embeddings: emb_path.clone(),
        key: visage_eval::io::EMBEDDINGS_KEY.to_string(),
        pairs: PairsSource::File(dir.join("pairs.txt")),
        report: dir.join("out/report.json"),
        plot: Some(dir.join("out/roc.png")),
    };
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let outcome = verify_files(&request).unwrap();
    let r = &outcome.report;
    assert_eq!((r.pairs, r.genuine, r.impostor), (20, 10, 10));
    assert_eq!(r.accuracy_mean, 1.0);
    assert_eq!(r.eer, 0.0);
    assert_eq!(r.auc, 1.0);
    assert!(dir.join("out/report.json").is_file());
    let (roc, hist) = outcome.plots.unwrap();
    assert_eq!(png_size(&roc), (900, 650));
    assert!(hist.is_file());

    // a missing issame file is an error naming it
    let missing = dir.join("no_issame.npy");
    let err = verify_files(&VerifyRequest {
        pairs: PairsSource::Issame(missing.clone()),
        plot: None,
        ..request
    })
    .unwrap_err();
    assert!(err.to_string().contains("no_issame.npy"), "{err}");
}
