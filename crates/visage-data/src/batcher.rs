//! Image samples to Burn tensors: `(x / 255 - 0.5) / 0.5` into `[N, 3, H, W]` f32 plus labels
//! `[N]` Int.
//!
//! [`ImageBatcher::batch`] has the shape of Burn's `Batcher` (`items`, `device`) but returns a
//! `Result`, since decoded images may disagree in size; Burn's own `Batcher` trait is
//! implemented for it in [`crate::burn_dataset`], with the error inside the batch.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::channels::{check_channels, write_chw};
use crate::error::{DataError, Result};
use crate::sample::ImageSample;

/// A batch ready for a model: images `[N, 3, H, W]` in [-1, 1] and class labels `[N]`.
#[derive(Debug, Clone)]
pub struct ImageBatch<B: Backend> {
    /// Normalised images, NCHW.
    pub images: Tensor<B, 4>,
    /// Class labels.
    pub labels: Tensor<B, 1, Int>,
}

/// Converts HWC u8 samples (all of one size) to normalised NCHW f32 values, `(x/255-0.5)/0.5`,
/// three (RGB) channels.
///
/// # Shapes
/// - `samples`: N images of `[H, W, 3]`
/// - returns `N * 3 * H * W` values and the shape `[N, 3, H, W]`
pub fn normalise_nchw(samples: &[ImageSample]) -> Result<(Vec<f32>, [usize; 4])> {
    normalise_nchw_channels(samples, 3)
}

/// Converts HWC u8 samples (all of one size) to the `channels`-plane input of a model by the
/// one channel rule of [`crate::channels`]: RGB for 3 channels, BT.601 luma for 1.
///
/// # Shapes
/// - `samples`: N images of `[H, W, 3]`
/// - returns `N * channels * H * W` values and the shape `[N, channels, H, W]`
pub fn normalise_nchw_channels(
    samples: &[ImageSample],
    channels: usize,
) -> Result<(Vec<f32>, [usize; 4])> {
    check_channels(channels)?;
    let first = samples
        .first()
        .ok_or_else(|| DataError::Invalid("empty batch".into()))?;
    let (h, w) = (first.height, first.width);
    let per = channels * h * w;
    let mut out = vec![0f32; samples.len() * per];
    for (n, s) in samples.iter().enumerate() {
        if (s.height, s.width) != (h, w) || s.pixels.len() != h * w * 3 {
            return Err(DataError::Invalid(format!(
                "batch item {n} is {}x{} ({} bytes), item 0 is {h}x{w}: resize or align images to one size",
                s.height,
                s.width,
                s.pixels.len()
            )));
        }
        write_chw(s, channels, &mut out[n * per..(n + 1) * per])?;
    }
    Ok((out, [samples.len(), channels, h, w]))
}

/// Builds [`ImageBatch`]es on a device.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImageBatcher;

impl ImageBatcher {
    /// Stacks `items` into a batch of three (RGB) channels on `device`.
    ///
    /// # Shapes
    /// - `items`: N images of `[H, W, 3]`
    /// - returns images `[N, 3, H, W]`, labels `[N]`
    pub fn batch<B: Backend>(
        &self,
        items: &[ImageSample],
        device: &B::Device,
    ) -> Result<ImageBatch<B>> {
        self.batch_channels(items, 3, device)
    }

    /// Stacks `items` into a batch on `device` for a model of `channels` input channels (the
    /// rule of [`crate::channels`]: RGB for 3, BT.601 luma for 1).
    ///
    /// # Shapes
    /// - `items`: N images of `[H, W, 3]`
    /// - returns images `[N, channels, H, W]`, labels `[N]`
    pub fn batch_channels<B: Backend>(
        &self,
        items: &[ImageSample],
        channels: usize,
        device: &B::Device,
    ) -> Result<ImageBatch<B>> {
        let (values, shape) = normalise_nchw_channels(items, channels)?;
        let labels: Vec<i64> = items.iter().map(|s| s.label as i64).collect();
        let images = Tensor::<B, 4>::from_data(TensorData::new(values, shape), device);
        let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [items.len()]), device);
        Ok(ImageBatch { images, labels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type B = burn::backend::Flex;

    #[test]
    fn layout_and_values_match_plain_loops() {
        let a = ImageSample {
            pixels: (0..12).map(|v| (v * 20) as u8).collect(),
            height: 2,
            width: 2,
            label: 4,
        };
        let b = ImageSample {
            pixels: vec![255; 12],
            height: 2,
            width: 2,
            label: 9,
        };
        let batch = ImageBatcher
            .batch::<B>(&[a.clone(), b], &Default::default())
            .unwrap();
        assert_eq!(batch.images.dims(), [2, 3, 2, 2]);
        let v: Vec<f32> = batch.images.into_data().to_vec().unwrap();
        for c in 0..3 {
            for y in 0..2 {
                for x in 0..2 {
                    let raw = a.pixels[(y * 2 + x) * 3 + c] as f64;
                    let expect = (raw / 255.0 - 0.5) / 0.5;
                    let got = v[c * 4 + y * 2 + x] as f64;
                    assert!(
                        (got - expect).abs() < 1e-6,
                        "c{c} y{y} x{x}: {got} vs {expect}"
                    );
                    assert!((v[12 + c * 4 + y * 2 + x] - 1.0).abs() < 1e-6);
                }
            }
        }
        // Pixel 0 channel 0 is 0 -> -1; pixel 3 channel 2 is 11*20 = 220 -> 220/127.5 - 1.
        assert_eq!(v[0], -1.0);
        let labels: Vec<i64> = batch.labels.into_data().convert::<i64>().to_vec().unwrap();
        assert_eq!(labels, vec![4, 9]);
    }

    #[test]
    fn mixed_sizes_and_empty_batches_are_errors() {
        let a = ImageSample {
            pixels: vec![0; 12],
            height: 2,
            width: 2,
            label: 0,
        };
        let b = ImageSample {
            pixels: vec![0; 27],
            height: 3,
            width: 3,
            label: 0,
        };
        let e = ImageBatcher
            .batch::<B>(&[a, b], &Default::default())
            .unwrap_err();
        assert!(e.to_string().contains("batch item 1 is 3x3"), "{e}");
        assert!(ImageBatcher.batch::<B>(&[], &Default::default()).is_err());
    }
}
