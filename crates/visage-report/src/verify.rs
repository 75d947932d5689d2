//! 1:1 verification from files, end to end: read an embedding matrix and its pairs, run the
//! protocol ([`visage_eval::verify_pairs`]), write the JSON report and, when asked, the ROC
//! and score-histogram plots. What `visage verify` does.

use std::path::PathBuf;

use visage_eval::io::{read_embeddings_key, read_issame, read_pairs_file};
use visage_eval::{verify_pairs, write_report, Pairs, VerificationReport};

use crate::{histogram_path, plot_roc, plot_score_histograms, ReportError};

/// Where the pairs of a verification come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairsSource {
    /// Same/different flags, bool or u8 `[N]` (`.npy` or `.safetensors` key `issame`): pair
    /// `i` is rows `2i` and `2i + 1` (the InsightFace order).
    Issame(PathBuf),
    /// A pairs file with lines `i j same` (0-based rows of the embeddings, same = 1/0).
    File(PathBuf),
}

/// A verification run on files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    /// Embedding matrix f32 `[rows, d]` (`.npy` or `.safetensors`).
    pub embeddings: PathBuf,
    /// Tensor name inside a `.safetensors` embeddings file.
    pub key: String,
    /// The pairs.
    pub pairs: PairsSource,
    /// Output JSON report.
    pub report: PathBuf,
    /// ROC plot PNG; the score histograms go to [`histogram_path`] of it.
    pub plot: Option<PathBuf>,
}

/// What [`verify_files`] computed and wrote.
#[derive(Debug, Clone)]
pub struct VerifyOutcome {
    /// The report written to [`VerifyRequest::report`].
    pub report: VerificationReport,
    /// The ROC and histogram PNGs written, when a plot was asked for.
    pub plots: Option<(PathBuf, PathBuf)>,
}

/// Runs `request`: reads, verifies, writes the report (and the plots, titled with the
/// embeddings' file name). Every error names the file at fault.
pub fn verify_files(request: &VerifyRequest) -> Result<VerifyOutcome, ReportError> {
    let embeddings = read_embeddings_key(&request.embeddings, &request.key)?;
    let in_file = |e: visage_eval::EvalError| ReportError::Input {
        path: request.embeddings.clone(),
        source: e,
    };
    let pairs = match &request.pairs {
        PairsSource::Issame(issame) => {
            let issame = read_issame(issame)?;
            Pairs::interleaved_for(embeddings.rows, &issame).map_err(in_file)?
        }
        PairsSource::File(file) => read_pairs_file(file)?,
    };
    let verification = verify_pairs(&embeddings, &pairs).map_err(in_file)?;
    write_report(&request.report, &verification.report)?;
    let plots = match &request.plot {
        Some(plot) => {
            let name = request
                .embeddings
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            plot_roc(plot, &verification.roc, &format!("ROC: {name}"))?;
            let hist = histogram_path(plot);
            plot_score_histograms(
                &hist,
                &verification.scores.genuine_scores(),
                &verification.scores.impostor_scores(),
                &format!("Cosine scores: {name}"),
            )?;
            Some((plot.clone(), hist))
        }
        None => None,
    };
    Ok(VerifyOutcome {
        report: verification.report,
        plots,
    })
}
