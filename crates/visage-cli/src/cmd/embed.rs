//! `visage embed`: embeddings of aligned face images with a backbone and its weights.
//!
//! ```text
//! visage embed --backbone iresnet50 --weights backbone.pth --input aligned/ --output emb.npy \
//!     [--flip] [--normalize] [--backend flex] [--batch-size 32]
//! ```
//! - `--input` is a folder of aligned images (searched recursively, sorted by path; decoded to
//!   RGB, or grey for 1-channel backbones; normalised (x/255 - 0.5)/0.5; they must already
//!   have the backbone's input size), or a `.safetensors` file with `images` f32
//!   `[N, C, H, W]` already normalised.
//! - `--output` is `.npy` or `.safetensors` (`embeddings` f32 `[N, d]`); for a folder the
//!   image order is written beside it to `OUTPUT.paths.txt` (paths relative to the folder).
//! - `--flip` sums the embeddings of each image and its horizontal mirror; `--normalize`
//!   divides each embedding by its L2 norm (after the flip sum).
//! - The network runs in inference mode (batch-norm running statistics, no dropout).
//! - NaN or infinite values in the weights or in the `images` tensor are errors naming the
//!   tensor, and a non-finite embedding is an error naming its row (nothing is written);
//!   `--allow-non-finite` lets all three through.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use rayon::prelude::*;
use visage_backbones::{
    load_state_dict, Backbone, BackboneConfig, BackboneKind, ReadOptions, StateDict,
};
use visage_eval::Embeddings;

use crate::backend::{dispatch, BackendJob, BackendKind};

/// Arguments of `visage embed`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Backbone: iresnet18/34/50/100/200 (r50 ..), mobilefacenet (mbf), sphere4/10/20/36/64,
    /// lenet_pp.
    #[arg(long)]
    pub backbone: String,
    /// Weights: an InsightFace `backbone.pth` (PyTorch state dict) or a safetensors file with
    /// the same keys.
    #[arg(long)]
    pub weights: PathBuf,
    /// A folder of aligned images, or a `.safetensors` file with `images` f32 [N, C, H, W].
    #[arg(long)]
    pub input: PathBuf,
    /// Output file, `.npy` or `.safetensors`.
    #[arg(long)]
    pub output: PathBuf,
    /// Sum each embedding with the embedding of the horizontally mirrored image.
    #[arg(long)]
    pub flip: bool,
    /// L2-normalise each embedding (after `--flip`).
    #[arg(long)]
    pub normalize: bool,
    /// Embedding size; default: read from the weights (else the backbone's default).
    #[arg(long)]
    pub embedding_dim: Option<usize>,
    /// Input size HxW, e.g. 112x96; default: the backbone's (112x112; 112x96 for sphere nets).
    #[arg(long, value_parser = parse_hw)]
    pub input_size: Option<[usize; 2]>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendKind::default_compiled())]
    pub backend: BackendKind,
    /// Accept NaN/Inf in the weights and the input tensor, and write non-finite embeddings
    /// (by default each is an error naming the tensor or the row).
    #[arg(long)]
    pub allow_non_finite: bool,
}

fn parse_hw(s: &str) -> Result<[usize; 2], String> {
    let (h, w) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected HxW, e.g. 112x112, got `{s}`"))?;
    let h = h
        .trim()
        .parse()
        .map_err(|_| format!("bad height in `{s}`"))?;
    let w = w
        .trim()
        .parse()
        .map_err(|_| format!("bad width in `{s}`"))?;
    Ok([h, w])
}

/// The images to embed, normalised, `[N, C, H, W]` row-major.
enum Source {
    /// Decoded lazily from these files (relative names kept for the paths file).
    Folder { root: PathBuf, files: Vec<PathBuf> },
    /// Already in memory.
    Tensor { data: Vec<f32>, n: usize },
}

fn list_images(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    /// Walks `dir`; each folder is entered once by its canonical path, so a symlink loop
    /// (`a/b -> a`) ends instead of recursing until the stack overflows.
    fn walk(
        dir: &Path,
        out: &mut Vec<PathBuf>,
        seen: &mut std::collections::HashSet<PathBuf>,
        depth: usize,
    ) -> anyhow::Result<()> {
        if depth > 64 {
            bail!("{}: folders nested more than 64 deep", dir.display());
        }
        let canonical = std::fs::canonicalize(dir)
            .with_context(|| format!("cannot read folder {}", dir.display()))?;
        if !seen.insert(canonical) {
            return Ok(());
        }
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read folder {}", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot read folder {}", dir.display()))?
                .path();
            if path.is_dir() {
                walk(&path, out, seen, depth + 1)?;
            } else if path.is_file()
                && path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")
                })
            {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(root, &mut files, &mut std::collections::HashSet::new(), 0)?;
    files.sort();
    if files.is_empty() {
        bail!("no .jpg/.jpeg/.png images under {}", root.display());
    }
    Ok(files)
}

/// Decodes one image to normalised CHW values.
fn decode(path: &Path, channels: usize, hw: [usize; 2]) -> anyhow::Result<Vec<f32>> {
    let img =
        image::open(path).with_context(|| format!("cannot decode image {}", path.display()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if [h, w] != hw {
        bail!(
            "image {} is {}x{} (HxW), the backbone expects {}x{}: align/resize the faces first \
             (e.g. `visage align`) or pass --input-size",
            path.display(),
            h,
            w,
            hw[0],
            hw[1]
        );
    }
    let norm = |v: u8| (v as f32 / 255.0 - 0.5) / 0.5;
    let mut out = vec![0f32; channels * h * w];
    if channels == 1 {
        let g = img.to_luma8();
        for (i, p) in g.pixels().enumerate() {
            out[i] = norm(p.0[0]);
        }
    } else {
        let rgb = img.to_rgb8();
        for (i, p) in rgb.pixels().enumerate() {
            for c in 0..3 {
                out[c * h * w + i] = norm(p.0[c]);
            }
        }
    }
    Ok(out)
}

fn read_images_tensor(
    path: &Path,
    channels: usize,
    hw: [usize; 2],
    allow_non_finite: bool,
) -> anyhow::Result<(Vec<f32>, usize)> {
    use safetensors::{Dtype, SafeTensors};
    let bytes = crate::tensor_file::read_regular_file(path)?;
    let st = SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{} is not a safetensors file", path.display()))?;
    let view = st.tensor("images").with_context(|| {
        format!(
            "{} has no tensor `images` (it holds: {:?})",
            path.display(),
            st.names()
        )
    })?;
    if view.dtype() != Dtype::F32 {
        bail!(
            "{}: `images` is {:?}, expected F32",
            path.display(),
            view.dtype()
        );
    }
    let shape = view.shape().to_vec();
    if shape.len() != 4 || shape[1] != channels || shape[2] != hw[0] || shape[3] != hw[1] {
        bail!(
            "{}: `images` has shape {:?}, expected [N, {}, {}, {}]",
            path.display(),
            shape,
            channels,
            hw[0],
            hw[1]
        );
    }
    let data: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if !allow_non_finite {
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            let per = channels * hw[0] * hw[1];
            bail!(
                "{}: tensor `images` holds a non-finite value ({}) at flat index {i} (image {}); \
                 pass --allow-non-finite to embed it anyway",
                path.display(),
                data[i],
                i / per.max(1)
            );
        }
    }
    Ok((data, shape[0]))
}

/// The embedding size stored in the weights, where the architecture's last layer says it.
fn embedding_dim_of(kind: BackboneKind, state: &StateDict) -> Option<usize> {
    let key = match kind {
        BackboneKind::IResNet(_) => "features.weight",
        BackboneKind::MobileFaceNet => "features.layers.3.weight",
        BackboneKind::SphereNet(_) | BackboneKind::LeNetPP => "fc.bias",
    };
    state.tensors.get(key).map(|t| t.shape.num_elements())
}

struct EmbedJob {
    config: BackboneConfig,
    state: StateDict,
    source: Source,
    channels: usize,
    hw: [usize; 2],
    flip: bool,
    normalize: bool,
    batch_size: usize,
}

impl BackendJob for EmbedJob {
    type Output = Embeddings;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Embeddings> {
        // inference mode: the plain backend (running statistics, no dropout)
        let model: Backbone<B::InnerBackend> = self.config.init(&device)?;
        let model = load_state_dict(model, &self.state)?;
        drop(self.state);
        let [h, w] = self.hw;
        let per_image = self.channels * h * w;
        let n = match &self.source {
            Source::Folder { files, .. } => files.len(),
            Source::Tensor { n, .. } => *n,
        };
        let bar = indicatif::ProgressBar::new(n as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "embed {bar:40} {pos}/{len} [{elapsed_precise}<{eta_precise}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let mut out: Vec<f32> = Vec::new();
        let mut dim = 0;
        let mut start = 0;
        while start < n {
            let end = (start + self.batch_size.max(1)).min(n);
            let batch: Vec<f32> = match &self.source {
                Source::Folder { files, .. } => {
                    let decoded: Vec<Vec<f32>> = files[start..end]
                        .par_iter()
                        .map(|p| decode(p, self.channels, self.hw))
                        .collect::<anyhow::Result<_>>()?;
                    decoded.concat()
                }
                Source::Tensor { data, .. } => data[start * per_image..end * per_image].to_vec(),
            };
            let b = end - start;
            let x = Tensor::<B::InnerBackend, 1>::from_floats(batch.as_slice(), &device).reshape([
                b,
                self.channels,
                h,
                w,
            ]);
            let mut e = model.forward(x.clone());
            if self.flip {
                e = e + model.forward(x.flip([3]));
            }
            if self.normalize {
                let norm = e.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
                e = e / norm;
            }
            dim = e.dims()[1];
            let values: Vec<f32> = e
                .into_data()
                .into_vec()
                .map_err(|err| anyhow::anyhow!("reading embeddings back: {err:?}"))?;
            out.extend(values);
            bar.inc(b as u64);
            start = end;
        }
        bar.finish_and_clear();
        Ok(Embeddings::new(n, dim, out)?)
    }
}

/// Runs `visage embed`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let kind = BackboneKind::from_str(&args.backbone)?;
    // flags first: a bad --input-size / --embedding-dim is refused before the weights are read
    let mut flags = BackboneConfig::new(kind);
    flags.input_size = args.input_size;
    flags.embedding_dim = args.embedding_dim;
    flags.input_size()?;
    if args.embedding_dim.is_some() {
        flags.embedding_dim()?;
    }
    let state = StateDict::read_with(
        &args.weights,
        ReadOptions {
            allow_non_finite: args.allow_non_finite,
        },
    )?;
    let mut config = BackboneConfig::new(kind);
    config.embedding_dim = args
        .embedding_dim
        .or_else(|| embedding_dim_of(kind, &state));
    config.input_size = args.input_size;
    let hw = config.input_size()?;
    let channels = config.in_channels()?;
    // check the output format before the work
    visage_eval::io::FileFormat::of(&args.output)?;

    let source = if args.input.is_dir() {
        Source::Folder {
            files: list_images(&args.input)?,
            root: args.input.clone(),
        }
    } else if args.input.is_file() {
        let (data, n) = read_images_tensor(&args.input, channels, hw, args.allow_non_finite)?;
        if n == 0 {
            bail!("{}: `images` holds no image", args.input.display());
        }
        Source::Tensor { data, n }
    } else if args.input.exists() {
        bail!(
            "--input {}: not a folder or a regular file (named pipes and devices are not read)",
            args.input.display()
        );
    } else {
        bail!("--input {}: no such folder or file", args.input.display());
    };
    let paths: Option<Vec<String>> = match &source {
        Source::Folder { root, files } => Some(
            files
                .iter()
                .map(|p| {
                    p.strip_prefix(root)
                        .unwrap_or(p)
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
        ),
        Source::Tensor { .. } => None,
    };

    let job = EmbedJob {
        config,
        state,
        source,
        channels,
        hw,
        flip: args.flip,
        normalize: args.normalize,
        batch_size: args.batch_size,
    };
    let embeddings = dispatch(args.backend, job)?;
    if !args.allow_non_finite {
        if let Err(e) = embeddings.check_finite("embeddings") {
            let which = match (&paths, &e) {
                (Some(p), visage_eval::EvalError::NonFinite { row, .. }) => {
                    format!(
                        " (image {})",
                        p.get(*row).map(String::as_str).unwrap_or("?")
                    )
                }
                _ => String::new(),
            };
            bail!(
                "{e}{which}: nothing written to {}; pass --allow-non-finite to write it anyway",
                args.output.display()
            );
        }
    }
    visage_eval::io::write_embeddings(&args.output, &embeddings)?;
    if let Some(paths) = paths {
        let mut list = args.output.clone().into_os_string();
        list.push(".paths.txt");
        let list = PathBuf::from(list);
        let mut text = paths.join("\n");
        text.push('\n');
        std::fs::write(&list, text).with_context(|| format!("cannot write {}", list.display()))?;
        eprintln!(
            "wrote {} embeddings of size {} to {} (image order in {})",
            embeddings.rows,
            embeddings.dim,
            args.output.display(),
            list.display()
        );
    } else {
        eprintln!(
            "wrote {} embeddings of size {} to {}",
            embeddings.rows,
            embeddings.dim,
            args.output.display()
        );
    }
    Ok(())
}
