//! Input validation shared by every head: shapes, empty batches, label ranges.

use burn::tensor::{backend::Backend, Int, Tensor};

use crate::HeadError;

/// Checks `embeddings` is `[N >= 1, dim]` and `labels` is `[N]`.
pub fn check_batch<B: Backend>(
    embeddings: &Tensor<B, 2>,
    labels: &Tensor<B, 1, Int>,
    dim: Option<usize>,
) -> Result<(), HeadError> {
    let [n, d] = embeddings.dims();
    if n == 0 {
        return Err(HeadError::EmptyBatch);
    }
    if let Some(expected) = dim {
        if d != expected {
            return Err(HeadError::Shape {
                tensor: "embeddings",
                actual: vec![n, d],
                expected: format!("[N, {expected}] (the head's embedding width)"),
            });
        }
    }
    let [nl] = labels.dims();
    if nl != n {
        return Err(HeadError::Shape {
            tensor: "labels",
            actual: vec![nl],
            expected: format!("[{n}] (one label per embedding row)"),
        });
    }
    Ok(())
}

/// Checks every label lies in `[0, classes)`. Reads the labels back to the host.
pub fn check_labels<B: Backend>(
    labels: &Tensor<B, 1, Int>,
    classes: usize,
) -> Result<(), HeadError> {
    let values = labels
        .to_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .map_err(|e| HeadError::Shape {
            tensor: "labels",
            actual: labels.dims().to_vec(),
            expected: format!("integer labels ({e:?})"),
        })?;
    for (index, &label) in values.iter().enumerate() {
        if label < 0 || label as u64 >= classes as u64 {
            return Err(HeadError::LabelOutOfRange {
                index,
                label,
                classes,
            });
        }
    }
    Ok(())
}

/// Rejects a value of `field` outside `[lo, hi)` (or non-finite).
pub fn in_range(
    field: &'static str,
    value: f64,
    lo: f64,
    hi: f64,
    what: &str,
) -> Result<f64, HeadError> {
    if value.is_finite() && value >= lo && value < hi {
        Ok(value)
    } else {
        Err(HeadError::InvalidField {
            field,
            value: show(value),
            expected: what.to_string(),
        })
    }
}

/// Rejects a non-finite or negative value of `field`.
pub fn non_negative(field: &'static str, value: f64) -> Result<f64, HeadError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(HeadError::InvalidField {
            field,
            value: show(value),
            expected: "a finite number >= 0".into(),
        })
    }
}

/// Largest accepted logit scale `s` (every head with a `scale`, AdaCos's dynamic scale, a
/// learnable NormFace scale's initial value).
///
/// Published scales are 16 to 64 (AdaCos's fixed `sqrt(2) ln(C - 1)` is 19.5 for a million
/// classes); `1e4` leaves two orders of magnitude beyond them while keeping every logit
/// `s (cos - m3)` and its gradient within `+-2e4`, finite even in f16 (65,504). `1e300` gives
/// an f32 infinity and NaN logits, which is why there is a bound at all.
pub const MAX_SCALE: f64 = 1e4;

/// Largest accepted distance margin (contrastive, DeepID2 and triplet `margin`) and DeepID2
/// `lambda`: `1e4`, so that `margin^2` and `lambda * loss` stay far inside f32's range.
pub const MAX_MARGIN: f64 = 1e4;

/// Rejects a scale outside `(0, MAX_SCALE]` (or non-finite), naming `field`.
pub fn scale(field: &'static str, value: f64) -> Result<f64, HeadError> {
    if value.is_finite() && value > 0.0 && value <= MAX_SCALE {
        Ok(value)
    } else {
        Err(HeadError::InvalidField {
            field,
            value: show(value),
            expected: format!("a finite scale in (0, {MAX_SCALE:e}]"),
        })
    }
}

/// Rejects a value of `field` outside `(0, hi]` (or non-finite).
pub fn positive_at_most(field: &'static str, value: f64, hi: f64) -> Result<f64, HeadError> {
    if value.is_finite() && value > 0.0 && value <= hi {
        Ok(value)
    } else {
        Err(HeadError::InvalidField {
            field,
            value: show(value),
            expected: format!("a finite number in (0, {hi:e}]"),
        })
    }
}

/// Rejects a value of `field` outside `[0, hi]` (or non-finite).
pub fn non_negative_at_most(field: &'static str, value: f64, hi: f64) -> Result<f64, HeadError> {
    if value.is_finite() && value >= 0.0 && value <= hi {
        Ok(value)
    } else {
        Err(HeadError::InvalidField {
            field,
            value: show(value),
            expected: format!("a finite number in [0, {hi:e}]"),
        })
    }
}

/// A field's value for an error message: plain for ordinary magnitudes, scientific for huge
/// or tiny ones (`1e300` rather than three hundred digits).
fn show(value: f64) -> String {
    let a = value.abs();
    if value.is_finite() && a != 0.0 && !(1e-4..1e6).contains(&a) {
        format!("{value:e}")
    } else {
        value.to_string()
    }
}
