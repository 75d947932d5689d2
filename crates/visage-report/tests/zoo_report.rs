//! The loss zoo's report: the Markdown table from given numbers equals hand-written text
//! (baseline first, then by decreasing accuracy, diverged runs last), and the chart is a
//! complete PNG / SVG.

use std::path::PathBuf;

use visage_report::zoo::ranked;
use visage_report::{plot_zoo, zoo_markdown, ZooRow};

fn row(
    loss: &str,
    settings: &str,
    acc: f64,
    std: f64,
    tar: Option<f64>,
    eer: f64,
    secs: Option<f64>,
) -> ZooRow {
    ZooRow {
        loss: loss.into(),
        settings: settings.into(),
        accuracy_mean: acc,
        accuracy_std: std,
        tar_at_far_1e3: tar,
        eer,
        train_seconds: secs,
        baseline: secs.is_none(),
        diverged: None,
    }
}

fn rows() -> Vec<ZooRow> {
    vec![
        row(
            "softmax",
            "",
            0.8125,
            0.0312,
            Some(0.05),
            0.1875,
            Some(61.4),
        ),
        row(
            "untrained",
            "sphere4 at initialisation",
            0.611,
            0.0229,
            Some(0.003),
            0.39,
            None,
        ),
        row(
            "arcface",
            "scale 16, margin 0.3",
            0.907,
            0.0293,
            Some(0.126),
            0.092,
            Some(328.0),
        ),
        row(
            "triplet",
            "margin 0.2 | x",
            0.85,
            0.0,
            None,
            0.15,
            Some(99.6),
        ),
        ZooRow {
            diverged: Some(180),
            baseline: false,
            ..row(
                "adacos",
                "dynamic true",
                f64::NAN,
                f64::NAN,
                None,
                f64::NAN,
                None,
            )
        },
    ]
}

#[test]
fn the_table_is_the_hand_written_one() {
    let expected = "\
| loss | settings | 10-fold accuracy | TAR@FAR=1e-3 | EER | train time |
|---|---|---|---|---|---|
| *untrained* | sphere4 at initialisation | 61.10 % +- 2.29 | 0.30 % | 39.00 % | - |
| `arcface` | scale 16, margin 0.3 | 90.70 % +- 2.93 | 12.60 % | 9.20 % | 5 min 28 s |
| `triplet` | margin 0.2 \\| x | 85.00 % +- 0.00 | undefined | 15.00 % | 1 min 40 s |
| `softmax` |  | 81.25 % +- 3.12 | 5.00 % | 18.75 % | 61 s |
| `adacos` | dynamic true | diverged (non-finite loss at step 180) | - | - | - |
";
    assert_eq!(zoo_markdown(&rows()), expected);
    let order: Vec<String> = ranked(&rows()).into_iter().map(|r| r.loss).collect();
    assert_eq!(
        order,
        ["untrained", "arcface", "triplet", "softmax", "adacos"]
    );
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-eval-zoo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_chart_is_a_complete_png_and_svg() {
    let dir = tmp("chart");
    let png = dir.join("zoo.png");
    plot_zoo(&png, &rows(), "zoo test").unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[bytes.len() - 8..bytes.len() - 4], b"IEND");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!(
        (width, height),
        (900, 140 + 38 * 4),
        "one row per trained loss that did not diverge, one for the legend"
    );
    let svg = dir.join("zoo.svg");
    plot_zoo(&svg, &rows(), "zoo test").unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    assert!(text.contains("arcface") && text.contains("untrained"));
    // Only the two outputs remain: the temporary files were renamed.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["zoo.png", "zoo.svg"]);
}

#[test]
fn a_chart_without_a_trained_loss_is_an_error() {
    let dir = tmp("empty");
    let baseline_only: Vec<ZooRow> = rows().into_iter().filter(|r| r.baseline).collect();
    let err = plot_zoo(dir.join("zoo.png"), &baseline_only, "t").unwrap_err();
    assert!(err.to_string().contains("no trained loss"), "{err}");
    assert!(!dir.join("zoo.png").exists());
}
