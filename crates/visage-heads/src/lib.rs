//! # visage-heads
//!
//! The loss heads of the face-representation literature, generic over Burn's `Backend`,
//! built from three parts as in the literature and InsightFace's arcface_torch:
//!
//! - a **classifier** ([`classifier::Classifier`]) that owns the class weights `[C * K, d]`
//!   and produces cosines (the normalised family) or raw logits `x W^T + b` (the Euclidean
//!   family);
//! - **margins** ([`margin`]): public functions from the target cosine (and, for L-Softmax
//!   and A-Softmax, the norms) to the target logit, usable on any logits;
//! - the **loss** ([`loss`]): cross-entropy on the logits, or the metric losses on the
//!   embeddings.
//!
//! The heads ([`heads`]) put them together, one file each:
//!
//! | kind | config | paper |
//! |---|---|---|
//! | `softmax` | [`heads::SoftmaxConfig`] | DeepFace / DeepID |
//! | `contrastive` | [`loss::ContrastiveConfig`] | DeepID2 verification signal (Sun 2014) |
//! | `deepid2` | [`heads::DeepId2Config`] | softmax + lambda contrastive (Sun 2014) |
//! | `triplet` | [`loss::TripletConfig`] | FaceNet (Schroff 2015) |
//! | `center` | [`heads::CenterConfig`] | Wen 2016 |
//! | `lsoftmax` | [`heads::LSoftmaxConfig`] | Liu 2016 |
//! | `sphereface` | [`heads::SphereFaceConfig`] | A-Softmax, Liu 2017 |
//! | `normface` | [`heads::NormFaceConfig`] | Wang 2017 |
//! | `cosface` | [`heads::CosFaceConfig`] | Wang 2018 (AM-Softmax) |
//! | `arcface` | [`heads::ArcFaceConfig`] | Deng 2019 |
//! | `combined` | [`heads::CombinedMarginConfig`] | ArcFace paper, eq. 4 |
//! | `adacos` | [`heads::AdaCosConfig`] | Zhang 2019 |
//! | `subcenter_arcface` | [`heads::SubCenterArcFaceConfig`] | Deng 2020 (ECCV) |
//!
//! [`HeadConfig`] is the TOML `[head]` table (`kind = "arcface"` plus the kind's fields), the
//! one place it is parsed and validated; [`HeadConfig::init`] gives a [`Head`] module whose
//! [`Head::forward`] returns a [`HeadOutput`]: the loss (a mean over the batch) and, for
//! classification heads, the logits actually fed to the cross-entropy.
//!
//! ```ignore
//! use visage_heads::{HeadConfig, HeadState};
//! let config: HeadConfig = toml::from_str("kind = \"arcface\"\nscale = 64.0\nmargin = 0.5")?;
//! let head = config.init::<B>(classes, 512, &device)?;
//! let out = head.forward(embeddings, labels, &mut HeadState::default());
//! out.loss.backward();
//!
//! // or the parts on your own model:
//! use visage_heads::{classifier::ClassifierConfig, loss, margin};
//! let classifier = ClassifierConfig::new(classes, 512).init::<B>(&device);
//! let cos = classifier.cosines(embeddings); // [N, C]
//! let logits = margin::apply_to_target(cos, labels.clone(), |c| margin::arcface(c, 0.5, false))
//!     .mul_scalar(64.0);
//! let loss = loss::cross_entropy(logits, labels);
//! ```
//!
//! ## Edge cases
//! - Zero embeddings (or zero class weights) are normalised to zero vectors, so their cosines
//!   are 0 and they get no gradient (each row is divided by its largest magnitude before it is
//!   squared, so the norm neither overflows nor divides by zero; see `ops::l2_normalize`).
//! - `cos = +-1` exactly: `sqrt(1 - c^2)` and `acos` see `c` clamped to `+-(1 - 1e-7)`.
//! - ArcFace with `theta + m > pi` falls back (th/mm by default, or `easy_margin`).
//! - Metric losses with no valid pair or triplet give loss 0 and zero gradient.

pub mod check;
pub mod classifier;
mod error;
mod head;
pub mod heads;
pub mod loss;
pub mod margin;
pub mod ops;
mod output;
pub mod sharded;

pub use error::HeadError;
pub use head::{Head, HeadState, HeadTensors};
pub use heads::{HeadConfig, HeadKind};
pub use output::HeadOutput;
