//! # visage-data
//!
//! Face datasets for visage: the built-in synthetic identities, InsightFace RecordIO packs and
//! `.bin` verification packs, LFW in its original layout, image folders, MNIST IDX, five-point
//! alignment, and parallel decoding, augmentation and batching into Burn tensors.
//!
//! A training epoch on the built-in synthetic identities, and held-out verification pairs:
//!
//! ```
//! use visage_data::{held_out_verification, AugmentConfig, BatchPlan, SynthConfig, SyntheticDataset, SyntheticSplit, TrainBatches};
//! type B = burn::backend::Flex;
//! let cfg = SynthConfig { size: 16, ..SynthConfig::default() };
//! let train = SyntheticDataset::new(cfg, SyntheticSplit::Train, 8, 4);
//! let plan = BatchPlan::Shuffled { batch_size: 8, drop_last: true };
//! let device = Default::default();
//! for batch in TrainBatches::<B, _>::new(&train, plan, AugmentConfig::default(), 0, 0, &device).unwrap() {
//!     let batch = batch.unwrap();
//!     assert_eq!(batch.images.dims(), [8, 3, 16, 16]); // (x / 255 - 0.5) / 0.5
//!     assert_eq!(batch.labels.dims(), [8]);
//! }
//! // 10 folds x (2 genuine + 2 impostor) pairs over 6 held-out identities.
//! let (pairs, list) = held_out_verification(cfg, 6, 3, 10, 2, 0).unwrap();
//! assert_eq!((pairs.samples.len(), pairs.issame.len(), list.genuine()), (80, 40, 20));
//! ```
//!
//! Every reader takes untrusted files: malformed input gives a [`DataError`] naming the file and
//! the record, offset or field, never a panic and never a silent wrong label.

pub mod align_folder;
pub mod alignment;
pub mod augment;
pub mod batcher;
pub mod bin_pack;
pub mod burn_dataset;
pub mod channels;
pub mod error;
pub mod image_folder;
pub mod inspect;
pub mod lfw;
pub mod loader;
pub mod mnist;
pub mod pairs;
pub mod pickle;
pub mod read;
pub mod recordio;
pub mod rng;
pub mod sample;
pub mod sampler;
pub mod source;
pub mod synthetic;

pub use alignment::{AlignTemplate, Similarity};
pub use augment::AugmentConfig;
pub use batcher::{ImageBatch, ImageBatcher};
pub use bin_pack::BinPack;
pub use burn_dataset::{BatchItem, BurnDataset, ChannelBatcher, SampleError, SampleItem};
pub use channels::{luma_bt601, to_chw, write_chw};
pub use error::{DataError, Result};
pub use image_folder::ImageFolder;
pub use inspect::{inspect, Inspection};
pub use lfw::Lfw;
pub use loader::{load_samples, TrainBatches};
pub use mnist::Mnist;
pub use pairs::{PairList, VerificationSet};
pub use recordio::RecordIo;
pub use rng::SplitMix64;
pub use sample::ImageSample;
pub use sampler::BatchPlan;
pub use source::SampleSource;
pub use synthetic::held_out_verification;
pub use synthetic::{SynthConfig, SyntheticDataset, SyntheticFaces, SyntheticSplit};
