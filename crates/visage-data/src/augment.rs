//! Training-time augmentation of [`ImageSample`]s: horizontal flip, random crop, resize-down
//! (low-resolution simulation), colour jitter, greyscale. Every draw comes from a caller-given
//! [`SplitMix64`], so results are deterministic per (seed, epoch, sample).

use crate::rng::SplitMix64;
use crate::sample::ImageSample;

/// Which augmentations to apply and how strongly.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AugmentConfig {
    /// Probability of a horizontal flip (default 0.5).
    pub flip_p: f32,
    /// Random crop: side of the crop as a fraction of the image side drawn uniformly in
    /// `[crop_min_scale, 1]`, then resized back (bilinear). 1 disables it (default).
    pub crop_min_scale: f32,
    /// Probability of a resize-down: the image is shrunk by a factor in
    /// `[resize_min_scale, 1]` and enlarged back, losing detail (default 0).
    pub resize_p: f32,
    /// Smallest resize-down factor.
    pub resize_min_scale: f32,
    /// Colour jitter strength: brightness, contrast and saturation factors drawn in
    /// `[1 - jitter, 1 + jitter]` (default 0 = off).
    pub jitter: f32,
    /// Probability of converting to grey (default 0).
    pub grey_p: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            flip_p: 0.5,
            crop_min_scale: 1.0,
            resize_p: 0.0,
            resize_min_scale: 0.5,
            jitter: 0.0,
            grey_p: 0.0,
        }
    }
}

impl AugmentConfig {
    /// No augmentation at all (evaluation).
    pub fn none() -> Self {
        Self {
            flip_p: 0.0,
            ..Self::default()
        }
    }
}

/// Mirrors the image left-right.
pub fn flip_horizontal(s: &ImageSample) -> ImageSample {
    let mut out = s.clone();
    for y in 0..s.height {
        for x in 0..s.width {
            let src = (y * s.width + (s.width - 1 - x)) * 3;
            let dst = (y * s.width + x) * 3;
            out.pixels[dst..dst + 3].copy_from_slice(&s.pixels[src..src + 3]);
        }
    }
    out
}

/// Bilinear resampling of the window `[x0, x0 + w) x [y0, y0 + h)` (source pixels, pixel
/// centres at half-integers) to `out_h` x `out_w`, edges clamped.
pub fn resample(
    s: &ImageSample,
    x0: f32,
    y0: f32,
    w: f32,
    h: f32,
    out_h: usize,
    out_w: usize,
) -> ImageSample {
    let mut pixels = vec![0u8; out_h * out_w * 3];
    let (sx, sy) = (w / out_w as f32, h / out_h as f32);
    for oy in 0..out_h {
        let fy = y0 + (oy as f32 + 0.5) * sy - 0.5;
        for ox in 0..out_w {
            let fx = x0 + (ox as f32 + 0.5) * sx - 0.5;
            let px = bilinear(s, fx, fy);
            let i = (oy * out_w + ox) * 3;
            for k in 0..3 {
                pixels[i + k] = px[k].round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    ImageSample {
        pixels,
        height: out_h,
        width: out_w,
        label: s.label,
    }
}

/// Bilinear sample at continuous pixel coordinates (pixel (i, j) has its centre at (j, i)),
/// edges clamped.
pub fn bilinear(s: &ImageSample, fx: f32, fy: f32) -> [f32; 3] {
    let fx = fx.clamp(0.0, (s.width - 1) as f32);
    let fy = fy.clamp(0.0, (s.height - 1) as f32);
    let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(s.width - 1), (y0 + 1).min(s.height - 1));
    let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
    let p = |y: usize, x: usize, k: usize| s.pixels[(y * s.width + x) * 3 + k] as f32;
    let mut out = [0f32; 3];
    for (k, o) in out.iter_mut().enumerate() {
        let top = p(y0, x0, k) * (1.0 - ax) + p(y0, x1, k) * ax;
        let bot = p(y1, x0, k) * (1.0 - ax) + p(y1, x1, k) * ax;
        *o = top * (1.0 - ay) + bot * ay;
    }
    out
}

/// ITU-R BT.601 luma, replicated into the three channels.
pub fn to_grey(s: &ImageSample) -> ImageSample {
    let mut out = s.clone();
    for px in out.pixels.chunks_exact_mut(3) {
        let l = 0.299 * px[0] as f32 + 0.587 * px[1] as f32 + 0.114 * px[2] as f32;
        let l = l.round().clamp(0.0, 255.0) as u8;
        px.fill(l);
    }
    out
}

/// Brightness (multiplicative), contrast (around the image mean luma) and saturation (around
/// each pixel's luma) factors, applied in that order.
pub fn colour_jitter(
    s: &ImageSample,
    brightness: f32,
    contrast: f32,
    saturation: f32,
) -> ImageSample {
    let n = (s.height * s.width).max(1) as f32;
    let mean = s
        .pixels
        .chunks_exact(3)
        .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
        .sum::<f32>()
        * brightness
        / n;
    let mut out = s.clone();
    for px in out.pixels.chunks_exact_mut(3) {
        let mut c = [
            px[0] as f32 * brightness,
            px[1] as f32 * brightness,
            px[2] as f32 * brightness,
        ];
        for v in &mut c {
            *v = mean + (*v - mean) * contrast;
        }
        let l = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        for (k, v) in c.iter().enumerate() {
            px[k] = (l + (v - l) * saturation).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Applies `cfg` to `s` with draws from `rng`; the output has the input's size.
pub fn augment(s: &ImageSample, cfg: &AugmentConfig, rng: &mut SplitMix64) -> ImageSample {
    let mut out = s.clone();
    if cfg.crop_min_scale < 1.0 {
        let f = rng.uniform(cfg.crop_min_scale.max(0.05), 1.0);
        let (w, h) = (s.width as f32 * f, s.height as f32 * f);
        let x0 = rng.uniform(0.0, s.width as f32 - w);
        let y0 = rng.uniform(0.0, s.height as f32 - h);
        out = resample(&out, x0, y0, w, h, s.height, s.width);
    }
    if cfg.resize_p > 0.0 && rng.bernoulli(cfg.resize_p) {
        let f = rng.uniform(cfg.resize_min_scale.clamp(0.05, 1.0), 1.0);
        let (sh, sw) = (
            ((s.height as f32 * f).round() as usize).max(1),
            ((s.width as f32 * f).round() as usize).max(1),
        );
        let small = resample(&out, 0.0, 0.0, s.width as f32, s.height as f32, sh, sw);
        out = resample(&small, 0.0, 0.0, sw as f32, sh as f32, s.height, s.width);
    }
    if cfg.jitter > 0.0 {
        let j = cfg.jitter;
        let (b, c, sat) = (
            1.0 + rng.symmetric(j),
            1.0 + rng.symmetric(j),
            1.0 + rng.symmetric(j),
        );
        out = colour_jitter(&out, b, c, sat);
    }
    if cfg.grey_p > 0.0 && rng.bernoulli(cfg.grey_p) {
        out = to_grey(&out);
    }
    if cfg.flip_p > 0.0 && rng.bernoulli(cfg.flip_p) {
        out = flip_horizontal(&out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(h: usize, w: usize) -> ImageSample {
        let mut p = Vec::new();
        for y in 0..h {
            for x in 0..w {
                p.extend_from_slice(&[(10 * x) as u8, (10 * y) as u8, (x + y) as u8]);
            }
        }
        ImageSample {
            pixels: p,
            height: h,
            width: w,
            label: 3,
        }
    }

    #[test]
    fn flip_mirrors_columns() {
        let s = ramp(2, 3);
        let f = flip_horizontal(&s);
        assert_eq!(f.rgb(0, 0), [20, 0, 2]);
        assert_eq!(f.rgb(1, 2), [0, 10, 1]);
        assert_eq!(flip_horizontal(&f), s);
    }

    #[test]
    fn grey_uses_bt601() {
        let s = ImageSample {
            pixels: vec![200, 100, 50],
            height: 1,
            width: 1,
            label: 0,
        };
        // 0.299*200 + 0.587*100 + 0.114*50 = 59.8 + 58.7 + 5.7 = 124.2
        assert_eq!(to_grey(&s).pixels, vec![124, 124, 124]);
    }

    #[test]
    fn jitter_identity_and_brightness() {
        let s = ramp(3, 3);
        assert_eq!(colour_jitter(&s, 1.0, 1.0, 1.0), s);
        let b = colour_jitter(&s, 0.5, 1.0, 1.0);
        // x = 1, y = 1 -> (10, 10, 2) halved -> (5, 5, 1)
        assert_eq!(b.rgb(1, 1), [5, 5, 1]);
        let g = colour_jitter(&s, 1.0, 1.0, 0.0);
        assert_eq!(g, to_grey(&s));
    }

    #[test]
    fn resample_identity_and_half() {
        let s = ramp(4, 4);
        assert_eq!(resample(&s, 0.0, 0.0, 4.0, 4.0, 4, 4), s);
        // 2x2 from 4x4: output pixel (0,0) centre at source (0.5, 0.5): mean of the 2x2 block.
        let h = resample(&s, 0.0, 0.0, 4.0, 4.0, 2, 2);
        // R at x = 0..1 -> 0, 10 -> 5; G at y = 0..1 -> 5; B: (0+1+1+2)/4 = 1.
        assert_eq!(h.rgb(0, 0), [5, 5, 1]);
        assert_eq!(h.rgb(1, 1), [25, 25, 5]);
    }

    #[test]
    fn augment_default_flips_about_half_and_keeps_label() {
        let s = ramp(4, 5);
        let cfg = AugmentConfig::default();
        let mut r = SplitMix64::new(1);
        let mut flips = 0;
        for _ in 0..1000 {
            let a = augment(&s, &cfg, &mut r);
            assert_eq!((a.label, a.height, a.width), (3, 4, 5));
            if a != s {
                assert_eq!(a, flip_horizontal(&s));
                flips += 1;
            }
        }
        assert!((430..570).contains(&flips), "{flips}");
        let mut r = SplitMix64::new(1);
        assert_eq!(augment(&s, &AugmentConfig::none(), &mut r), s);
        let all = AugmentConfig {
            crop_min_scale: 0.6,
            resize_p: 1.0,
            jitter: 0.3,
            grey_p: 1.0,
            ..cfg
        };
        let a = augment(&s, &all, &mut r);
        assert_eq!((a.height, a.width), (4, 5));
        assert!(a.pixels.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    }
}
