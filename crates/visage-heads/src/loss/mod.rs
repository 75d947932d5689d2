//! Losses on top of the classifier and margins: softmax cross-entropy on logits, and the
//! metric losses on embeddings (contrastive, triplet, center).

mod center;
mod chunked;
mod contrastive;
mod cross_entropy;
mod triplet;

pub use center::{CenterLoss, CenterLossConfig};
pub use chunked::chunked_margin_cross_entropy;
pub use contrastive::{Contrastive, ContrastiveConfig};
pub use cross_entropy::{cross_entropy, cross_entropy_from_parts, log_sum_exp, merge_log_sum_exp};
pub use triplet::{Triplet, TripletConfig, TripletDistance, TripletMining, TripletReduction};
