//! Embeddings of images for evaluation: inference mode, optional flip fusion
//! (`f(img) + f(mirror(img))`, summed before any normalisation), in batches.

use burn::tensor::{backend::Backend, Tensor};
use visage_backbones::Backbone;
use visage_data::{ImageBatcher, ImageSample};
use visage_eval::Embeddings;

use crate::TrainError;

/// Embeds `samples` with `backbone` (already in inference mode, i.e. on a non-autodiff
/// backend), `batch` images at a time. Images become inputs by [`visage_data::channels`]'
/// rule: RGB for 3 input channels, BT.601 luma for 1 (as in training).
pub fn embed_samples<B: Backend>(
    backbone: &Backbone<B>,
    samples: &[ImageSample],
    in_channels: usize,
    flip: bool,
    batch: usize,
    device: &B::Device,
) -> Result<Embeddings, TrainError> {
    let mut data = Vec::new();
    let mut dim = 0;
    for chunk in samples.chunks(batch.max(1)) {
        let images = ImageBatcher
            .batch_channels::<B>(chunk, in_channels, device)?
            .images;
        let mut e: Tensor<B, 2> = backbone.forward(images.clone());
        if flip {
            e = e + backbone.forward(images.flip([3]));
        }
        dim = e.dims()[1];
        data.extend(visage_io::read_back::<f32, B, 2>(e)?.0);
    }
    Ok(Embeddings::new(samples.len(), dim, data)?)
}
