//! `visage embed` as a library call: a model, a folder or tensor of images, embeddings
//! written to `.npy` / `.safetensors` with the image order beside them.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use rayon::prelude::*;
use visage_eval::{Embeddings, EvalError};

use crate::embed::{embed_batches, EmbedOptions};
use crate::error::{InferError, Result};
use crate::image_input::{read_image_input, ImageInput};
use crate::model::{Model, ModelSpec};
use visage_io::Progress;

/// What to embed and where the embeddings go.
#[derive(Debug, Clone)]
pub struct EmbedRequest {
    /// The backbone and its weights.
    pub model: ModelSpec,
    /// A folder of aligned images (searched recursively, sorted by path, each of the
    /// backbone's input size), or a `.safetensors` file with `images` f32 `[N, C, H, W]`
    /// already normalised.
    pub input: PathBuf,
    /// `.npy` or `.safetensors` (`embeddings` f32 `[N, d]`); for a folder the image order is
    /// written beside it to `OUTPUT.paths.txt`. `None`: nothing written.
    pub output: Option<PathBuf>,
    /// Flip fusion, normalisation, batch size.
    pub options: EmbedOptions,
    /// Accept NaN/Inf in the images tensor and in the embeddings (by default an error naming
    /// the image or row, and nothing is written).
    pub allow_non_finite: bool,
}

/// What [`embed_input`] produced.
#[derive(Debug, Clone)]
pub struct EmbedOutcome {
    /// The embeddings, one row per image.
    pub embeddings: Embeddings,
    /// For a folder: each row's image, relative to the folder.
    pub paths: Option<Vec<String>>,
    /// Where the image order was written (a folder with an output).
    pub paths_file: Option<PathBuf>,
    /// The model as resolved.
    pub model: Model,
}

/// The file listing the image order beside `output`: `OUTPUT.paths.txt`.
pub fn paths_file_of(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_os_string();
    name.push(".paths.txt");
    PathBuf::from(name)
}

/// Embeds the images of `request.input` with the model of `request.model` on `device`, in
/// inference mode (use a plain, non-autodiff backend), and writes them when an output is
/// given.
///
/// # Errors
/// A bad setting or weights file, an unreadable input, an image of another size, an
/// unsupported output extension (checked before any work), a non-finite embedding (naming
/// the row and image; nothing is written).
pub fn embed_input<B: Backend>(
    request: &EmbedRequest,
    device: &B::Device,
    progress: &mut dyn Progress,
) -> Result<EmbedOutcome> {
    let model = request.model.resolve()?;
    let hw = model.input_size;
    let channels = model.in_channels;
    if let Some(output) = &request.output {
        visage_eval::io::FileFormat::of(output)?;
    }
    let input = ImageInput::open(&request.input, channels, hw, request.allow_non_finite)?;
    let backbone = model.load::<B>(device)?;
    let per_image = channels * hw[0] * hw[1];
    let embeddings = match &input {
        ImageInput::Folder { files, .. } => embed_batches(
            &backbone,
            files.len(),
            [channels, hw[0], hw[1]],
            |start, end| {
                let decoded: Vec<Vec<f32>> = files[start..end]
                    .par_iter()
                    .map(|p| read_image_input(p, channels, hw))
                    .collect::<Result<_>>()?;
                Ok(decoded.concat())
            },
            &request.options,
            progress,
            device,
        )?,
        ImageInput::Tensor { data, n } => embed_batches(
            &backbone,
            *n,
            [channels, hw[0], hw[1]],
            |start, end| Ok(data[start * per_image..end * per_image].to_vec()),
            &request.options,
            progress,
            device,
        )?,
    };
    let paths = input.relative_paths();
    if !request.allow_non_finite {
        if let Err(e) = embeddings.check_finite("embeddings") {
            let which = match (&paths, &e) {
                (Some(p), EvalError::NonFinite { row, .. }) => format!(
                    " (image {})",
                    p.get(*row).map(String::as_str).unwrap_or("?")
                ),
                _ => String::new(),
            };
            let written = match &request.output {
                Some(o) => format!("nothing written to {}", o.display()),
                None => "nothing written".into(),
            };
            return Err(InferError::Invalid(format!(
                "{e}{which}: {written}; allow non-finite values (--allow-non-finite) to write \
                 it anyway"
            )));
        }
    }
    let mut paths_file = None;
    if let Some(output) = &request.output {
        visage_eval::io::write_embeddings(output, &embeddings)?;
        if let Some(paths) = &paths {
            let list = paths_file_of(output);
            let mut text = paths.join("\n");
            text.push('\n');
            visage_eval::io::write_atomic(&list, text.as_bytes())?;
            paths_file = Some(list);
        }
    }
    Ok(EmbedOutcome {
        embeddings,
        paths,
        paths_file,
        model,
    })
}
