//! # visage-data
//!
//! Face datasets for visage: the built-in synthetic identities, InsightFace RecordIO packs and
//! `.bin` verification packs, LFW in its original layout, image folders, MNIST IDX, five-point
//! alignment, and parallel decoding, augmentation and batching into Burn tensors.
//!
//! Every reader takes untrusted files: malformed input gives a [`DataError`] naming the file and
//! the record, offset or field, never a panic and never a silent wrong label.

pub mod alignment;
pub mod augment;
pub mod batcher;
pub mod bin_pack;
pub mod error;
pub mod image_folder;
pub mod inspect;
pub mod lfw;
pub mod loader;
pub mod mnist;
pub mod pairs;
pub mod pickle;
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
