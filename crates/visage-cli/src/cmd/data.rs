//! `visage data`: synthesise, inspect, pack and export datasets.

use std::path::PathBuf;

use visage_data::synthetic::{
    write_synthetic_folder, SynthConfig, SynthFolderRequest, SyntheticSplit,
};

/// Arguments of `visage data`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(clap::Subcommand, Debug)]
enum DataCommand {
    /// Write synthetic identities as an image folder (root/<identity>/<identity>_<NNNN>.png).
    Synth(SynthArgs),
    /// Print a JSON summary of a dataset: RecordIO prefix or .rec/.idx, .bin pack, LFW
    /// directory, image folder, MNIST IDX file. What disagrees (a `property` file against
    /// the labels, bytes after the last record, undecodable or mixed-size images) is listed
    /// under "problems", and then the command exits with status 1.
    Inspect(InspectArgs),
    /// Pack an image folder into PREFIX.rec / PREFIX.idx / property (InsightFace layout).
    Pack(PackArgs),
    /// Decode one record of a RecordIO pack and write it as an image.
    Export(ExportArgs),
}

/// Arguments of `visage data inspect`.
#[derive(clap::Args, Debug)]
struct InspectArgs {
    /// The dataset path.
    path: PathBuf,
    /// Decode every image (slow on big packs); by default only the first and the last are.
    #[arg(long)]
    deep: bool,
}

/// Arguments of `visage data pack`.
#[derive(clap::Args, Debug)]
struct PackArgs {
    /// Image folder (root/<identity>/<image>.jpg); class = sorted folder position.
    #[arg(long)]
    from: PathBuf,
    /// Output prefix: writes PREFIX.rec, PREFIX.idx and `property` next to them.
    #[arg(long)]
    out: PathBuf,
}

/// Arguments of `visage data export`.
#[derive(clap::Args, Debug)]
struct ExportArgs {
    /// RecordIO prefix, .rec or .idx path.
    #[arg(long)]
    from: PathBuf,
    /// Record key (as in the .idx).
    #[arg(long)]
    key: u64,
    /// Output image (.png or .jpg), the decoded RGB image.
    #[arg(long)]
    out: PathBuf,
}

/// Arguments of `visage data synth`.
#[derive(clap::Args, Debug)]
struct SynthArgs {
    /// Output directory (created).
    #[arg(long)]
    out: PathBuf,
    /// Number of identities.
    #[arg(long)]
    identities: usize,
    /// Images per identity.
    #[arg(long)]
    images_per_identity: usize,
    /// Image side in pixels (square RGB images).
    #[arg(long, default_value_t = 112)]
    size: usize,
    /// Seed of identities and nuisance.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Nuisance strength (pose, light, expression, blur, noise, occlusion); 1 is the default.
    #[arg(long, default_value_t = 1.0)]
    difficulty: f32,
    /// Draw from the held-out identities (disjoint from every training set) instead of the
    /// training ones.
    #[arg(long)]
    held_out: bool,
    /// Also write pairs.txt (LFW layout, 10 folds) with this many pairs (a multiple of 20:
    /// half genuine, half impostor).
    #[arg(long)]
    pairs: Option<usize>,
    /// Seed of the pairs list.
    #[arg(long, default_value_t = 0)]
    pairs_seed: u64,
}

/// Runs `visage data`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Synth(a) => synth(a),
        DataCommand::Inspect(a) => inspect(a),
        DataCommand::Pack(a) => pack(a),
        DataCommand::Export(a) => export(a),
    }
}

/// `visage data inspect`: the JSON summary on stdout; an error (exit status 1) when the
/// summary lists problems, so a script never takes a dataset with problems for a good one.
fn inspect(a: InspectArgs) -> anyhow::Result<()> {
    let options = visage_data::inspect::InspectOptions { deep: a.deep };
    let info = visage_data::inspect::inspect_with(&a.path, options)?;
    println!("{}", serde_json::to_string_pretty(&info)?);
    if !info.problems.is_empty() {
        for p in &info.problems {
            eprintln!("problem: {p}");
        }
        anyhow::bail!(
            "{}: {} problem(s) found (listed under \"problems\")",
            a.path.display(),
            info.problems.len()
        );
    }
    Ok(())
}

fn pack(a: PackArgs) -> anyhow::Result<()> {
    let s = visage_data::recordio::pack_folder(&a.from, &a.out)?;
    println!(
        "{}",
        serde_json::json!({
            "rec": s.paths.rec,
            "idx": s.paths.idx,
            "property": s.paths.property,
            "images": s.images,
            "identities": s.identities,
            "image_size": [s.image_size.0, s.image_size.1, 3],
        })
    );
    Ok(())
}

fn export(a: ExportArgs) -> anyhow::Result<()> {
    let r = visage_data::RecordIo::open(&a.from)?;
    let s = r.decode_key(a.key)?;
    s.save(&a.out)?;
    println!(
        "{}",
        serde_json::json!({"key": a.key, "label": s.label, "image_size": [s.height, s.width, 3], "out": a.out})
    );
    Ok(())
}

fn synth(a: SynthArgs) -> anyhow::Result<()> {
    let request = SynthFolderRequest {
        out: a.out.clone(),
        config: SynthConfig {
            size: a.size,
            seed: a.seed,
            difficulty: a.difficulty,
        },
        split: if a.held_out {
            SyntheticSplit::HeldOut
        } else {
            SyntheticSplit::Train
        },
        identities: a.identities,
        images_per_identity: a.images_per_identity,
        pairs: a.pairs,
        pairs_seed: a.pairs_seed,
    };
    let done = write_synthetic_folder(&request)?;
    println!(
        "{}",
        serde_json::json!({
            "out": a.out,
            "images": done.images,
            "identities": a.identities,
            "image_size": [a.size, a.size, 3],
            "split": if a.held_out { "held-out" } else { "train" },
            "pairs": done.pairs,
            "seconds": done.seconds,
        })
    );
    Ok(())
}
