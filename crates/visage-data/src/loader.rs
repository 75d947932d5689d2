//! [`TrainBatches`]: the training loop's view of a dataset, an iterator of augmented,
//! normalised batches, deterministic in (seed, epoch); images are decoded and augmented in
//! parallel with rayon.

use burn::tensor::backend::Backend;
use rayon::prelude::*;

use crate::augment::{augment, AugmentConfig};
use crate::batcher::{ImageBatch, ImageBatcher};
use crate::error::Result;
use crate::rng::SplitMix64;
use crate::sample::ImageSample;
use crate::sampler::{pk_batches, shuffled_batches, BatchPlan};
use crate::source::SampleSource;

/// Decodes `indices` of `source` in parallel (order preserved), without augmentation.
pub fn load_samples<S: SampleSource + ?Sized>(
    source: &S,
    indices: &[usize],
) -> Result<Vec<ImageSample>> {
    indices.par_iter().map(|&i| source.get(i)).collect()
}

/// Decodes and augments `indices` in parallel; the draws of item `j` come from
/// (`seed`, `epoch`, `batch`, `j`), so results do not depend on thread scheduling.
pub fn load_augmented<S: SampleSource + ?Sized>(
    source: &S,
    indices: &[usize],
    cfg: &AugmentConfig,
    seed: u64,
    epoch: u64,
    batch: u64,
) -> Result<Vec<ImageSample>> {
    indices
        .par_iter()
        .enumerate()
        .map(|(j, &i)| {
            let s = source.get(i)?;
            let mut r = SplitMix64::from_parts(&[seed, 0xA06, epoch, batch, j as u64]);
            Ok(augment(&s, cfg, &mut r))
        })
        .collect()
}

/// The labels of every sample of `source` (no image is decoded).
pub fn all_labels<S: SampleSource + ?Sized>(source: &S) -> Result<Vec<usize>> {
    (0..source.len()).map(|i| source.label(i)).collect()
}

/// One epoch of training batches.
pub struct TrainBatches<'a, B: Backend, S: SampleSource + ?Sized> {
    source: &'a S,
    batches: Vec<Vec<usize>>,
    next: usize,
    augment: AugmentConfig,
    seed: u64,
    epoch: u64,
    device: B::Device,
}

impl<'a, B: Backend, S: SampleSource + ?Sized> TrainBatches<'a, B, S> {
    /// Plans epoch `epoch` of `source` with `plan`; batches are built lazily by `next`.
    pub fn new(
        source: &'a S,
        plan: BatchPlan,
        augment: AugmentConfig,
        seed: u64,
        epoch: u64,
        device: &B::Device,
    ) -> Result<Self> {
        let batches = match plan {
            BatchPlan::Shuffled {
                batch_size,
                drop_last,
            } => shuffled_batches(source.len(), batch_size, drop_last, seed, epoch)?,
            BatchPlan::IdentitiesTimesImages { p, k } => {
                pk_batches(&all_labels(source)?, p, k, seed, epoch)?
            }
        };
        Ok(Self {
            source,
            batches,
            next: 0,
            augment,
            seed,
            epoch,
            device: device.clone(),
        })
    }

    /// Number of batches in the epoch.
    pub fn num_batches(&self) -> usize {
        self.batches.len()
    }

    /// The sample indices of every batch.
    pub fn plan(&self) -> &[Vec<usize>] {
        &self.batches
    }
}

impl<B: Backend, S: SampleSource + ?Sized> Iterator for TrainBatches<'_, B, S> {
    type Item = Result<ImageBatch<B>>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.next;
        let indices = self.batches.get(b)?;
        self.next += 1;
        Some(
            load_augmented(
                self.source,
                indices,
                &self.augment,
                self.seed,
                self.epoch,
                b as u64,
            )
            .and_then(|items| ImageBatcher.batch::<B>(&items, &self.device)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{SynthConfig, SyntheticDataset, SyntheticSplit};
    type B = burn::backend::Flex;

    #[test]
    fn epoch_is_deterministic_and_labels_match_plan() {
        let cfg = SynthConfig {
            size: 16,
            seed: 1,
            difficulty: 1.0,
        };
        let data = SyntheticDataset::new(cfg, SyntheticSplit::Train, 5, 3);
        let dev = Default::default();
        let plan = BatchPlan::Shuffled {
            batch_size: 4,
            drop_last: true,
        };
        let run = || {
            let it = TrainBatches::<B, _>::new(&data, plan, AugmentConfig::default(), 7, 2, &dev)
                .unwrap();
            let idx = it.plan().to_vec();
            let batches: Vec<_> = it.map(|b| b.unwrap()).collect();
            (idx, batches)
        };
        let (idx, a) = run();
        let (_, b) = run();
        assert_eq!(a.len(), 3);
        for ((x, y), ids) in a.iter().zip(&b).zip(&idx) {
            assert_eq!(x.images.dims(), [4, 3, 16, 16]);
            let xv: Vec<f32> = x.images.clone().into_data().to_vec().unwrap();
            let yv: Vec<f32> = y.images.clone().into_data().to_vec().unwrap();
            assert_eq!(xv, yv);
            let labels: Vec<i64> = x
                .labels
                .clone()
                .into_data()
                .convert::<i64>()
                .to_vec()
                .unwrap();
            let expect: Vec<i64> = ids.iter().map(|&i| (i / 3) as i64).collect();
            assert_eq!(labels, expect);
        }
    }

    #[test]
    fn augmentation_does_not_depend_on_thread_count() {
        let cfg = SynthConfig {
            size: 16,
            seed: 4,
            difficulty: 1.0,
        };
        let data = SyntheticDataset::new(cfg, SyntheticSplit::Train, 4, 4);
        let aug = AugmentConfig {
            crop_min_scale: 0.7,
            jitter: 0.3,
            grey_p: 0.3,
            resize_p: 0.5,
            ..AugmentConfig::default()
        };
        let idx: Vec<usize> = (0..16).rev().collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| load_augmented(&data, &idx, &aug, 1, 2, 3).unwrap())
        };
        let (a, b) = (run(1), run(3));
        assert_eq!(a, b);
        // Different epochs draw different augmentations.
        let c = load_augmented(&data, &idx, &aug, 1, 3, 3).unwrap();
        assert_ne!(a, c);
        // Labels survive augmentation.
        assert!(a.iter().zip(&idx).all(|(s, &i)| s.label == i / 4));
    }

    #[test]
    fn pk_plan_through_the_loader() {
        let cfg = SynthConfig {
            size: 8,
            seed: 1,
            difficulty: 1.0,
        };
        let data = SyntheticDataset::new(cfg, SyntheticSplit::Train, 6, 4);
        let it = TrainBatches::<B, _>::new(
            &data,
            BatchPlan::IdentitiesTimesImages { p: 2, k: 2 },
            AugmentConfig::none(),
            0,
            0,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(it.num_batches(), 3);
        for b in it {
            let l: Vec<i64> = b
                .unwrap()
                .labels
                .into_data()
                .convert::<i64>()
                .to_vec()
                .unwrap();
            assert_eq!(l[0], l[1]);
            assert_eq!(l[2], l[3]);
            assert_ne!(l[0], l[2]);
        }
    }
}
