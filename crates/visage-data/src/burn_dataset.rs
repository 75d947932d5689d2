//! Burn's data traits for visage datasets: [`burn::data::dataset::Dataset`] for every
//! [`SampleSource`] (synthetic identities, image folders, RecordIO packs, MNIST IDX) and for a
//! decoded [`VerificationSet`] (`.bin` packs, LFW), and [`burn::data::dataloader::Batcher`] for
//! the image batchers, so Burn's `DataLoaderBuilder` iterates any of them.
//!
//! Burn's `Dataset::get` returns an `Option`, and Burn's loaders end an epoch at the first
//! `None`; a decode error must not pass for the end of the data. So [`BurnDataset`] yields
//! `Result<ImageSample, SampleError>` items and the batchers turn them into
//! `Result<ImageBatch, SampleError>`: a malformed file reaches the consumer of the batch as a
//! typed error that names the sample and the file, not as a short epoch or a panic inside a
//! loader thread.
//!
//! Items come out as stored: no augmentation is applied (visage's own [`crate::TrainBatches`]
//! augments with draws seeded by seed, epoch, batch and position).
//!
//! ```
//! use burn::data::dataloader::DataLoaderBuilder;
//! use visage_data::{BurnDataset, ImageBatcher, SynthConfig, SyntheticDataset, SyntheticSplit};
//! type B = burn::backend::Flex;
//! let cfg = SynthConfig { size: 8, ..SynthConfig::default() };
//! let data = BurnDataset::new(SyntheticDataset::new(cfg, SyntheticSplit::Train, 3, 2));
//! let loader = DataLoaderBuilder::<B, _, _>::new(ImageBatcher).batch_size(4).build(data);
//! let sizes: Vec<usize> = loader.iter().map(|b| b.unwrap().labels.dims()[0]).collect();
//! assert_eq!(sizes, [4, 2]);
//! ```

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::backend::Backend;

use crate::batcher::{ImageBatch, ImageBatcher};
use crate::error::DataError;
use crate::pairs::VerificationSet;
use crate::sample::ImageSample;
use crate::source::SampleSource;

/// A sample that could not be read, or a batch that could not be built, carried through Burn's
/// data loader (whose items must be `Clone`, hence the shared error).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: {error}")]
pub struct SampleError {
    /// Which sample or batch failed (`sample 17`, `batch of 32 items`).
    pub what: String,
    /// The reader's or batcher's error, naming the file and record where it applies.
    pub error: Arc<DataError>,
}

impl SampleError {
    fn new(what: impl Into<String>, error: DataError) -> Self {
        Self {
            what: what.into(),
            error: Arc::new(error),
        }
    }
}

/// One item of a [`BurnDataset`]: the decoded sample or why it could not be read.
pub type SampleItem = Result<ImageSample, SampleError>;

/// One batch of Burn's data loader over visage data.
pub type BatchItem<B> = Result<ImageBatch<B>, SampleError>;

/// Any [`SampleSource`] as a Burn [`Dataset`] of [`SampleItem`]s, in the source's own order
/// (Burn's `DataLoaderBuilder::shuffle` permutes it).
#[derive(Debug, Clone)]
pub struct BurnDataset<S> {
    source: S,
}

impl<S: SampleSource> BurnDataset<S> {
    /// Wraps `source`.
    pub fn new(source: S) -> Self {
        Self { source }
    }

    /// The wrapped source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The class count of the wrapped source.
    pub fn num_classes(&self) -> usize {
        self.source.num_classes()
    }
}

impl<S: SampleSource> Dataset<SampleItem> for BurnDataset<S> {
    fn get(&self, index: usize) -> Option<SampleItem> {
        (index < self.source.len()).then(|| {
            self.source
                .get(index)
                .map_err(|e| SampleError::new(format!("sample {index}"), e))
        })
    }

    fn len(&self) -> usize {
        self.source.len()
    }
}

/// A boxed source (what `visage_train::data::open_training` returns) is a source too.
impl SampleSource for Box<dyn SampleSource> {
    fn len(&self) -> usize {
        self.as_ref().len()
    }
    fn label(&self, index: usize) -> crate::Result<usize> {
        self.as_ref().label(index)
    }
    fn get(&self, index: usize) -> crate::Result<ImageSample> {
        self.as_ref().get(index)
    }
    fn num_classes(&self) -> usize {
        self.as_ref().num_classes()
    }
    fn check_labels(&self) -> crate::Result<()> {
        self.as_ref().check_labels()
    }
}

/// A shared source is a source too.
impl<S: SampleSource + ?Sized> SampleSource for Arc<S> {
    fn len(&self) -> usize {
        self.as_ref().len()
    }
    fn label(&self, index: usize) -> crate::Result<usize> {
        self.as_ref().label(index)
    }
    fn get(&self, index: usize) -> crate::Result<ImageSample> {
        self.as_ref().get(index)
    }
    fn num_classes(&self) -> usize {
        self.as_ref().num_classes()
    }
    fn check_labels(&self) -> crate::Result<()> {
        self.as_ref().check_labels()
    }
}

/// A decoded verification set (`.bin` pack, LFW, synthetic held-out pairs): its `2N` images in
/// pair order (images `2i` and `2i + 1` form pair `i`), already decoded, so no item fails.
impl Dataset<ImageSample> for VerificationSet {
    fn get(&self, index: usize) -> Option<ImageSample> {
        self.samples.get(index).cloned()
    }

    fn len(&self) -> usize {
        self.samples.len()
    }
}

/// Batches decoded samples for a model of a given number of input channels (3: RGB, 1: BT.601
/// luma; the rule of [`crate::channels`]). [`ImageBatcher`] is the three-channel case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelBatcher {
    /// Input channels of the model: 1 or 3.
    pub channels: usize,
}

fn batch_items<B: Backend>(
    items: Vec<SampleItem>,
    channels: usize,
    device: &B::Device,
) -> BatchItem<B> {
    let n = items.len();
    let samples = items.into_iter().collect::<Result<Vec<_>, _>>()?;
    ImageBatcher
        .batch_channels::<B>(&samples, channels, device)
        .map_err(|e| SampleError::new(format!("batch of {n} items"), e))
}

fn batch_samples<B: Backend>(
    items: Vec<ImageSample>,
    channels: usize,
    device: &B::Device,
) -> BatchItem<B> {
    ImageBatcher
        .batch_channels::<B>(&items, channels, device)
        .map_err(|e| SampleError::new(format!("batch of {} items", items.len()), e))
}

/// # Shapes
/// - `items`: N samples of `[H, W, 3]`
/// - returns images `[N, 3, H, W]` in [-1, 1], labels `[N]`; the first failed item's error
///   otherwise
impl<B: Backend> Batcher<B, SampleItem, BatchItem<B>> for ImageBatcher {
    fn batch(&self, items: Vec<SampleItem>, device: &B::Device) -> BatchItem<B> {
        batch_items(items, 3, device)
    }
}

/// # Shapes
/// - `items`: N samples of `[H, W, 3]`
/// - returns images `[N, 3, H, W]` in [-1, 1], labels `[N]`
impl<B: Backend> Batcher<B, ImageSample, BatchItem<B>> for ImageBatcher {
    fn batch(&self, items: Vec<ImageSample>, device: &B::Device) -> BatchItem<B> {
        batch_samples(items, 3, device)
    }
}

/// # Shapes
/// - `items`: N samples of `[H, W, 3]`
/// - returns images `[N, channels, H, W]` in [-1, 1], labels `[N]`; the first failed item's
///   error otherwise
impl<B: Backend> Batcher<B, SampleItem, BatchItem<B>> for ChannelBatcher {
    fn batch(&self, items: Vec<SampleItem>, device: &B::Device) -> BatchItem<B> {
        batch_items(items, self.channels, device)
    }
}

/// # Shapes
/// - `items`: N samples of `[H, W, 3]`
/// - returns images `[N, channels, H, W]` in [-1, 1], labels `[N]`
impl<B: Backend> Batcher<B, ImageSample, BatchItem<B>> for ChannelBatcher {
    fn batch(&self, items: Vec<ImageSample>, device: &B::Device) -> BatchItem<B> {
        batch_samples(items, self.channels, device)
    }
}
