//! `visage eval` as a library call: a model on a verification set, end to end (embeddings
//! with flip fusion, the 10-fold protocol, ROC, TAR@FAR, EER, AUC), with the report, plots
//! and summary written when asked.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use serde::Serialize;
use visage_eval::{Embeddings, Verification, VerificationReport};

use crate::dataset::{open_dataset, DatasetInfo, DatasetSpec};
use crate::embed::{embed_samples, EmbedOptions};
use crate::error::{InferError, Result};
use crate::model::{ModelInfo, ModelSpec};
use crate::summary::summary_markdown;
use visage_io::Progress;

/// A verification run.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    /// The backbone and its weights.
    pub model: ModelSpec,
    /// The pairs.
    pub dataset: DatasetSpec,
    /// Sum each image's embedding with its mirror's.
    pub flip: bool,
    /// Images per forward pass.
    pub batch_size: usize,
    /// The JSON report to write; `roc.png`, `roc_hist.png` and `summary.md` go to its folder
    /// (which must exist: checked before any work). `None`: nothing written.
    pub report: Option<PathBuf>,
    /// The backend's name, recorded in the report (`flex`, `cuda`, ..).
    pub backend: String,
}

/// The report: the verification numbers (the fields of `visage verify`'s report) plus where
/// they come from.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Accuracy, ROC, TAR@FAR, EER, AUC.
    #[serde(flatten)]
    pub verification: VerificationReport,
    /// The dataset.
    pub dataset: DatasetInfo,
    /// The model.
    pub model: ModelInfo,
    /// Whether flip fusion was on.
    pub flip: bool,
    /// The backend's name.
    pub backend: String,
    /// Images per forward pass.
    pub batch_size: usize,
    /// The plots written (ROC, score histograms); empty when nothing was written.
    pub plots: Vec<String>,
    /// The summary written; empty when nothing was written.
    pub summary: String,
}

/// What [`evaluate`] produced.
#[derive(Debug, Clone)]
pub struct EvalOutcome {
    /// The report (also written when the request named a file).
    pub report: EvalReport,
    /// The full verification: ROC curve, per-pair scores, the folds.
    pub verification: Verification,
    /// The embeddings, interleaved (pair `i` is rows `2i`, `2i + 1`).
    pub embeddings: Embeddings,
}

fn report_folder(report: &Path) -> Result<PathBuf> {
    let dir = match report.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(InferError::File {
            path: report.to_path_buf(),
            message: format!("the report's folder {} does not exist", dir.display()),
        });
    }
    Ok(dir)
}

/// Runs a verification set end to end on `device` (use a plain, non-autodiff backend):
/// resolves the model, opens and checks the dataset, loads the weights, embeds every image
/// (flip fusion as asked), scores the pairs with the 10-fold protocol, and writes the report,
/// plots and summary when `request.report` is set.
///
/// # Errors
/// A bad setting or weights file, a missing report folder (before any work), a malformed
/// dataset or an image of another size, non-finite embeddings, a failed write.
pub fn evaluate<B: Backend>(
    request: &EvalRequest,
    device: &B::Device,
    progress: &mut dyn Progress,
) -> Result<EvalOutcome> {
    let model = request.model.resolve()?;
    let report_dir = request.report.as_deref().map(report_folder).transpose()?;
    let (set, dataset) = open_dataset(&request.dataset, model.input_size)?;
    let backbone = model.load::<B>(device)?;
    let options = EmbedOptions::new()
        .with_flip(request.flip)
        .with_batch_size(request.batch_size.max(1));
    let embeddings = embed_samples(
        &backbone,
        &set.samples,
        model.in_channels,
        &options,
        progress,
        device,
    )?;
    drop(backbone);
    let verification = visage_eval::verify_interleaved(&embeddings, &set.issame)?;
    let mut report = EvalReport {
        verification: verification.report.clone(),
        dataset,
        model: model.info(),
        flip: request.flip,
        backend: request.backend.clone(),
        batch_size: request.batch_size,
        plots: Vec::new(),
        summary: String::new(),
    };
    if let (Some(path), Some(dir)) = (&request.report, report_dir) {
        write_outputs(path, &dir, &mut report, &verification, &request.dataset)?;
    }
    Ok(EvalOutcome {
        report,
        verification,
        embeddings,
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes `roc.png`, `roc_hist.png` and `summary.md` into `dir`, then the JSON `path`.
fn write_outputs(
    path: &Path,
    dir: &Path,
    report: &mut EvalReport,
    verification: &Verification,
    dataset: &DatasetSpec,
) -> Result<()> {
    let roc_path = dir.join("roc.png");
    let hist_path = visage_report::histogram_path(&roc_path);
    let title = format!("{} on {}", report.model.kind, dataset.name());
    visage_report::plot_roc(&roc_path, &verification.roc, &format!("ROC: {title}"))?;
    visage_report::plot_score_histograms(
        &hist_path,
        &verification.scores.genuine_scores(),
        &verification.scores.impostor_scores(),
        &format!("Cosine scores: {title}"),
    )?;
    let summary_path = dir.join("summary.md");
    report.plots = vec![
        roc_path.display().to_string(),
        hist_path.display().to_string(),
    ];
    report.summary = summary_path.display().to_string();
    let md = summary_markdown(
        report,
        &file_name(path),
        &file_name(&roc_path),
        &file_name(&hist_path),
    );
    visage_eval::io::write_atomic(&summary_path, md.as_bytes())?;
    visage_eval::write_report(path, report)?;
    Ok(())
}
