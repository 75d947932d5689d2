//! `visage align`: five-point alignment of a folder of images to the ArcFace template.

use std::path::PathBuf;

use visage_data::align_folder::{align_folder, AlignOptions};
use visage_data::alignment::AlignTemplate;

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
    /// Paths must stay inside `--images`; an output never replaces an input image.
    #[arg(long)]
    out: PathBuf,
    /// Replace outputs that exist already (from an earlier run); input images are never
    /// replaced.
    #[arg(long)]
    overwrite: bool,
    /// Template.
    #[arg(long, value_enum, default_value_t = Template::Arcface112)]
    template: Template,
}

/// Runs `visage align`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let template = match args.template {
        Template::Arcface112 => AlignTemplate::Arcface112,
        Template::Arcface112x96 => AlignTemplate::Arcface112x96,
    };
    let t = std::time::Instant::now();
    let options = AlignOptions {
        template,
        overwrite: args.overwrite,
    };
    let done = align_folder(&args.images, &args.landmarks, &args.out, options)?;
    let (h, w) = done.image_size;
    println!(
        "{}",
        serde_json::json!({"aligned": done.aligned, "out": done.out, "image_size": [h, w, 3], "seconds": t.elapsed().as_secs_f64()})
    );
    Ok(())
}
