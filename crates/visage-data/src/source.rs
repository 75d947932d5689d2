//! [`SampleSource`]: a random-access collection of labelled images, the common interface of
//! every dataset in this crate (synthetic, image folder, RecordIO, MNIST).

use crate::error::Result;
use crate::sample::ImageSample;

/// Random access to labelled images. Implementations are `Sync` so that batches can be decoded
/// in parallel.
pub trait SampleSource: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// True when there is no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class label of sample `index` without decoding its image.
    fn label(&self, index: usize) -> Result<usize>;

    /// Sample `index`, decoded.
    fn get(&self, index: usize) -> Result<ImageSample>;

    /// Number of classes (labels lie in `[0, num_classes)`).
    fn num_classes(&self) -> usize;
}
