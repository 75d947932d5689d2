//! How far one backend's numbers are from the reference backend's.
//!
//! For a quantity with reference values `r` and other values `a` (same shape):
//! - `max_abs = max_i |a_i - r_i|`;
//! - `max_rel = max_abs / max_i |r_i|`: the error relative to the quantity's own magnitude,
//!   so that entries near zero (a gradient component, a logit of 0) do not dominate the way
//!   an element-wise `|a - r| / |r|` would. When every `r_i` is 0 it is `max_abs` itself.
//!
//! Any NaN or infinity on either side makes the difference non-finite, which fails every
//! tolerance. Differences are computed in f64.

use serde::Serialize;

/// The difference between two tensors of one quantity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Diff {
    /// Largest absolute element difference.
    pub max_abs: f64,
    /// `max_abs` over the largest reference magnitude.
    pub max_rel: f64,
    /// Largest reference magnitude.
    pub scale: f64,
    /// Whether both sides were finite everywhere.
    pub finite: bool,
}

impl Diff {
    /// The difference of `other` from `reference` (see the module docs).
    pub fn between(
        reference: &[f32],
        reference_shape: &[usize],
        other: &[f32],
        other_shape: &[usize],
    ) -> anyhow::Result<Diff> {
        if reference_shape != other_shape || reference.len() != other.len() {
            anyhow::bail!("shape {other_shape:?} against the reference's {reference_shape:?}");
        }
        let mut max_abs = 0f64;
        let mut scale = 0f64;
        let mut finite = true;
        for (&r, &a) in reference.iter().zip(other) {
            if !(r.is_finite() && a.is_finite()) {
                finite = false;
                continue;
            }
            max_abs = max_abs.max((a as f64 - r as f64).abs());
            scale = scale.max((r as f64).abs());
        }
        let max_rel = if scale > 0.0 {
            max_abs / scale
        } else {
            max_abs
        };
        Ok(Diff {
            max_abs: if finite { max_abs } else { f64::INFINITY },
            max_rel: if finite { max_rel } else { f64::INFINITY },
            scale,
            finite,
        })
    }

    /// Whether this difference is worse than `other`: non-finite beats finite, then the
    /// larger relative difference (for quantities made of several tensors, which report
    /// their worst).
    pub fn is_worse_than(&self, other: &Diff) -> bool {
        match (self.finite, other.finite) {
            (false, true) => true,
            (true, false) => false,
            _ => self.max_rel > other.max_rel,
        }
    }

    /// Whether the difference is within `tolerance` (on `max_rel`).
    pub fn within(&self, tolerance: f64) -> bool {
        self.finite && self.max_rel <= tolerance
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_differences() {
        // |1.5 - 1| = 0.5, |-4 - (-4)| = 0, |0.25 - 0| = 0.25; max |r| = 4.
        let d = Diff::between(&[1.0, -4.0, 0.0], &[3], &[1.5, -4.0, 0.25], &[3]).unwrap();
        assert_eq!(d.max_abs, 0.5);
        assert_eq!(d.scale, 4.0);
        assert_eq!(d.max_rel, 0.125);
        assert!(d.finite);
        assert!(d.within(0.125));
        assert!(!d.within(0.1249));
    }

    #[test]
    fn identical_tensors_differ_by_zero_and_zero_references_fall_back_to_abs() {
        let d = Diff::between(&[2.0, 3.0], &[2], &[2.0, 3.0], &[2]).unwrap();
        assert_eq!((d.max_abs, d.max_rel), (0.0, 0.0));
        let z = Diff::between(&[0.0, 0.0], &[2], &[1e-3, 0.0], &[2]).unwrap();
        assert_eq!(z.scale, 0.0);
        assert_eq!(z.max_rel, 1e-3f32 as f64);
    }

    #[test]
    fn non_finite_values_fail_every_tolerance() {
        let d = Diff::between(&[1.0, 2.0], &[2], &[1.0, f32::NAN], &[2]).unwrap();
        assert!(!d.finite);
        assert!(!d.within(f64::MAX));
        let d = Diff::between(&[f32::INFINITY], &[1], &[f32::INFINITY], &[1]).unwrap();
        assert!(!d.within(1.0));
    }

    #[test]
    fn shapes_must_agree() {
        let e = Diff::between(&[1.0, 2.0], &[2], &[1.0, 2.0], &[1, 2]).unwrap_err();
        assert!(e.to_string().contains("[1, 2]"), "{e}");
    }

    #[test]
    fn worse_means_larger_relative_difference_and_non_finite_is_worst() {
        let a = Diff::between(&[10.0], &[1], &[10.1], &[1]).unwrap(); // rel 0.01
        let b = Diff::between(&[1.0], &[1], &[1.05], &[1]).unwrap(); // rel 0.05
        assert!(b.is_worse_than(&a));
        assert!(!a.is_worse_than(&b));
        assert!(!a.is_worse_than(&a));
        let nan = Diff::between(&[1.0], &[1], &[f32::NAN], &[1]).unwrap();
        assert!(nan.is_worse_than(&b));
        assert!(!b.is_worse_than(&nan));
    }
}
