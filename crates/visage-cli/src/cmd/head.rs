//! `visage head`: one loss head on given tensors, for parity checks against PyTorch and
//! between backends. The input and output tensors are documented on
//! [`visage_parity::head`]; reading, checking and computing live there.

use std::path::PathBuf;

use anyhow::Context;
use visage_io::HostTensor;
use visage_parity::{dispatch, BackendKind, HeadJob};

/// Arguments of `visage head`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// HEAD.toml: `kind = "..."` and that head's fields.
    #[arg(long)]
    pub spec: PathBuf,
    /// Input tensors (safetensors).
    #[arg(long)]
    pub input: PathBuf,
    /// Output tensors (safetensors).
    #[arg(long)]
    pub output: PathBuf,
    /// Backend to compute on.
    #[arg(long, value_enum, default_value_t = BackendKind::default_compiled())]
    pub backend: BackendKind,
    /// Accept NaN/Inf in `embeddings`, `weight`/`centers` and `bias` (by default an error
    /// naming the tensor); the AdaCos `scale` must be finite regardless.
    #[arg(long)]
    pub allow_non_finite: bool,
}

/// Runs `visage head`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let job = HeadJob::read(&args.spec, &args.input, args.allow_non_finite)?;
    let kind = job.spec.kind();
    let tensors = dispatch(args.backend, job)
        .with_context(|| format!("head `{kind}` on {}", args.backend))?;
    visage_io::create_parent_dir(&args.output)?;
    visage_io::write_tensors(&args.output, &tensors)?;
    if let Some(HostTensor::F32(loss, _)) = tensors.get("loss") {
        println!(
            "{kind} on {}: loss {:.6} -> {}",
            args.backend,
            loss[0],
            args.output.display()
        );
    }
    Ok(())
}
