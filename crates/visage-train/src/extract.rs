//! Embeddings of images in inference mode: optional flip fusion (`f(img) + f(mirror(img))`,
//! summed before any normalisation), optional L2 normalisation, in batches. The one
//! implementation of visage's embedding: training's held-out evaluation, `visage-infer`
//! (`visage embed`, `visage eval`) and the figures all embed through it.

use burn::tensor::{backend::Backend, Tensor};
use visage_backbones::Backbone;
use visage_data::{ImageBatcher, ImageSample};
use visage_eval::Embeddings;
use visage_io::Progress;

use crate::TrainError;

/// Embeds a batch of normalised images: `f(x)`, plus `f(mirror(x))` with `flip`, then
/// divided by the L2 norm (at least 1e-12) with `normalize`.
///
/// # Shapes
/// - `images`: `[N, C, H, W]`, the backbone's input channels and size
/// - returns `[N, d]`
pub fn embed_tensor<B: Backend>(
    backbone: &Backbone<B>,
    images: Tensor<B, 4>,
    flip: bool,
    normalize: bool,
) -> Tensor<B, 2> {
    let mut e = backbone.forward(images.clone());
    if flip {
        e = e + backbone.forward(images.flip([3]));
    }
    if normalize {
        let norm = e.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
        e = e / norm;
    }
    e
}

/// Embeds `samples` with `backbone` (already in inference mode, i.e. on a non-autodiff
/// backend), `batch` images at a time, with flip fusion when `flip`. Images become inputs by
/// [`visage_data::channels`]' rule: RGB for 3 input channels, BT.601 luma for 1 (as in
/// training). [`embed_samples_with`] also normalises and reports progress.
///
/// # Shapes
/// - `samples`: N images of `[H, W, 3]`, the backbone's input size
/// - returns embeddings `[N, d]`
pub fn embed_samples<B: Backend>(
    backbone: &Backbone<B>,
    samples: &[ImageSample],
    in_channels: usize,
    flip: bool,
    batch: usize,
    device: &B::Device,
) -> Result<Embeddings, TrainError> {
    let mut quiet = visage_io::NoProgress;
    embed_samples_with(
        backbone,
        samples,
        in_channels,
        flip,
        false,
        batch,
        &mut quiet,
        device,
    )
}

/// [`embed_samples`] with L2 normalisation of each embedding (after the flip sum) when
/// `normalize`, reporting a stage `"embed"` of `samples.len()` steps to `progress`.
///
/// # Shapes
/// - `samples`: N images of `[H, W, 3]`, the backbone's input size
/// - returns embeddings `[N, d]`
///
/// # Errors
/// Images of mixed sizes or an unsupported channel count ([`TrainError::Data`]); a tensor
/// that cannot be read back ([`TrainError::ReadBack`]).
#[allow(clippy::too_many_arguments)]
pub fn embed_samples_with<B: Backend>(
    backbone: &Backbone<B>,
    samples: &[ImageSample],
    in_channels: usize,
    flip: bool,
    normalize: bool,
    batch: usize,
    progress: &mut dyn Progress,
    device: &B::Device,
) -> Result<Embeddings, TrainError> {
    progress.start("embed", samples.len() as u64);
    let mut data = Vec::new();
    let mut dim = 0;
    for chunk in samples.chunks(batch.max(1)) {
        let images = ImageBatcher
            .batch_channels::<B>(chunk, in_channels, device)?
            .images;
        let e = embed_tensor(backbone, images, flip, normalize);
        dim = e.dims()[1];
        data.extend(visage_io::read_back::<f32, B, 2>(e)?.0);
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    Ok(Embeddings::new(samples.len(), dim, data)?)
}
