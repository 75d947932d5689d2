//! Five-point face alignment: a least-squares similarity transform (rotation, uniform scale,
//! translation; Umeyama) from detected landmarks (left eye, right eye, nose tip, left and right
//! mouth corners) to the ArcFace template, and a bilinear warp (zero outside the source, as
//! OpenCV's `warpAffine` with a constant border). Coordinates: pixel (row i, column j) has its
//! centre at (x = j, y = i), the convention of the templates.

use crate::error::{DataError, Result};
use crate::sample::ImageSample;

/// ArcFace's 112x112 five-point template.
pub const ARCFACE_112: [[f64; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// The alignment target: template points and output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AlignTemplate {
    /// 112x112 (ArcFace, InsightFace packs).
    Arcface112,
    /// 112 rows x 96 columns (SphereFace, CosFace): the 112x112 template with x - 8.
    Arcface112x96,
}

impl AlignTemplate {
    /// The five template points (x, y).
    pub fn points(self) -> [[f64; 2]; 5] {
        match self {
            AlignTemplate::Arcface112 => ARCFACE_112,
            AlignTemplate::Arcface112x96 => ARCFACE_112.map(|[x, y]| [x - 8.0, y]),
        }
    }

    /// Output (height, width).
    pub fn size(self) -> (usize, usize) {
        match self {
            AlignTemplate::Arcface112 => (112, 112),
            AlignTemplate::Arcface112x96 => (112, 96),
        }
    }
}

/// A similarity transform `(x, y) -> (a x - b y + tx, b x + a y + ty)`, i.e. scale
/// `sqrt(a^2 + b^2)` and rotation `atan2(b, a)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// `s cos(theta)`.
    pub a: f64,
    /// `s sin(theta)`.
    pub b: f64,
    /// x translation.
    pub tx: f64,
    /// y translation.
    pub ty: f64,
}

impl Similarity {
    /// Applies the transform to a point.
    pub fn apply(&self, [x, y]: [f64; 2]) -> [f64; 2] {
        [
            self.a * x - self.b * y + self.tx,
            self.b * x + self.a * y + self.ty,
        ]
    }

    /// The inverse transform (errors when the scale is zero).
    pub fn inverse(&self) -> Result<Self> {
        let n = self.a * self.a + self.b * self.b;
        if n <= f64::MIN_POSITIVE || !n.is_finite() {
            return Err(DataError::Invalid(format!(
                "similarity transform with scale {} is not invertible",
                n.sqrt()
            )));
        }
        let (a, b) = (self.a / n, -self.b / n);
        Ok(Self {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }

    /// The 2x3 matrix `[[a, -b, tx], [b, a, ty]]` (OpenCV's `warpAffine` layout).
    pub fn matrix(&self) -> [[f64; 3]; 2] {
        [[self.a, -self.b, self.tx], [self.b, self.a, self.ty]]
    }

    /// Least-squares similarity mapping `src[i]` onto `dst[i]` (Umeyama's estimate restricted
    /// to proper rotations, which in 2-D has this closed form): with centred points p, q,
    /// `a = sum(p.q) / sum|p|^2`, `b = sum(p x q) / sum|p|^2`, `t = mean(q) - M mean(p)`.
    pub fn estimate(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Result<Self> {
        if src.len() != dst.len() || src.len() < 2 {
            return Err(DataError::Invalid(format!(
                "need as many source as target points, at least 2 (got {} and {})",
                src.len(),
                dst.len()
            )));
        }
        if src
            .iter()
            .chain(dst)
            .any(|p| !p[0].is_finite() || !p[1].is_finite())
        {
            return Err(DataError::Invalid(
                "landmarks must be finite numbers".into(),
            ));
        }
        let n = src.len() as f64;
        let mean = |v: &[[f64; 2]]| {
            let s = v
                .iter()
                .fold([0.0, 0.0], |acc, p| [acc[0] + p[0], acc[1] + p[1]]);
            [s[0] / n, s[1] / n]
        };
        let (ms, md) = (mean(src), mean(dst));
        let (mut dot, mut cross, mut var) = (0.0, 0.0, 0.0);
        for (p, q) in src.iter().zip(dst) {
            let (px, py) = (p[0] - ms[0], p[1] - ms[1]);
            let (qx, qy) = (q[0] - md[0], q[1] - md[1]);
            dot += px * qx + py * qy;
            cross += px * qy - py * qx;
            var += px * px + py * py;
        }
        if var <= 1e-12 {
            return Err(DataError::Invalid(
                "landmarks coincide: no transform can be fitted".into(),
            ));
        }
        let (a, b) = (dot / var, cross / var);
        Ok(Self {
            a,
            b,
            tx: md[0] - (a * ms[0] - b * ms[1]),
            ty: md[1] - (b * ms[0] + a * ms[1]),
        })
    }
}

/// Bilinear sample with a zero (black) border outside the image.
fn sample_zero(s: &ImageSample, x: f64, y: f64) -> [f64; 3] {
    let (x0, y0) = (x.floor(), y.floor());
    let (ax, ay) = (x - x0, y - y0);
    let mut out = [0.0; 3];
    for (dy, wy) in [(0.0, 1.0 - ay), (1.0, ay)] {
        for (dx, wx) in [(0.0, 1.0 - ax), (1.0, ax)] {
            let (xx, yy) = (x0 + dx, y0 + dy);
            let w = wx * wy;
            if w == 0.0 || xx < 0.0 || yy < 0.0 || xx >= s.width as f64 || yy >= s.height as f64 {
                continue;
            }
            let i = (yy as usize * s.width + xx as usize) * 3;
            for (o, &p) in out.iter_mut().zip(&s.pixels[i..i + 3]) {
                *o += w * p as f64;
            }
        }
    }
    out
}

/// Warps `src` so that `to_output` maps source coordinates to output coordinates; the output
/// is `out_h` x `out_w`, each pixel sampled bilinearly at `to_output^-1(x, y)`.
pub fn warp(
    src: &ImageSample,
    to_output: &Similarity,
    out_h: usize,
    out_w: usize,
) -> Result<ImageSample> {
    let inv = to_output.inverse()?;
    let mut pixels = vec![0u8; out_h * out_w * 3];
    for y in 0..out_h {
        for x in 0..out_w {
            let [sx, sy] = inv.apply([x as f64, y as f64]);
            let v = sample_zero(src, sx, sy);
            let i = (y * out_w + x) * 3;
            for k in 0..3 {
                pixels[i + k] = v[k].round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Ok(ImageSample {
        pixels,
        height: out_h,
        width: out_w,
        label: src.label,
    })
}

/// Aligns `src` given its five landmarks (x, y) to `template`.
pub fn align(
    src: &ImageSample,
    landmarks: &[[f64; 2]; 5],
    template: AlignTemplate,
) -> Result<ImageSample> {
    let t = Similarity::estimate(landmarks, &template.points())?;
    let (h, w) = template.size();
    warp(src, &t, h, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_scaled_translated_template_gives_the_exact_inverse() {
        // Landmarks = 2 * R(90) * template + (10, 20): (x, y) -> (-2y + 10, 2x + 20).
        let t = ARCFACE_112;
        let lm: Vec<[f64; 2]> = t
            .iter()
            .map(|&[x, y]| [-2.0 * y + 10.0, 2.0 * x + 20.0])
            .collect();
        let s = Similarity::estimate(&lm, &t).unwrap();
        // Inverse by hand: q -> R(-90) (q - (10, 20)) / 2 = (0.5 qy - 10, -0.5 qx + 5).
        let expect = Similarity {
            a: 0.0,
            b: -0.5,
            tx: -10.0,
            ty: 5.0,
        };
        for (got, want) in [
            (s.a, expect.a),
            (s.b, expect.b),
            (s.tx, expect.tx),
            (s.ty, expect.ty),
        ] {
            assert!((got - want).abs() < 1e-12, "{s:?}");
        }
        for (p, q) in lm.iter().zip(&t) {
            let m = s.apply(*p);
            assert!((m[0] - q[0]).abs() < 1e-9 && (m[1] - q[1]).abs() < 1e-9);
        }
        let back = s.inverse().unwrap();
        assert!((back.a - 0.0).abs() < 1e-12 && (back.b - 2.0).abs() < 1e-12);
        assert!((back.tx - 10.0).abs() < 1e-12 && (back.ty - 20.0).abs() < 1e-12);
    }

    #[test]
    fn the_96_template_is_shifted_by_8() {
        let p = AlignTemplate::Arcface112x96.points();
        assert_eq!(p[0], [38.2946 - 8.0, 51.6963]);
        assert_eq!(AlignTemplate::Arcface112x96.size(), (112, 96));
    }

    #[test]
    fn noisy_landmarks_give_the_least_squares_optimum() {
        let lm = [
            [30.0, 40.0],
            [80.0, 45.0],
            [52.0, 70.0],
            [35.0, 95.0],
            [78.0, 90.0],
        ];
        let t = ARCFACE_112;
        let s = Similarity::estimate(&lm, &t).unwrap();
        let cost = |s: &Similarity| {
            lm.iter()
                .zip(&t)
                .map(|(p, q)| {
                    let m = s.apply(*p);
                    (m[0] - q[0]).powi(2) + (m[1] - q[1]).powi(2)
                })
                .sum::<f64>()
        };
        let c0 = cost(&s);
        for d in [1e-3, -1e-3] {
            for k in 0..4 {
                let mut z = s;
                match k {
                    0 => z.a += d,
                    1 => z.b += d,
                    2 => z.tx += d,
                    _ => z.ty += d,
                }
                assert!(
                    cost(&z) > c0,
                    "perturbing parameter {k} by {d} lowered the cost"
                );
            }
        }
    }

    #[test]
    fn degenerate_landmarks_are_errors() {
        let same = [[5.0, 5.0]; 5];
        assert!(Similarity::estimate(&same, &ARCFACE_112).is_err());
        assert!(Similarity::estimate(&[[f64::NAN, 0.0], [1.0, 1.0]], &ARCFACE_112[..2]).is_err());
        assert!(Similarity {
            a: 0.0,
            b: 0.0,
            tx: 1.0,
            ty: 1.0
        }
        .inverse()
        .is_err());
    }

    #[test]
    fn warp_translation_and_scale_by_hand() {
        // 4x4 image, value = 10 * (4y + x) in every channel.
        let px: Vec<u8> = (0..16).flat_map(|v| [v * 10, v * 10, v * 10]).collect();
        let src = ImageSample {
            pixels: px,
            height: 4,
            width: 4,
            label: 1,
        };
        // Output = source shifted right by one: out(x, y) = src(x - 1, y), column 0 black.
        let shift = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 1.0,
            ty: 0.0,
        };
        let out = warp(&src, &shift, 4, 4).unwrap();
        assert_eq!(out.rgb(2, 0), [0, 0, 0]);
        assert_eq!(out.rgb(2, 1), [80, 80, 80]);
        assert_eq!(out.rgb(3, 3), [140, 140, 140]);
        // Scale 2: out(x, y) = src(x / 2, y / 2); out(1, 0) samples src(0.5, 0) = (0 + 10) / 2.
        let zoom = Similarity {
            a: 2.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        let out = warp(&src, &zoom, 4, 4).unwrap();
        assert_eq!(out.rgb(0, 1), [5, 5, 5]);
        // out(3, 3) samples src(1.5, 1.5) = mean of 50, 60, 90, 100 = 75.
        assert_eq!(out.rgb(3, 3), [75, 75, 75]);
        assert_eq!(out.label, 1);
    }
}
