//! `visage verify`: 1:1 verification report from an embedding matrix.
//!
//! ```text
//! visage verify --embeddings E --issame S --report OUT.json [--plot roc.png]
//! visage verify --embeddings E --pairs pairs.txt --report OUT.json
//! ```
//! E: f32 `[2N, d]` (`.npy`, or `.safetensors` key `embeddings`); with `--issame`, pair `i` is
//! rows `2i` and `2i+1` (the InsightFace order) and S is bool/u8 `[N]`. A pairs file holds
//! lines `i j same` indexing rows of E. `--plot roc.png` also writes the genuine/impostor score
//! histogram beside it as `roc_hist.png`.

use std::path::PathBuf;

use anyhow::Context;
use visage_eval::io::{read_embeddings_key, read_issame, read_pairs_file};
use visage_eval::{verify_pairs, write_report, Pairs};
use visage_report::{histogram_path, plot_roc, plot_score_histograms};

/// Arguments of `visage verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Embedding matrix f32 [rows, d] (.npy or .safetensors).
    #[arg(long)]
    pub embeddings: PathBuf,
    /// Same/different flags, bool or u8 [N] (.npy or .safetensors key `issame`); pair i = rows 2i, 2i+1.
    #[arg(long, required_unless_present = "pairs", conflicts_with = "pairs")]
    pub issame: Option<PathBuf>,
    /// Pairs file with lines `i j same` (0-based rows of the embeddings, same = 1/0).
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Output JSON report.
    #[arg(long)]
    pub report: PathBuf,
    /// ROC plot PNG (log FAR axis); the score histograms go to `<stem>_hist.png` beside it.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Tensor name inside a .safetensors embeddings file.
    #[arg(long, default_value = visage_eval::io::EMBEDDINGS_KEY)]
    pub key: String,
}

/// Runs `visage verify`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let embeddings = read_embeddings_key(&args.embeddings, &args.key)?;
    let pairs = match (&args.issame, &args.pairs) {
        (Some(issame), None) => {
            let issame = read_issame(issame)?;
            Pairs::interleaved_for(embeddings.rows, &issame)
                .with_context(|| format!("{}", args.embeddings.display()))?
        }
        (None, Some(file)) => read_pairs_file(file)?,
        _ => anyhow::bail!("give exactly one of --issame or --pairs"),
    };
    let verification = verify_pairs(&embeddings, &pairs)
        .with_context(|| format!("verification of {}", args.embeddings.display()))?;
    let r = &verification.report;
    write_report(&args.report, r)?;
    if let Some(plot) = &args.plot {
        let name = args
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
        println!("plots: {} {}", plot.display(), hist.display());
    }
    println!(
        "pairs {} (genuine {}, impostor {}), accuracy {:.4} % +- {:.4} %, EER {:.4} %, AUC {:.6}",
        r.pairs,
        r.genuine,
        r.impostor,
        r.accuracy_mean * 100.0,
        r.accuracy_std * 100.0,
        r.eer * 100.0,
        r.auc
    );
    for (far, tar) in &r.tar_at_far {
        match tar {
            Some(t) => println!("  TAR@FAR={far}: {:.4} %", t * 100.0),
            None => println!("  TAR@FAR={far}: undefined (fewer than 1/FAR impostor pairs)"),
        }
    }
    println!("report: {}", args.report.display());
    Ok(())
}
