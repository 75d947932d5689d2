//! `visage align`: five-point alignment of a folder of images to the ArcFace template.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rayon::prelude::*;
use visage_data::alignment::{align, AlignTemplate};

/// Output template of `visage align`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Template {
    /// 112x112 ArcFace template.
    Arcface112,
    /// 112x96 (SphereFace, CosFace): the ArcFace template with x - 8.
    Arcface112x96,
}

/// Arguments of `visage align`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory the CSV paths are relative to.
    #[arg(long)]
    images: PathBuf,
    /// CSV: one line per image, `path,x1,y1,...,x5,y5` (left eye, right eye, nose tip, left
    /// and right mouth corners); a header line is allowed.
    #[arg(long)]
    landmarks: PathBuf,
    /// Output directory; each image keeps its relative path (non jpg/png names get .png).
    #[arg(long)]
    out: PathBuf,
    /// Template.
    #[arg(long, value_enum, default_value_t = Template::Arcface112)]
    template: Template,
}

/// One CSV line: relative path and five landmarks.
type Job = (usize, PathBuf, [[f64; 2]; 5]);

fn parse_csv(path: &Path) -> anyhow::Result<Vec<Job>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut jobs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(|f| f.trim()).collect();
        if n == 0 && fields.get(1).is_none_or(|f| f.parse::<f64>().is_err()) {
            continue; // header line: its fields are names, not numbers
        }
        let nums: Option<Vec<f64>> = fields
            .iter()
            .skip(1)
            .map(|f| f.parse::<f64>().ok())
            .collect();
        match nums {
            Some(v) if fields.len() == 11 && v.iter().all(|x| x.is_finite()) => {
                let mut lm = [[0.0; 2]; 5];
                for k in 0..5 {
                    lm[k] = [v[2 * k], v[2 * k + 1]];
                }
                jobs.push((n + 1, PathBuf::from(fields[0]), lm));
            }
            _ => anyhow::bail!(
                "{}: line {}: expected `path` and 10 numbers separated by commas, found {} fields: {line:?}",
                path.display(),
                n + 1,
                fields.len()
            ),
        }
    }
    anyhow::ensure!(!jobs.is_empty(), "{}: no landmark line", path.display());
    Ok(jobs)
}

/// Runs `visage align`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let template = match args.template {
        Template::Arcface112 => AlignTemplate::Arcface112,
        Template::Arcface112x96 => AlignTemplate::Arcface112x96,
    };
    let jobs = parse_csv(&args.landmarks)?;
    let t = std::time::Instant::now();
    jobs.par_iter()
        .try_for_each(|(line, rel, lm)| -> anyhow::Result<()> {
            let src_path = args.images.join(rel);
            let src = visage_data::sample::read_image(&src_path, 0)?;
            let out = align(&src, lm, template)
                .with_context(|| format!("{}: line {line}", args.landmarks.display()))?;
            let mut dst = args.out.join(rel);
            let keep = matches!(
                dst.extension()
                    .and_then(|e| e.to_str())
                    .map(|e| e.to_ascii_lowercase())
                    .as_deref(),
                Some("png" | "jpg" | "jpeg")
            );
            if !keep {
                dst.set_extension("png");
            }
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            out.save(&dst)?;
            Ok(())
        })?;
    let (h, w) = template.size();
    println!(
        "{}",
        serde_json::json!({"aligned": jobs.len(), "out": args.out, "image_size": [h, w, 3], "seconds": t.elapsed().as_secs_f64()})
    );
    Ok(())
}
