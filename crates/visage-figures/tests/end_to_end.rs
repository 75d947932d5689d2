//! A tiny `figures` run end to end: a generated 2-class MNIST-format folder (a few dozen
//! 28x28 images), a few training steps per run, then every PNG and SVG checked; and the
//! errors for a missing data folder and an embedding that cannot be drawn.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex};
use visage_figures::contact_sheet::SheetLayout;
use visage_figures::pipeline::{check_data, run_figures, FiguresJob, Only};
use visage_figures::preset::{preset_runs, select_runs, Preset, RunSpec};
use visage_figures::FigureError;

type B = Autodiff<Flex>;

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-figures-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Class 0: a vertical bar, class 1: a horizontal bar, each shifted with the image index.
fn write_split(dir: &Path, split: &str, count: usize) {
    let mut images = Vec::new();
    images.extend(0x0000_0803u32.to_be_bytes());
    for v in [count as u32, 28, 28] {
        images.extend(v.to_be_bytes());
    }
    let mut labels = Vec::new();
    labels.extend(0x0000_0801u32.to_be_bytes());
    labels.extend((count as u32).to_be_bytes());
    for i in 0..count {
        let class = i % 2;
        let shift = 6 + (i / 2) % 14;
        for y in 0..28usize {
            for x in 0..28usize {
                let on = if class == 0 {
                    x.abs_diff(shift) < 3
                } else {
                    y.abs_diff(shift) < 3
                };
                images.push(if on {
                    230
                } else {
                    ((x * 7 + y * 3 + i) % 40) as u8
                });
            }
        }
        labels.push(class as u8);
    }
    std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), images).unwrap();
    std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), labels).unwrap();
}

fn tiny_runs(data: &Path, names: &[&str]) -> Vec<RunSpec> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut runs = select_runs(preset_runs(Preset::Cpu, data).unwrap(), &names).unwrap();
    for r in &mut runs {
        r.config.train.steps = Some(3);
        r.config.train.batch_size = 8;
        r.config.schedule.warmup_steps = 0;
        r.config.data.images_per_identity = r.config.data.images_per_identity.map(|_| 4);
        r.test_images = 16;
        r.plot_train = 24;
    }
    runs
}

fn assert_png(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    let img = image::load_from_memory(&bytes).unwrap();
    assert!(img.width() > 100 && img.height() > 100);
    // Not blank: a drawn figure has many non-white pixels.
    let rgb = img.to_rgb8();
    let ink = rgb.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(ink > 1000, "{} looks blank", path.display());
    (img.width(), img.height())
}

fn assert_svg(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        text.contains("<svg") && text.trim_end().ends_with("</svg>"),
        "{}",
        path.display()
    );
    assert!(text.contains("<text"), "{} has no text", path.display());
}

#[test]
fn tiny_figures_run_writes_every_figure() {
    let root = temp_dir("e2e");
    let data = root.join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    write_split(&data, "train", 48);
    write_split(&data, "t10k", 16);
    let out = root.join("out");
    let job = FiguresJob {
        out: out.clone(),
        runs: tiny_runs(
            &data,
            &[
                "softmax",
                "center-1e-2",
                "cosface-m0.1",
                "normface-3d",
                "toy-arcface",
            ],
        ),
        only: Only::All,
        sheet: SheetLayout {
            columns: 2,
            tile_width: 300,
            gap: 4,
        },
        jobs: 2,
    };
    // toy-arcface brings toy-softmax, the run it starts from (cosface-m0.1 starts from softmax).
    assert_eq!(job.runs.len(), 6);
    let mut lines = Vec::new();
    let summary =
        run_figures::<B>(&job, &Default::default(), |l| lines.push(l.to_string())).unwrap();
    assert_eq!(summary.analytic.len(), 3);
    for png in &summary.analytic {
        assert_png(png);
        assert_svg(&png.with_extension("svg"));
        assert_eq!(png.extension().unwrap(), "png");
    }
    assert_eq!(summary.runs.len(), 6);
    for run in &summary.runs {
        assert_png(&run.figure);
        assert_eq!(
            run.figure.file_name().unwrap().to_string_lossy(),
            format!("{}.png", run.name)
        );
        assert_svg(&run.figure.with_extension("svg"));
        let acc = run
            .test_accuracy
            .expect("classification heads have an accuracy");
        assert!((0.0..=1.0).contains(&acc));
        // The title says the loss, its settings and the accuracy.
        let svg = std::fs::read_to_string(run.figure.with_extension("svg")).unwrap();
        assert!(svg.contains("test accuracy"), "{}", run.name);
    }
    let cosface = std::fs::read_to_string(out.join("cosface-m0.1.svg")).unwrap();
    assert!(cosface.contains("CosFace") && cosface.contains("m = 0.1"));
    let center = std::fs::read_to_string(out.join("center-1e-2.svg")).unwrap();
    assert!(center.contains("center loss λ = 0.01"));
    // One progress line per run, plus the analytic figures and the sheet.
    assert_eq!(lines.iter().filter(|l| l.starts_with('[')).count(), 6);
    let (w, h) = assert_png(summary.contact_sheet.as_ref().unwrap());
    assert_eq!(w, 4 + 2 * (300 + 4));
    assert!(h > 3 * 100);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("figures.json")).unwrap()).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 6);
    // A run started from another's network says so, and its config points at that network.
    assert!(cosface.contains("from the softmax run"));
    let toml = std::fs::read_to_string(out.join("runs/cosface-m0.1/config.toml")).unwrap();
    assert!(
        toml.contains("init_backbone") && toml.contains("softmax"),
        "{toml}"
    );
    assert!(summary.runs.iter().all(|r| !r.reused));
    // Drawing again reuses the finished runs (no training) and gives the same accuracies.
    let again = FiguresJob {
        only: Only::Features,
        ..job.clone()
    };
    let second = run_figures::<B>(&again, &Default::default(), |_| {}).unwrap();
    assert!(second.runs.iter().all(|r| r.reused));
    for (a, b) in summary.runs.iter().zip(&second.runs) {
        assert_eq!((&a.name, a.test_accuracy), (&b.name, b.test_accuracy));
    }
    // No temporary files left behind.
    for e in std::fs::read_dir(&out).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.contains(".tmp"), "left over: {name}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn missing_data_folder_is_named() {
    let root = temp_dir("missing");
    let runs = preset_runs(Preset::Cpu, &root.join("no-such-folder")).unwrap();
    let e = check_data(&runs).unwrap_err().to_string();
    assert!(
        e.contains("no-such-folder") && e.contains("not a folder"),
        "{e}"
    );
    // A folder without the test split names the missing file.
    let data = root.join("half");
    std::fs::create_dir_all(&data).unwrap();
    write_split(&data, "train", 4);
    let runs = preset_runs(Preset::Cpu, &data).unwrap();
    let e = check_data(&runs).unwrap_err().to_string();
    assert!(e.contains("t10k-images-idx3-ubyte"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn embeddings_that_cannot_be_drawn_are_refused() {
    let root = temp_dir("dim");
    let data = root.join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    write_split(&data, "train", 8);
    write_split(&data, "t10k", 4);
    let mut runs = tiny_runs(&data, &["softmax"]);
    runs[0].config.backbone.embedding_dim = Some(5);
    let job = FiguresJob {
        out: root.join("out"),
        runs,
        only: Only::Features,
        sheet: SheetLayout::default(),
        jobs: 1,
    };
    let e = run_figures::<B>(&job, &Default::default(), |_| {}).unwrap_err();
    assert!(matches!(e, FigureError::Setting { .. }));
    assert!(e.to_string().contains("backbone.embedding_dim"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}
