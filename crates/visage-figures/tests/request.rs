//! `FiguresRequest::into_job` (what `visage figures` calls): defaults by device, run
//! selection, and the option named in each error.

use std::path::PathBuf;

use visage_figures::pipeline::{FiguresRequest, Only};
use visage_figures::preset::Preset;

fn request() -> FiguresRequest {
    FiguresRequest {
        out: PathBuf::from("unused-out"),
        data: PathBuf::from("/nonexistent/fashion-mnist"),
        preset: None,
        only: Only::Analytic,
        config: None,
        jobs: None,
        runs: Vec::new(),
        gpu: false,
    }
}

#[test]
fn defaults_follow_the_device_and_errors_name_the_option() {
    let (job, preset) = request().into_job().unwrap();
    assert_eq!(preset, Preset::Cpu);
    assert!(job.jobs >= 1);
    let (job, preset) = FiguresRequest {
        gpu: true,
        ..request()
    }
    .into_job()
    .unwrap();
    assert_eq!((preset, job.jobs), (Preset::Full, 1));

    let zero = FiguresRequest {
        jobs: Some(0),
        ..request()
    }
    .into_job()
    .unwrap_err()
    .to_string();
    assert!(zero.starts_with("--jobs: must be at least 1"), "{zero}");

    let no_data = FiguresRequest {
        only: Only::Features,
        ..request()
    }
    .into_job()
    .unwrap_err()
    .to_string();
    assert!(
        no_data.starts_with("--data /nonexistent/fashion-mnist: no such folder"),
        "{no_data}"
    );

    let unknown = FiguresRequest {
        runs: vec!["no-such-run".into()],
        ..request()
    }
    .into_job()
    .unwrap_err()
    .to_string();
    assert!(unknown.contains("no-such-run"), "{unknown}");
}
