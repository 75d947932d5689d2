//! [`SampleSource`]: a random-access collection of labelled images, the common interface of
//! every dataset in this crate (synthetic, image folder, RecordIO, MNIST).

use crate::error::{DataError, Result};
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

    /// Checks that every label lies in `[0, num_classes)`: the data-side check to run before
    /// training starts (a label past the class count would otherwise fail inside the loss, in
    /// the middle of a run). The default reads every label; readers with metadata (RecordIO)
    /// override it to name the record and where the class count comes from.
    fn check_labels(&self) -> Result<()> {
        let classes = self.num_classes();
        for i in 0..self.len() {
            let label = self.label(i)?;
            if label >= classes {
                return Err(DataError::Invalid(format!(
                    "sample {i}: label {label} is outside the {classes} classes of the data source"
                )));
            }
        }
        Ok(())
    }
}
