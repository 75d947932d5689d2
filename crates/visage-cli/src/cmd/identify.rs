//! `visage identify`: MegaFace-style 1:N identification report from embedding matrices.
//!
//! ```text
//! visage identify --probes P --probe-labels L --distractors D [--ranks 1,5,10] --report OUT.json
//! ```
//! P: f32 `[Np, d]`, L: integer `[Np]`, D: f32 `[Nd, d]` (`.npy` or `.safetensors`). Scores are
//! computed in blocks (never `Np x Nd` at once) with a progress bar on stderr; `.npy`
//! distractors are scored chunk by chunk while they are read.

use std::path::PathBuf;

use visage_eval::identification::{identify_files, IdentifyRequest};
use visage_eval::IdentificationConfig;

use crate::progress::Bar;

/// Arguments of `visage identify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Probe embeddings f32 [Np, d] (.npy or .safetensors key `embeddings`).
    #[arg(long)]
    pub probes: PathBuf,
    /// Probe identity labels, integers [Np] (.npy or .safetensors key `labels`).
    #[arg(long)]
    pub probe_labels: PathBuf,
    /// Distractor embeddings f32 [Nd, d] (.npy or .safetensors key `embeddings`).
    #[arg(long)]
    pub distractors: PathBuf,
    /// Ranks to report, comma separated, each from 1 to 10000.
    #[arg(long, value_delimiter = ',', default_value = "1,5,10")]
    pub ranks: Vec<usize>,
    /// Output JSON report.
    #[arg(long)]
    pub report: PathBuf,
    /// Distractors per block of the blocked similarity computation.
    #[arg(long, default_value_t = 1024)]
    pub distractor_block: usize,
}

/// Runs `visage identify`.
pub fn run(args: Args) -> anyhow::Result<()> {
    // flags first: a bad rank is refused before any file is read or memory reserved
    visage_eval::identification::check_ranks(&args.ranks)
        .map_err(|e| anyhow::anyhow!("--ranks: {e}"))?;
    let request = IdentifyRequest {
        probes: args.probes,
        probe_labels: args.probe_labels,
        distractors: args.distractors,
        config: IdentificationConfig {
            ranks: args.ranks,
            distractor_block: args.distractor_block,
            ..Default::default()
        },
        report: args.report.clone(),
    };
    let start = std::time::Instant::now();
    let r = identify_files(&request, &mut Bar::default())?;
    println!(
        "probes {} ({} identities, {} single-image probes skipped), distractors {}, {} ordered pairs, {:.1} s",
        r.probes,
        r.probe_identities,
        r.skipped_single_image_probes,
        r.distractors,
        r.pairs,
        start.elapsed().as_secs_f64()
    );
    for (k, rate) in &r.rank.0 {
        println!("  rank-{k}: {:.4} %", rate * 100.0);
    }
    match r.tar_at_far_1e_6 {
        Some(t) => println!("  TAR@FAR=1e-6: {:.4} %", t * 100.0),
        None => println!(
            "  TAR@FAR=1e-6: undefined ({} impostor pairs < 1e6)",
            r.impostor_pairs
        ),
    }
    println!("report: {}", args.report.display());
    Ok(())
}
