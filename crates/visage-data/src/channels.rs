//! The one rule that turns a decoded image into a model's input values, for training,
//! evaluation and embedding alike.
//!
//! Every reader decodes to RGB ([`ImageSample`]); a model then sees
//!
//! - 3 channels: R, G, B;
//! - 1 channel: the ITU-R BT.601 luma `0.299 R + 0.587 G + 0.114 B`, rounded to 8 bits as
//!   PIL's `Image.convert("L")` does it (`(19595 R + 38470 G + 7471 B + 2^15) >> 16`), so a
//!   grey image (`R = G = B`) keeps its exact values and a model trained on PIL-converted
//!   greyscale faces sees the same bytes here;
//!
//! each value normalised to `(v / 255 - 0.5) / 0.5`, in [-1, 1].

use crate::error::{DataError, Result};
use crate::sample::ImageSample;

/// ITU-R BT.601 luma of an RGB pixel with PIL's integer rounding:
/// `(19595 R + 38470 G + 7471 B + 32768) >> 16` (the weights 0.299, 0.587, 0.114 in 16-bit
/// fixed point; they sum to 65536, so `luma_bt601([v, v, v]) == v`).
pub fn luma_bt601(rgb: [u8; 3]) -> u8 {
    let [r, g, b] = rgb.map(u32::from);
    ((19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16) as u8
}

/// A byte in [0, 255] as a model input value: `(v / 255 - 0.5) / 0.5`, in [-1, 1].
pub fn normalise_byte(v: u8) -> f32 {
    (v as f32 / 255.0 - 0.5) / 0.5
}

/// Checks that a model with `channels` input channels can be fed by this rule (1 or 3).
///
/// # Errors
/// [`DataError::Invalid`] naming the count otherwise.
pub fn check_channels(channels: usize) -> Result<()> {
    if channels == 1 || channels == 3 {
        Ok(())
    } else {
        Err(DataError::Invalid(format!(
            "{channels} input channels: images feed models of 1 (BT.601 luma) or 3 (RGB) channels"
        )))
    }
}

/// Writes `sample` as `channels` normalised planes (CHW, row-major) into `out`, which must
/// hold `channels * height * width` values.
///
/// # Shapes
/// - `sample`: `[H, W, 3]` RGB bytes (HWC)
/// - `out`: `[channels, H, W]` (CHW), `channels` 1 (luma) or 3 (RGB)
///
/// # Errors
/// [`DataError::Invalid`] for another channel count or a buffer of the wrong length.
pub fn write_chw(sample: &ImageSample, channels: usize, out: &mut [f32]) -> Result<()> {
    check_channels(channels)?;
    let plane = sample.height * sample.width;
    if sample.pixels.len() != plane * 3 || out.len() != plane * channels {
        return Err(DataError::Invalid(format!(
            "a {}x{} image ({} bytes) into {} values: expected {} bytes and {} values",
            sample.height,
            sample.width,
            sample.pixels.len(),
            out.len(),
            plane * 3,
            plane * channels
        )));
    }
    for (i, px) in sample.pixels.chunks_exact(3).enumerate() {
        if channels == 1 {
            out[i] = normalise_byte(luma_bt601([px[0], px[1], px[2]]));
        } else {
            for c in 0..3 {
                out[c * plane + i] = normalise_byte(px[c]);
            }
        }
    }
    Ok(())
}

/// `sample` as a new `[channels, H, W]` vector of normalised values (see [`write_chw`]).
///
/// # Shapes
/// - returns `channels * H * W` values, CHW
///
/// # Errors
/// As [`write_chw`].
pub fn to_chw(sample: &ImageSample, channels: usize) -> Result<Vec<f32>> {
    let mut out = vec![0f32; channels * sample.height * sample.width];
    write_chw(sample, channels, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_matches_the_float_formula_and_keeps_grey() {
        for v in 0..=255u8 {
            assert_eq!(luma_bt601([v, v, v]), v);
        }
        for &(r, g, b) in &[(255u8, 0u8, 0u8), (0, 255, 0), (0, 0, 255), (12, 200, 99)] {
            let exact = 0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64;
            let got = luma_bt601([r, g, b]) as f64;
            assert!(
                (got - exact).abs() <= 0.5 + 1e-9,
                "{r} {g} {b}: {got} vs {exact}"
            );
        }
        // Hand values: 0.299 * 255 = 76.245 -> 76; 0.587 * 255 = 149.685 -> 150;
        // 0.114 * 255 = 29.07 -> 29.
        assert_eq!(luma_bt601([255, 0, 0]), 76);
        assert_eq!(luma_bt601([0, 255, 0]), 150);
        assert_eq!(luma_bt601([0, 0, 255]), 29);
    }

    #[test]
    fn planes_and_errors() {
        let s = ImageSample {
            pixels: vec![255, 0, 0, 0, 0, 255],
            height: 1,
            width: 2,
            label: 0,
        };
        let rgb = to_chw(&s, 3).unwrap();
        assert_eq!(rgb, vec![1.0, -1.0, -1.0, -1.0, -1.0, 1.0]);
        let grey = to_chw(&s, 1).unwrap();
        for (g, luma) in grey.iter().zip([76.0, 29.0]) {
            let expect = (luma / 255.0 - 0.5) / 0.5;
            assert!((*g as f64 - expect).abs() < 1e-6, "{g} vs {expect}");
        }
        assert!(to_chw(&s, 2).is_err());
        assert!(write_chw(&s, 1, &mut [0.0; 3]).is_err());
    }
}
