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

use visage_report::{verify_files, PairsSource, VerifyRequest};

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

/// Runs `visage verify`: [`visage_report::verify_files`], then the numbers on stdout.
pub fn run(args: Args) -> anyhow::Result<()> {
    let pairs = match (args.issame, args.pairs) {
        (Some(issame), None) => PairsSource::Issame(issame),
        (None, Some(file)) => PairsSource::File(file),
        _ => anyhow::bail!("give exactly one of --issame or --pairs"),
    };
    let outcome = verify_files(&VerifyRequest {
        embeddings: args.embeddings,
        key: args.key,
        pairs,
        report: args.report.clone(),
        plot: args.plot,
    })?;
    if let Some((plot, hist)) = &outcome.plots {
        println!("plots: {} {}", plot.display(), hist.display());
    }
    let r = &outcome.report;
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
