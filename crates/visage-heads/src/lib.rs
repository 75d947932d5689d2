//! # visage-heads
//!
//! The loss heads of the face-representation literature, generic over Burn's `Backend`:
//!
//! | head | file | paper |
//! |---|---|---|
//! | [`Softmax`] | `softmax.rs` | DeepFace / DeepID |
//! | [`Contrastive`] | `contrastive.rs` | DeepID2 verification signal (Sun 2014) |
//! | [`DeepId2`] | `deepid2.rs` | softmax + lambda contrastive (Sun 2014) |
//! | [`Triplet`] | `triplet.rs` | FaceNet (Schroff 2015) |
//! | [`CenterLoss`] | `center.rs` | Wen 2016 |
//! | [`LSoftmax`] | `lsoftmax.rs` | Liu 2016 |
//! | [`SphereFace`] | `sphereface.rs` | A-Softmax, Liu 2017 |
//! | [`NormFace`] | `normface.rs` | Wang 2017 |
//! | [`CosFace`] | `cosface.rs` | Wang 2018 (AM-Softmax) |
//! | [`ArcFace`] | `arcface.rs` | Deng 2019 |
//! | [`CombinedMargin`] | `combined.rs` | ArcFace paper, eq. 4 |
//! | [`AdaCos`] | `adacos.rs` | Zhang 2019 |
//!
//! Each head has a `#[derive(Config)]` with the paper's defaults whose `init` returns the
//! module (or a [`HeadError`] naming the bad field), and a `forward` giving a [`HeadOutput`]:
//! the loss (a mean over the batch) and, for classification heads, the logits actually fed
//! to the cross-entropy. [`Head`] wraps any of them for a training loop; [`HeadSpec`] is the
//! TOML `[head]` table. Class weights are `[C, d]`, row = class (InsightFace's layout).
//!
//! ## Edge cases
//! - Zero embeddings (or zero class weights) are normalised to zero vectors, so their cosines
//!   are 0 and their gradients finite (the norm is clamped at 1e-12 before the square root).
//! - `cos = +-1` exactly: `sqrt(1 - c^2)` and `acos` see `c` clamped to `+-(1 - 1e-7)`.
//! - ArcFace with `theta + m > pi` falls back (th/mm by default, or `easy_margin`).
//! - Metric losses with no valid pair or triplet give loss 0 and zero gradient.

mod adacos;
mod annealing;
mod arcface;
mod center;
mod check;
mod chunked;
mod class_weight;
mod combined;
mod contrastive;
mod cosface;
mod cross_entropy;
mod deepid2;
mod error;
mod head;
mod lsoftmax;
mod margin;
mod normalize;
mod normface;
mod output;
mod pairwise;
mod psi;
mod softmax;
mod spec;
mod sphereface;
mod target;
mod triplet;

pub use adacos::{adacos_dynamic_scale, AdaCos, AdaCosConfig, ADACOS_MIN_SCALE};
pub use annealing::Annealing;
pub use arcface::{arcface_target, ArcFace, ArcFaceConfig};
pub use center::{CenterLoss, CenterLossConfig};
pub use chunked::chunked_margin_cross_entropy;
pub use check::{check_batch, check_labels, MAX_MARGIN, MAX_SCALE};
pub use class_weight::CLASS_WEIGHT_INIT_STD;
pub use combined::{CombinedMargin, CombinedMarginConfig};
pub use contrastive::{Contrastive, ContrastiveConfig};
pub use cosface::{CosFace, CosFaceConfig};
pub use cross_entropy::cross_entropy;
pub use deepid2::{DeepId2, DeepId2Config};
pub use error::HeadError;
pub use head::{Head, HeadState, HeadTensors, MetricHead, MetricLoss};
pub use lsoftmax::{LSoftmax, LSoftmaxConfig};
pub use margin::COS_EPS;
pub use normalize::{cosine_matrix, l2_norm, l2_normalize, NORM_EPS};
pub use normface::{NormFace, NormFaceConfig};
pub use output::HeadOutput;
pub use pairwise::pairwise_squared_distances;
pub use psi::psi;
pub use softmax::{Softmax, SoftmaxConfig};
pub use spec::{HeadConfig, HeadKind, HeadSpec};
pub use sphereface::{SphereFace, SphereFaceConfig};
pub use triplet::{Triplet, TripletConfig, TripletDistance, TripletMining, TripletReduction};
