//! # visage-infer
//!
//! Inference with visage backbones, for any Burn backend: load a backbone from any supported
//! weights file (PyTorch `.pth` or `.safetensors` state dicts with InsightFace keys, Burn
//! records `.bin` written by `visage train`), embed images, a folder or a dataset with
//! optional flip fusion, and run a verification set end to end (what `visage eval` does).
//! Errors are typed ([`InferError`]) and name the file, tensor, image or setting at fault;
//! progress goes to a [`Progress`] the caller gives (this crate prints nothing).
//!
//! Images become model inputs by one rule, shared with training:
//! [`visage_data::channels`] (RGB for 3 input channels, ITU-R BT.601 luma for 1, each value
//! `(v / 255 - 0.5) / 0.5`).
//!
//! ```no_run
//! use visage_backbones::{BackboneConfig, BackboneKind};
//! use visage_infer::{evaluate, DatasetSpec, EvalRequest, ModelSpec, NoProgress, SyntheticPairs};
//! type B = burn::backend::Flex;
//!
//! let model = ModelSpec::new(BackboneConfig::new(BackboneKind::LeNetPP), "run/backbone.bin");
//! // a Burn backbone with the weights loaded, for your own forward passes
//! let backbone = model.resolve()?.load::<B>(&Default::default())?;
//! // or a whole verification run
//! let request = EvalRequest {
//!     model,
//!     dataset: DatasetSpec::Synthetic(SyntheticPairs::default()),
//!     flip: true,
//!     batch_size: 64,
//!     report: None,
//!     backend: "flex".into(),
//! };
//! let outcome = evaluate::<B>(&request, &Default::default(), &mut NoProgress)?;
//! println!("accuracy {}", outcome.report.verification.accuracy_mean);
//! # Ok::<(), visage_infer::InferError>(())
//! ```

pub mod dataset;
pub mod embed;
pub mod embed_input;
pub mod error;
pub mod evaluate;
pub mod image_input;
pub mod input_size;
pub mod model;
pub mod summary;
pub mod weights;

pub use dataset::{open_dataset, DatasetInfo, DatasetSpec, SyntheticPairs};
pub use embed::{embed_batches, embed_samples, embed_tensor, EmbedOptions};
pub use embed_input::{embed_input, paths_file_of, EmbedOutcome, EmbedRequest};
pub use error::{InferError, Result};
pub use evaluate::{evaluate, EvalOutcome, EvalReport, EvalRequest};
pub use image_input::{list_images, read_image_input, read_images_tensor, ImageInput};
pub use input_size::parse_hw;
pub use model::{backbone_config, load_backbone, BackboneSource, Model, ModelInfo, ModelSpec};
pub use summary::{summary_markdown, tar_text};
/// Progress reporting, shared by every visage library (defined in `visage-io`).
pub use visage_io::{NoProgress, Progress};
pub use weights::{embedding_dim_of, lenet_in_channels_of, Weights, WeightsFormat};
