//! Embeddings from a backbone in inference mode: optional flip fusion, optional L2
//! normalisation, in batches.

use burn::config::Config;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use visage_backbones::Backbone;
use visage_data::ImageSample;
use visage_eval::Embeddings;
use visage_train::TrainError;

use crate::error::InferError;

// (not `Result`: the `Config` derive expands to code naming `Result<T, E>`)
type Res<T> = crate::error::Result<T>;
use visage_io::Progress;

/// How images are embedded.
#[derive(Config, Debug)]
pub struct EmbedOptions {
    /// Sum each embedding with the embedding of the horizontally mirrored image.
    #[config(default = false)]
    pub flip: bool,
    /// Divide each embedding by its L2 norm (after the flip sum).
    #[config(default = false)]
    pub normalize: bool,
    /// Images per forward pass (0 counts as 1).
    #[config(default = 32)]
    pub batch_size: usize,
}

/// Embeds a batch of normalised images: `f(x)`, plus `f(mirror(x))` with `flip`, then
/// divided by the L2 norm (at least 1e-12) with `normalize` (the one implementation is
/// [`visage_train::extract::embed_tensor`]).
///
/// # Shapes
/// - `images`: `[N, C, H, W]`, the backbone's input channels and size
/// - returns `[N, d]`
pub fn embed_tensor<B: Backend>(
    model: &Backbone<B>,
    images: Tensor<B, 4>,
    options: &EmbedOptions,
) -> Tensor<B, 2> {
    visage_train::extract::embed_tensor(model, images, options.flip, options.normalize)
}

/// Training's errors of embedding as this crate's: data and evaluation errors keep their
/// own variants.
fn from_train(e: TrainError) -> InferError {
    match e {
        TrainError::Data(e) => InferError::Data(e),
        TrainError::Eval(e) => InferError::Eval(e),
        e => InferError::Train(e),
    }
}

/// Embeds decoded images (RGB samples, converted by [`visage_data::channels`]' rule: RGB for
/// 3 input channels, BT.601 luma for 1, as in training), `options.batch_size` at a time.
///
/// # Shapes
/// - `samples`: N images of `[H, W, 3]`, the backbone's input size
/// - returns embeddings `[N, d]`
///
/// # Errors
/// Images of mixed sizes or an unsupported channel count ([`InferError::Data`]); a tensor
/// that cannot be read back ([`InferError::Train`]).
pub fn embed_samples<B: Backend>(
    model: &Backbone<B>,
    samples: &[ImageSample],
    in_channels: usize,
    options: &EmbedOptions,
    progress: &mut dyn Progress,
    device: &B::Device,
) -> Res<Embeddings> {
    visage_train::extract::embed_samples_with(
        model,
        samples,
        in_channels,
        options.flip,
        options.normalize,
        options.batch_size,
        progress,
        device,
    )
    .map_err(from_train)
}

/// Embeds `n` images given as normalised values, batch by batch: `batch(start, end)` returns
/// the values of images `start..end`, CHW each.
///
/// # Shapes
/// - each batch: `(end - start) * C * H * W` values, `[end - start, C, H, W]` row-major
/// - returns embeddings `[n, d]`
///
/// # Errors
/// What `batch` returns; a batch of the wrong length ([`InferError::Invalid`]).
pub fn embed_batches<B: Backend>(
    model: &Backbone<B>,
    n: usize,
    image_shape: [usize; 3],
    mut batch: impl FnMut(usize, usize) -> Res<Vec<f32>>,
    options: &EmbedOptions,
    progress: &mut dyn Progress,
    device: &B::Device,
) -> Res<Embeddings> {
    let [c, h, w] = image_shape;
    progress.start("embed", n as u64);
    let mut out = Vec::new();
    let mut dim = 0;
    let mut start = 0;
    while start < n {
        let end = (start + options.batch_size.max(1)).min(n);
        let values = batch(start, end)?;
        let b = end - start;
        if values.len() != b * c * h * w {
            return Err(InferError::Invalid(format!(
                "images {start}..{end}: {} values for [{b}, {c}, {h}, {w}]",
                values.len()
            )));
        }
        let dtype = <B::FloatElem as burn::tensor::Element>::dtype();
        let x = Tensor::<B, 4>::from_data(TensorData::new(values, [b, c, h, w]), (device, dtype));
        let e = embed_tensor(model, x, options);
        dim = e.dims()[1];
        out.extend(
            visage_io::read_back::<f32, B, 2>(e)
                .map_err(|e| InferError::Train(e.into()))?
                .0,
        );
        progress.advance(b as u64);
        start = end;
    }
    progress.finish();
    Ok(Embeddings::new(n, dim, out)?)
}
