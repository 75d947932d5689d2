//! Synthetic face-like identities: the built-in dataset that needs no download.
//!
//! Every identity is a deterministic draw of [`IdentityParams`] (face shape, feature positions
//! and sizes, colours, texture, hair, beard, glasses) from `(seed, identity)`. Every image of an
//! identity adds a [`Nuisance`] draw (pose: rotation, scale, translation; illumination;
//! expression; blur; noise; occlusion; background) from `(seed, identity, image)`, whose strength
//! scales with [`SynthConfig::difficulty`]. Rendering uses analytic shapes with anti-aliased
//! edges (coverage from a signed distance and the pixel footprint), so small sizes (32x32,
//! 48x48) stay clean.
//!
//! Open-set by construction: training identities are the indices `[0, n)`, held-out identities
//! are indices from [`HELD_OUT_BASE`] on (see [`SyntheticSplit`]), so the held-out set never
//! changes when the number of training identities does.

use rayon::prelude::*;

use crate::pairs::{PairList, VerificationSet};
use crate::rng::SplitMix64;
use crate::sample::ImageSample;
use crate::source::SampleSource;

/// First identity index of the held-out split.
pub const HELD_OUT_BASE: u64 = 1 << 40;

const TAG_IDENTITY: u64 = 0x1D;
const TAG_NUISANCE: u64 = 0x2E;

/// Generation settings shared by every identity and image.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SynthConfig {
    /// Height and width in pixels (square images).
    pub size: usize,
    /// Seed of every identity and nuisance draw.
    pub seed: u64,
    /// Nuisance strength: 0 gives every image of an identity the same pose and lighting
    /// (only background colour varies), 1 is the default, larger is harder.
    pub difficulty: f32,
}

/// Largest synthetic image side, in pixels (one image renders through a float buffer of
/// `size * size * 12` bytes).
pub const MAX_SYNTH_SIZE: usize = 4096;
/// Most samples (identities x images per identity) a synthetic dataset may hold: the samplers
/// keep an 8-byte index per sample, so this bounds them at 2 GiB.
pub const MAX_SYNTH_SAMPLES: u64 = 1 << 28;
/// Most bytes of rendered images a verification set may hold in memory at once (8 GiB).
pub const MAX_RENDER_BYTES: u64 = 8 << 30;

impl SynthConfig {
    /// Checks the settings: `size` in `1..=MAX_SYNTH_SIZE`, `difficulty` finite and >= 0.
    pub fn validate(&self) -> crate::Result<()> {
        if self.size == 0 || self.size > MAX_SYNTH_SIZE {
            return Err(crate::DataError::Invalid(format!(
                "synthetic image size {} is outside 1..={MAX_SYNTH_SIZE} pixels",
                self.size
            )));
        }
        if !(self.difficulty.is_finite() && self.difficulty >= 0.0) {
            return Err(crate::DataError::Invalid(format!(
                "synthetic difficulty {} is not a finite number >= 0",
                self.difficulty
            )));
        }
        Ok(())
    }
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            size: 112,
            seed: 0,
            difficulty: 1.0,
        }
    }
}

/// The identity-specific parameters of one synthetic face, in face units (the image spans
/// [-1, 1] on both axes before the pose; y grows downwards).
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityParams {
    /// Skin colour, linear RGB in [0, 1].
    pub skin: [f32; 3],
    /// Hair (and eyebrow, beard) colour.
    pub hair: [f32; 3],
    /// Iris colour.
    pub iris: [f32; 3],
    /// Lip colour.
    pub lips: [f32; 3],
    /// Face half-width and half-height.
    pub face: [f32; 2],
    /// Jaw narrowing towards the chin, 0 (oval) to 0.5 (pointed).
    pub jaw: f32,
    /// Vertical position of the eyes.
    pub eye_y: f32,
    /// Half the distance between the eye centres.
    pub eye_dx: f32,
    /// Eye half-width and half-height.
    pub eye_r: [f32; 2],
    /// Gap between eye centre and eyebrow, eyebrow thickness, eyebrow tilt (radians).
    pub brow: [f32; 3],
    /// Nose tip height and nose half-width.
    pub nose: [f32; 2],
    /// Mouth centre height, half-width, lip thickness, resting smile.
    pub mouth: [f32; 4],
    /// Hairline height (top of the forehead) and how far down the hair falls behind the face.
    pub hairline: f32,
    /// Lowest point of the hair behind the face.
    pub hair_length: f32,
    /// Hair fringe waviness (frequency, phase).
    pub fringe: [f32; 2],
    /// Skin texture: three sinusoids (fx, fy, phase, amplitude).
    pub texture: [[f32; 4]; 3],
    /// A mole: (u, v, radius); radius 0 when absent.
    pub mole: [f32; 3],
    /// Beard darkness in [0, 1] (0 = none).
    pub beard: f32,
    /// Whether the identity wears glasses.
    pub glasses: bool,
}

/// The image-specific nuisance of one synthetic image.
#[derive(Debug, Clone, PartialEq)]
pub struct Nuisance {
    /// In-plane rotation, radians.
    pub angle: f32,
    /// Zoom factor.
    pub scale: f32,
    /// Translation in image units ([-1, 1] spans the image).
    pub shift: [f32; 2],
    /// Illumination: gradient direction (unit), gradient strength, global gain, colour cast.
    pub light_dir: [f32; 2],
    /// Strength of the illumination gradient.
    pub light_strength: f32,
    /// Global brightness gain.
    pub gain: f32,
    /// Additive colour cast per channel.
    pub cast: [f32; 3],
    /// Expression: extra smile, mouth opening, eye openness (1 = open), brow raise.
    pub expression: [f32; 4],
    /// Gaussian blur sigma in pixels.
    pub blur_sigma: f32,
    /// Gaussian noise sigma (in [0, 1] intensity units).
    pub noise_sigma: f32,
    /// Occluder rectangle in image units (x0, y0, x1, y1) and its colour; none when absent.
    pub occluder: Option<([f32; 4], [f32; 3])>,
    /// Background colour at the left and at the right edge.
    pub background: [[f32; 3]; 2],
    /// Seed of the pixel noise.
    pub noise_seed: u64,
}

/// Which identities a synthetic dataset draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SyntheticSplit {
    /// Identity indices `[0, n)`.
    Train,
    /// Identity indices `[HELD_OUT_BASE, HELD_OUT_BASE + n)`: disjoint from any training set.
    HeldOut,
}

impl SyntheticSplit {
    /// The global identity index of the `index`-th identity of this split.
    pub fn identity(self, index: usize) -> u64 {
        match self {
            SyntheticSplit::Train => index as u64,
            SyntheticSplit::HeldOut => HELD_OUT_BASE + index as u64,
        }
    }
}

/// The generator: identity and nuisance draws plus the renderer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticFaces {
    /// Settings.
    pub config: SynthConfig,
}

fn lerp3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn clamp01(x: f32) -> f32 {
    x.clamp(0.0, 1.0)
}

impl SyntheticFaces {
    /// A generator with `config`.
    pub fn new(config: SynthConfig) -> Self {
        Self { config }
    }

    /// The parameters of global identity `identity` (deterministic in (seed, identity)).
    pub fn identity(&self, identity: u64) -> IdentityParams {
        let mut r = SplitMix64::from_parts(&[self.config.seed, TAG_IDENTITY, identity]);
        let tone = r.next_f32();
        let skin = lerp3([0.96, 0.80, 0.68], [0.36, 0.23, 0.15], tone);
        let skin = [
            clamp01(skin[0] + r.symmetric(0.04)),
            clamp01(skin[1] + r.symmetric(0.04)),
            clamp01(skin[2] + r.symmetric(0.04)),
        ];
        let hair_t = r.next_f32();
        let mut hair = if hair_t < 0.45 {
            lerp3([0.05, 0.04, 0.03], [0.25, 0.15, 0.08], hair_t / 0.45)
        } else if hair_t < 0.8 {
            lerp3(
                [0.30, 0.18, 0.09],
                [0.80, 0.62, 0.35],
                (hair_t - 0.45) / 0.35,
            )
        } else if hair_t < 0.9 {
            lerp3([0.55, 0.20, 0.08], [0.75, 0.35, 0.12], (hair_t - 0.8) / 0.1)
        } else {
            let g = r.uniform(0.55, 0.9);
            [g, g, g]
        };
        for c in &mut hair {
            *c = clamp01(*c + r.symmetric(0.03));
        }
        let iris_t = r.next_f32();
        let iris = if iris_t < 0.6 {
            lerp3([0.12, 0.07, 0.03], [0.40, 0.25, 0.10], r.next_f32())
        } else if iris_t < 0.8 {
            lerp3([0.20, 0.35, 0.60], [0.45, 0.60, 0.80], r.next_f32())
        } else {
            lerp3([0.25, 0.40, 0.20], [0.45, 0.55, 0.35], r.next_f32())
        };
        let lips = lerp3(skin, [0.75, 0.30, 0.32], r.uniform(0.35, 0.75));
        let face = [r.uniform(0.44, 0.60), r.uniform(0.62, 0.78)];
        let jaw = r.uniform(0.0, 0.45);
        let eye_y = r.uniform(-0.20, -0.04);
        let eye_dx = r.uniform(0.16, 0.27);
        let eye_r = [r.uniform(0.065, 0.11), r.uniform(0.032, 0.06)];
        let brow = [
            r.uniform(0.07, 0.13),
            r.uniform(0.014, 0.04),
            r.symmetric(0.35),
        ];
        let nose = [eye_y + r.uniform(0.17, 0.28), r.uniform(0.045, 0.10)];
        let mouth = [
            nose[0] + r.uniform(0.11, 0.20),
            r.uniform(0.11, 0.22),
            r.uniform(0.018, 0.045),
            r.symmetric(0.03),
        ];
        let hairline = -face[1] + r.uniform(0.08, 0.36);
        let hair_length = r.uniform(-0.2, 0.75);
        let fringe = [r.uniform(4.0, 18.0), r.uniform(0.0, std::f32::consts::TAU)];
        let mut texture = [[0.0f32; 4]; 3];
        for t in &mut texture {
            *t = [
                r.symmetric(14.0),
                r.symmetric(14.0),
                r.uniform(0.0, std::f32::consts::TAU),
                r.uniform(0.0, 0.06),
            ];
        }
        let mole = if r.bernoulli(0.35) {
            [
                r.symmetric(0.35),
                r.uniform(-0.1, 0.45),
                r.uniform(0.012, 0.025),
            ]
        } else {
            [0.0, 0.0, 0.0]
        };
        let beard = if r.bernoulli(0.25) {
            r.uniform(0.3, 0.9)
        } else {
            0.0
        };
        let glasses = r.bernoulli(0.15);
        IdentityParams {
            skin,
            hair,
            iris,
            lips,
            face,
            jaw,
            eye_y,
            eye_dx,
            eye_r,
            brow,
            nose,
            mouth,
            hairline,
            hair_length,
            fringe,
            texture,
            mole,
            beard,
            glasses,
        }
    }

    /// The nuisance of image `image` of global identity `identity` (deterministic in
    /// (seed, identity, image)); strengths scale with the difficulty.
    pub fn nuisance(&self, identity: u64, image: u64) -> Nuisance {
        let d = self.config.difficulty.max(0.0);
        let mut r = SplitMix64::from_parts(&[self.config.seed, TAG_NUISANCE, identity, image]);
        let angle = (r.normal() * 0.16 * d).clamp(-0.45 * d, 0.45 * d);
        let scale = 1.0 + r.symmetric(0.10 * d);
        let shift = [r.symmetric(0.07 * d), r.symmetric(0.07 * d)];
        let theta = r.uniform(0.0, std::f32::consts::TAU);
        let light_dir = [theta.cos(), theta.sin()];
        let light_strength = r.uniform(0.0, 0.45 * d).min(0.9);
        let gain = (1.0 + r.symmetric(0.30 * d)).max(0.2);
        let cast = [
            r.symmetric(0.06 * d),
            r.symmetric(0.06 * d),
            r.symmetric(0.06 * d),
        ];
        let expression = [
            r.symmetric(0.05 * d),
            r.uniform(0.0, 0.05 * d),
            (1.0 - r.uniform(0.0, 0.6 * d)).max(0.1),
            r.symmetric(0.035 * d),
        ];
        let px = self.config.size as f32 / 112.0;
        let blur_sigma = r.uniform(0.0, 1.2 * d) * px;
        let noise_sigma = r.uniform(0.0, 0.05 * d);
        let occluder = if r.bernoulli((0.2 * d).min(0.8)) {
            let w = r.uniform(0.25, 0.7);
            let h = r.uniform(0.15, 0.5);
            let x0 = r.uniform(-0.8, 0.8 - w);
            let y0 = r.uniform(-0.7, 0.9 - h);
            let c = [r.next_f32(), r.next_f32(), r.next_f32()];
            Some(([x0, y0, x0 + w, y0 + h], c))
        } else {
            None
        };
        let background = [
            [r.next_f32(), r.next_f32(), r.next_f32()],
            [r.next_f32(), r.next_f32(), r.next_f32()],
        ];
        let noise_seed = r.next_u64();
        Nuisance {
            angle,
            scale,
            shift,
            light_dir,
            light_strength,
            gain,
            cast,
            expression,
            blur_sigma,
            noise_sigma,
            occluder,
            background,
            noise_seed,
        }
    }

    /// Renders image `image` of global identity `identity`, labelled `label`.
    pub fn render(&self, identity: u64, image: u64, label: usize) -> ImageSample {
        let id = self.identity(identity);
        let nu = self.nuisance(identity, image);
        let pixels = render_face(&id, &nu, self.config.size);
        let s = self.config.size;
        ImageSample {
            pixels,
            height: s,
            width: s,
            label,
        }
    }

    /// Renders many `(identity, image, label)` triples in parallel (order preserved).
    pub fn render_many(&self, items: &[(u64, u64, usize)]) -> Vec<ImageSample> {
        items
            .par_iter()
            .map(|&(i, j, l)| self.render(i, j, l))
            .collect()
    }
}

/// Signed distance (first-order approximation, face units) to an axis-aligned ellipse;
/// negative inside. `(r - 1) / |grad r|` with `r` the normalised radius: exact on the axes and
/// never shrinking to the minor radius far along the major axis (flat, closed eyes stay thin).
fn ellipse_sd(u: f32, v: f32, cx: f32, cy: f32, a: f32, b: f32) -> f32 {
    let (du, dv) = (u - cx, v - cy);
    let r = ((du / a).powi(2) + (dv / b).powi(2)).sqrt();
    let g = ((du / (a * a)).powi(2) + (dv / (b * b)).powi(2)).sqrt();
    if g < 1e-12 {
        return -a.min(b);
    }
    (r - 1.0) * r / g
}

/// Signed distance to a capsule (segment p-q of half-thickness r).
fn capsule_sd(u: f32, v: f32, p: [f32; 2], q: [f32; 2], r: f32) -> f32 {
    let (bx, by) = (q[0] - p[0], q[1] - p[1]);
    let (ax, ay) = (u - p[0], v - p[1]);
    let t = ((ax * bx + ay * by) / (bx * bx + by * by).max(1e-12)).clamp(0.0, 1.0);
    let (dx, dy) = (ax - t * bx, ay - t * by);
    (dx * dx + dy * dy).sqrt() - r
}

/// Coverage of a shape with signed distance `sd` by a pixel of footprint `pw`.
fn cover(sd: f32, pw: f32) -> f32 {
    (0.5 - sd / pw).clamp(0.0, 1.0)
}

fn blend(c: &mut [f32; 3], col: [f32; 3], a: f32) {
    if a > 0.0 {
        for k in 0..3 {
            c[k] += (col[k] - c[k]) * a;
        }
    }
}

fn scale3(c: [f32; 3], s: f32) -> [f32; 3] {
    [c[0] * s, c[1] * s, c[2] * s]
}

/// The face colour at face coordinates (u, v) over `c`, for a pixel footprint `pw`.
fn shade_face(id: &IdentityParams, nu: &Nuisance, u: f32, v: f32, pw: f32, c: &mut [f32; 3]) {
    let [fw, fh] = id.face;
    // Hair behind the head.
    let hair_back = ellipse_sd(u, v, 0.0, -0.08, fw + 0.09, fh + 0.02).max(v - id.hair_length);
    blend(c, id.hair, cover(hair_back, pw));
    // Neck.
    let neck = (u.abs() - fw * 0.45).max(0.4 - v);
    blend(c, scale3(id.skin, 0.8), cover(neck, pw));
    // Face: an ellipse narrowing towards the chin.
    let t = (v / fh).clamp(0.0, 1.0);
    let width = fw * (1.0 - id.jaw * t * t);
    let face_sd = ellipse_sd(u, v, 0.0, 0.0, width, fh);
    let face_a = cover(face_sd, pw);
    if face_a <= 0.0 {
        return;
    }
    let mut skin = id.skin;
    let mut tex = 0.0;
    for &[fx, fy, ph, amp] in &id.texture {
        tex += amp * (fx * u + fy * v + ph).sin();
    }
    skin = scale3(skin, 1.0 + tex - 0.08 * (u / fw).powi(2));
    let mut f = *c;
    blend(&mut f, skin, 1.0);
    // Beard on the lower face.
    if id.beard > 0.0 {
        let beard_sd = (id.nose[0] + 0.06 - v).max(face_sd);
        blend(&mut f, id.hair, cover(beard_sd, pw) * id.beard * 0.8);
    }
    // Mole.
    if id.mole[2] > 0.0 {
        let sd = ellipse_sd(u, v, id.mole[0], id.mole[1], id.mole[2], id.mole[2]);
        blend(&mut f, scale3(id.skin, 0.45), cover(sd, pw));
    }
    let [smile, open, eye_open, brow_raise] = nu.expression;
    // Everything drawn around an eye (lids, brow, glasses) lies within this box of its centre.
    let eye_reach_u = id.eye_r[0] * 1.45 + 0.07 + pw;
    let eye_reach_v = id.brow[0] + brow_raise.abs() + id.brow[1] + id.eye_r[0] * 1.25 + 0.07 + pw;
    for side in [-1.0f32, 1.0] {
        let ex = side * id.eye_dx;
        if (u - ex).abs() > eye_reach_u || (v - id.eye_y).abs() > eye_reach_v {
            continue;
        }
        let (rx, ry) = (id.eye_r[0], (id.eye_r[1] * eye_open).max(0.004));
        // Sclera, iris, pupil, clipped to the open eye.
        let sclera = ellipse_sd(u, v, ex, id.eye_y, rx, ry);
        blend(&mut f, [0.93, 0.92, 0.90], cover(sclera, pw));
        let ir = id.eye_r[1] * 0.85;
        let iris = ellipse_sd(u, v, ex, id.eye_y, ir, ir).max(sclera);
        blend(&mut f, id.iris, cover(iris, pw));
        let pupil = ellipse_sd(u, v, ex, id.eye_y, ir * 0.45, ir * 0.45).max(sclera);
        blend(&mut f, [0.02, 0.02, 0.02], cover(pupil, pw));
        // Eyelid line.
        let lid = (ellipse_sd(u, v, ex, id.eye_y, rx, ry).abs() - 0.006).max(v - id.eye_y);
        blend(&mut f, scale3(id.skin, 0.4), cover(lid, pw) * 0.8);
        // Eyebrow.
        let by = id.eye_y - id.brow[0] - brow_raise;
        let (half, tilt) = (rx * 1.25, id.brow[2] * side);
        let p = [ex - half * tilt.cos(), by + half * tilt.sin()];
        let q = [ex + half * tilt.cos(), by - half * tilt.sin()];
        let brow = capsule_sd(u, v, p, q, id.brow[1] * 0.5);
        blend(&mut f, id.hair, cover(brow, pw) * 0.95);
        // Glasses.
        if id.glasses {
            let rim = ellipse_sd(u, v, ex, id.eye_y, rx * 1.45, rx * 1.1).abs() - 0.012;
            blend(&mut f, [0.08, 0.08, 0.1], cover(rim, pw));
        }
    }
    if id.glasses {
        let bridge = capsule_sd(
            u,
            v,
            [-id.eye_dx + id.eye_r[0] * 1.45, id.eye_y],
            [id.eye_dx - id.eye_r[0] * 1.45, id.eye_y],
            0.01,
        );
        blend(&mut f, [0.08, 0.08, 0.1], cover(bridge, pw));
    }
    // Nose: a shaded ridge and two nostrils.
    let ridge = capsule_sd(
        u,
        v,
        [0.0, id.eye_y + 0.05],
        [0.0, id.nose[0] - 0.02],
        id.nose[1] * 0.35,
    );
    blend(&mut f, scale3(id.skin, 0.85), cover(ridge, pw) * 0.6);
    for side in [-1.0f32, 1.0] {
        let n = ellipse_sd(
            u,
            v,
            side * id.nose[1] * 0.6,
            id.nose[0],
            id.nose[1] * 0.4,
            id.nose[1] * 0.25,
        );
        blend(&mut f, scale3(id.skin, 0.45), cover(n, pw));
    }
    // Mouth: a curved band, opened by the expression.
    let [my, mw, thick, rest_smile] = id.mouth;
    let du = (u / mw).clamp(-1.0, 1.0);
    let curve = my - (rest_smile + smile) * (1.0 - du * du) + (rest_smile + smile) * 0.5;
    let half = (thick * 0.5 + open) * (1.0 - du * du).sqrt().max(0.15);
    let mouth_sd = ((v - curve).abs() - half).max(u.abs() - mw);
    blend(&mut f, id.lips, cover(mouth_sd, pw));
    if open > 0.0 {
        let inner =
            ((v - curve).abs() - open * 0.8 * (1.0 - du * du).sqrt()).max(u.abs() - mw * 0.85);
        blend(&mut f, [0.15, 0.05, 0.05], cover(inner, pw));
    }
    // Fringe: hair over the forehead above a wavy hairline.
    let line = id.hairline + 0.03 * (id.fringe[0] * u + id.fringe[1]).sin();
    let fringe_sd = (v - line).max(face_sd);
    blend(&mut f, id.hair, cover(fringe_sd, pw));
    // Composite the face over what lies behind it.
    blend(c, f, face_a);
}

/// Renders one face as HWC RGB bytes of `size` x `size`.
pub fn render_face(id: &IdentityParams, nu: &Nuisance, size: usize) -> Vec<u8> {
    let s = size.max(1);
    let mut buf = vec![0f32; s * s * 3];
    let (sin, cos) = nu.angle.sin_cos();
    let pw = 2.0 / s as f32 / nu.scale;
    for py in 0..s {
        let y = (py as f32 + 0.5) / s as f32 * 2.0 - 1.0;
        for px in 0..s {
            let x = (px as f32 + 0.5) / s as f32 * 2.0 - 1.0;
            let t = (x + 1.0) * 0.5;
            let mut c = lerp3(nu.background[0], nu.background[1], t);
            let (xs, ys) = ((x - nu.shift[0]) / nu.scale, (y - nu.shift[1]) / nu.scale);
            let u = cos * xs + sin * ys;
            let v = -sin * xs + cos * ys;
            shade_face(id, nu, u, v, pw, &mut c);
            if let Some((r, col)) = nu.occluder {
                let sd = (r[0] - x).max(x - r[2]).max(r[1] - y).max(y - r[3]);
                blend(&mut c, col, cover(sd, 2.0 / s as f32));
            }
            let light =
                nu.gain * (1.0 + nu.light_strength * (x * nu.light_dir[0] + y * nu.light_dir[1]));
            let i = (py * s + px) * 3;
            for k in 0..3 {
                buf[i + k] = c[k] * light + nu.cast[k];
            }
        }
    }
    if nu.blur_sigma > 0.3 {
        gaussian_blur(&mut buf, s, s, nu.blur_sigma);
    }
    let mut r = SplitMix64::new(nu.noise_seed);
    buf.iter()
        .map(|&v| {
            let n = if nu.noise_sigma > 0.0 {
                r.normal() * nu.noise_sigma
            } else {
                0.0
            };
            ((v + n).clamp(0.0, 1.0) * 255.0).round() as u8
        })
        .collect()
}

/// Separable Gaussian blur of an HWC 3-channel f32 buffer, edges clamped.
fn gaussian_blur(buf: &mut [f32], h: usize, w: usize, sigma: f32) {
    let radius = (sigma * 3.0).ceil() as isize;
    let mut kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= sum);
    let mut tmp = vec![0f32; buf.len()];
    for y in 0..h {
        for x in 0..w {
            for k in 0..3 {
                let mut acc = 0.0;
                for (j, kv) in kernel.iter().enumerate() {
                    let xx = (x as isize + j as isize - radius).clamp(0, w as isize - 1) as usize;
                    acc += kv * buf[(y * w + xx) * 3 + k];
                }
                tmp[(y * w + x) * 3 + k] = acc;
            }
        }
    }
    for y in 0..h {
        for x in 0..w {
            for k in 0..3 {
                let mut acc = 0.0;
                for (j, kv) in kernel.iter().enumerate() {
                    let yy = (y as isize + j as isize - radius).clamp(0, h as isize - 1) as usize;
                    acc += kv * tmp[(yy * w + x) * 3 + k];
                }
                buf[(y * w + x) * 3 + k] = acc;
            }
        }
    }
}

/// A synthetic dataset: `identities` identities of one split, `images_per_identity` images each.
/// Sample `i` is image `i % images_per_identity` of identity `i / images_per_identity`, whose
/// label is the identity's position in the split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticDataset {
    /// The generator.
    pub faces: SyntheticFaces,
    /// Which identities.
    pub split: SyntheticSplit,
    /// Number of identities.
    pub identities: usize,
    /// Images per identity.
    pub images_per_identity: usize,
}

impl SyntheticDataset {
    /// A dataset of `identities` x `images_per_identity` images of `split`.
    pub fn new(
        config: SynthConfig,
        split: SyntheticSplit,
        identities: usize,
        images_per_identity: usize,
    ) -> Self {
        Self {
            faces: SyntheticFaces::new(config),
            split,
            identities,
            images_per_identity,
        }
    }

    /// [`SyntheticDataset::new`], checked: the config is valid ([`SynthConfig::validate`]) and
    /// `identities x images_per_identity` neither overflows nor exceeds
    /// [`MAX_SYNTH_SAMPLES`], so nothing is drawn for a dataset that cannot fit in memory.
    pub fn try_new(
        config: SynthConfig,
        split: SyntheticSplit,
        identities: usize,
        images_per_identity: usize,
    ) -> crate::Result<Self> {
        let me = Self::new(config, split, identities, images_per_identity);
        me.check()?;
        Ok(me)
    }

    /// The checks of [`SyntheticDataset::try_new`] on an existing dataset.
    pub fn check(&self) -> crate::Result<()> {
        self.faces.config.validate()?;
        let n = (self.identities as u64).checked_mul(self.images_per_identity as u64);
        match n {
            Some(n) if n <= MAX_SYNTH_SAMPLES => Ok(()),
            _ => Err(crate::DataError::Invalid(format!(
                "synthetic data of {} identities x {} images per identity is more than the {MAX_SYNTH_SAMPLES} samples allowed",
                self.identities, self.images_per_identity
            ))),
        }
    }

    /// Image `image` of the split's `identity`-th identity, labelled with `identity`.
    pub fn image(&self, identity: usize, image: usize) -> ImageSample {
        self.faces
            .render(self.split.identity(identity), image as u64, identity)
    }
}

impl SyntheticDataset {
    /// The images of `pairs` (identity positions and image indices of this dataset) in pair
    /// order, rendered in parallel, with the genuine flags.
    pub fn verification_set(&self, pairs: &PairList) -> VerificationSet {
        let items: Vec<(u64, u64, usize)> = pairs
            .pairs
            .iter()
            .flat_map(|p| [p.a, p.b])
            .map(|r| (self.split.identity(r.identity), r.image as u64, r.identity))
            .collect();
        VerificationSet {
            samples: self.faces.render_many(&items),
            issame: pairs.pairs.iter().map(|p| p.same).collect(),
        }
    }
}

/// Held-out verification data: `identities` held-out identities with `images_per_identity`
/// images, and an LFW-like list of `folds` x (`per_fold` genuine + `per_fold` impostor) pairs
/// drawn with `pair_seed`, returned as images in pair order plus the list itself (to write
/// as a pairs file). Settings that overflow, or whose images would take more than
/// [`MAX_RENDER_BYTES`] of memory, are errors before anything is drawn.
pub fn held_out_verification(
    config: SynthConfig,
    identities: usize,
    images_per_identity: usize,
    folds: usize,
    per_fold: usize,
    pair_seed: u64,
) -> crate::Result<(VerificationSet, PairList)> {
    let data = SyntheticDataset::try_new(
        config,
        SyntheticSplit::HeldOut,
        identities,
        images_per_identity,
    )?;
    let image_bytes = (config.size as u64).pow(2) * 3;
    let bytes = (folds as u64)
        .checked_mul(per_fold as u64)
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| n.checked_mul(image_bytes));
    if bytes.is_none_or(|b| b > MAX_RENDER_BYTES) {
        return Err(crate::DataError::Invalid(format!(
            "{folds} folds x 2 x {per_fold} pairs of {0}x{0} images need more than the {MAX_RENDER_BYTES} bytes of memory allowed",
            config.size
        )));
    }
    let pairs = PairList::draw(identities, images_per_identity, folds, per_fold, pair_seed)?;
    Ok((data.verification_set(&pairs), pairs))
}

/// Folder name of the `index`-th identity of `split` in written datasets.
pub fn identity_name(split: SyntheticSplit, index: usize) -> String {
    match split {
        SyntheticSplit::Train => format!("id{index:06}"),
        SyntheticSplit::HeldOut => format!("heldout{index:06}"),
    }
}

impl SyntheticDataset {
    /// Writes the dataset as an image folder, `dir/<identity>/<identity>_<NNNN>.png` (image
    /// numbers 1-based, LFW style), plus `dir/synth.json` recording the generation settings.
    /// When `pairs` is given, also writes `dir/pairs.txt` in LFW's format, so the folder reads
    /// back as an LFW-layout pair set. Images are rendered and encoded in parallel; each file is
    /// written to a temporary name and renamed.
    pub fn write_folder(
        &self,
        dir: &std::path::Path,
        pairs: Option<&PairList>,
    ) -> crate::Result<()> {
        use crate::error::DataError;
        let names: Vec<String> = (0..self.identities)
            .map(|i| identity_name(self.split, i))
            .collect();
        for n in &names {
            let d = dir.join(n);
            std::fs::create_dir_all(&d).map_err(|e| DataError::io(&d, e))?;
        }
        (0..self.len()).into_par_iter().try_for_each(|i| {
            let (id, im) = (i / self.images_per_identity, i % self.images_per_identity);
            let path = dir
                .join(&names[id])
                .join(format!("{}_{:04}.png", names[id], im + 1));
            crate::sample::write_atomic(&path, &self.image(id, im).to_png()?)
        })?;
        let meta = serde_json::json!({
            "generator": "visage synthetic identities",
            "config": self.faces.config,
            "split": self.split,
            "identities": self.identities,
            "images_per_identity": self.images_per_identity,
            "pairs": pairs.map(|p| serde_json::json!({"folds": p.folds, "per_fold": p.per_fold, "seed": p.seed})),
        });
        let text =
            serde_json::to_string_pretty(&meta).map_err(|e| DataError::Invalid(e.to_string()))?;
        crate::sample::write_atomic(&dir.join("synth.json"), text.as_bytes())?;
        if let Some(p) = pairs {
            p.write_lfw(&dir.join("pairs.txt"), &names)?;
        }
        Ok(())
    }
}

impl SampleSource for SyntheticDataset {
    fn len(&self) -> usize {
        // Saturating: an unchecked dataset (see `try_new`) never panics here.
        self.identities.saturating_mul(self.images_per_identity)
    }

    fn label(&self, index: usize) -> crate::Result<usize> {
        if index >= self.len() {
            return Err(crate::DataError::Invalid(format!(
                "synthetic index {index} out of {}",
                self.len()
            )));
        }
        Ok(index / self.images_per_identity.max(1))
    }

    fn get(&self, index: usize) -> crate::Result<ImageSample> {
        let label = self.label(index)?;
        Ok(self.image(label, index % self.images_per_identity))
    }

    fn num_classes(&self) -> usize {
        self.identities
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_abs_diff(a: &ImageSample, b: &ImageSample) -> f64 {
        a.pixels
            .iter()
            .zip(&b.pixels)
            .map(|(&x, &y)| (x as f64 - y as f64).abs())
            .sum::<f64>()
            / a.pixels.len() as f64
    }

    #[test]
    fn deterministic_and_independent_of_order() {
        let f = SyntheticFaces::new(SynthConfig {
            size: 32,
            seed: 3,
            difficulty: 1.0,
        });
        let a = f.render(5, 2, 0);
        let many = f.render_many(&[(9, 9, 1), (5, 2, 0), (1, 0, 2)]);
        assert_eq!(a, many[1]);
        assert_eq!((a.height, a.width, a.pixels.len()), (32, 32, 32 * 32 * 3));
        let other_seed = SyntheticFaces::new(SynthConfig {
            seed: 4,
            ..f.config
        })
        .render(5, 2, 0);
        assert_ne!(a.pixels, other_seed.pixels);
    }

    #[test]
    fn zero_difficulty_removes_pose_and_lighting() {
        let f = SyntheticFaces::new(SynthConfig {
            size: 48,
            seed: 1,
            difficulty: 0.0,
        });
        let n = f.nuisance(7, 3);
        assert_eq!(
            (n.angle, n.scale, n.shift, n.gain),
            (0.0, 1.0, [0.0, 0.0], 1.0)
        );
        assert_eq!(
            (n.blur_sigma, n.noise_sigma, n.occluder.is_none()),
            (0.0, 0.0, true)
        );
        let hard = SyntheticFaces::new(SynthConfig {
            difficulty: 2.0,
            ..f.config
        });
        let spread =
            |ff: &SyntheticFaces| (0..50).map(|j| ff.nuisance(7, j).angle.abs()).sum::<f32>();
        assert!(spread(&hard) > 0.0);
    }

    #[test]
    fn same_identity_is_closer_than_other_identities_at_low_difficulty() {
        // Pixel distance between two images of one identity must be smaller, on average,
        // than between images of different identities when nuisance is mild.
        let f = SyntheticFaces::new(SynthConfig {
            size: 32,
            seed: 11,
            difficulty: 0.3,
        });
        let mut same = 0.0;
        let mut diff = 0.0;
        for i in 0..8u64 {
            let a = f.render(i, 0, 0);
            same += mean_abs_diff(&a, &f.render(i, 1, 0));
            diff += mean_abs_diff(&a, &f.render(i + 100, 1, 0));
        }
        assert!(same < diff, "same {same} diff {diff}");
    }

    #[test]
    fn face_is_centred_and_background_varies() {
        // At zero difficulty the centre pixel lies on the face (skin-like, between the eyes
        // and the mouth) whatever the background.
        let f = SyntheticFaces::new(SynthConfig {
            size: 64,
            seed: 2,
            difficulty: 0.0,
        });
        let a = f.render(0, 0, 0);
        let b = f.render(0, 1, 0);
        assert_ne!(a.rgb(0, 0), b.rgb(0, 0), "background is per image");
        let id = f.identity(0);
        let centre = a.rgb(36, 32);
        let skin = id.skin.map(|c| (c * 255.0) as i32);
        let err: i32 = (0..3).map(|k| (centre[k] as i32 - skin[k]).abs()).sum();
        assert!(err < 60, "centre {centre:?} skin {skin:?}");
    }

    #[test]
    fn splits_are_disjoint_and_labels_follow_index() {
        let cfg = SynthConfig {
            size: 16,
            ..SynthConfig::default()
        };
        let train = SyntheticDataset::new(cfg, SyntheticSplit::Train, 3, 4);
        let held = SyntheticDataset::new(cfg, SyntheticSplit::HeldOut, 3, 4);
        assert_eq!(train.len(), 12);
        assert_eq!(train.label(7).unwrap(), 1);
        assert!(train.label(12).is_err());
        assert_ne!(train.get(0).unwrap().pixels, held.get(0).unwrap().pixels);
        assert_eq!(SyntheticSplit::HeldOut.identity(0), HELD_OUT_BASE);
    }

    #[test]
    fn held_out_verification_renders_pairs_in_order() {
        let cfg = SynthConfig {
            size: 16,
            seed: 9,
            difficulty: 1.0,
        };
        let (set, list) = held_out_verification(cfg, 10, 4, 2, 3, 5).unwrap();
        assert_eq!((set.len(), set.samples.len()), (12, 24));
        let held = SyntheticDataset::new(cfg, SyntheticSplit::HeldOut, 10, 4);
        for (i, p) in list.pairs.iter().enumerate() {
            let (a, b, same) = set.pair(i);
            assert_eq!(same, p.same);
            assert_eq!(*a, held.image(p.a.identity, p.a.image));
            assert_eq!(*b, held.image(p.b.identity, p.b.image));
        }
    }
}

/// What [`write_synthetic_folder`] writes: the generator, the split, the sizes and an
/// optional LFW pair list (what `visage data synth` takes).
#[derive(Debug, Clone, PartialEq)]
pub struct SynthFolderRequest {
    /// The output folder (created).
    pub out: std::path::PathBuf,
    /// Image side, seed and nuisance strength of the faces.
    pub config: SynthConfig,
    /// Training or held-out identities.
    pub split: SyntheticSplit,
    /// Number of identities (> 0).
    pub identities: usize,
    /// Images per identity (> 0).
    pub images_per_identity: usize,
    /// Also write `pairs.txt` (10 folds) with this many pairs: a positive multiple of 20,
    /// half genuine, half impostor.
    pub pairs: Option<usize>,
    /// Seed of the pair draw.
    pub pairs_seed: u64,
}

/// What [`write_synthetic_folder`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthFolderSummary {
    /// Images written.
    pub images: usize,
    /// Pairs written to `pairs.txt`, if any.
    pub pairs: Option<usize>,
    /// Seconds of rendering and writing.
    pub seconds: f64,
}

/// Checks `request` (image side at least 8, positive sizes, a finite difficulty >= 0, pairs
/// a positive multiple of 20; each an [`DataError::Invalid`](crate::DataError::Invalid)
/// naming the setting), then writes the synthetic identities as an image folder
/// (`out/<identity>/<identity>_<NNNN>.png`, [`SyntheticDataset::write_folder`]) with
/// `pairs.txt` when pairs are asked for.
pub fn write_synthetic_folder(request: &SynthFolderRequest) -> crate::Result<SynthFolderSummary> {
    use crate::error::DataError;
    let r = request;
    if r.config.size < 8 {
        return Err(DataError::Invalid(format!(
            "size must be at least 8 pixels (got {})",
            r.config.size
        )));
    }
    if r.identities == 0 || r.images_per_identity == 0 {
        return Err(DataError::Invalid(
            "identities and images per identity must be positive".into(),
        ));
    }
    if !(r.config.difficulty.is_finite() && r.config.difficulty >= 0.0) {
        return Err(DataError::Invalid(
            "difficulty must be a finite number >= 0".into(),
        ));
    }
    let data = SyntheticDataset::try_new(r.config, r.split, r.identities, r.images_per_identity)?;
    let pairs = match r.pairs {
        Some(n) if n == 0 || n % 20 != 0 => {
            return Err(DataError::Invalid(format!(
                "pairs must be a positive multiple of 20 (10 folds, half genuine), got {n}"
            )))
        }
        Some(n) => Some(PairList::draw(
            r.identities,
            r.images_per_identity,
            10,
            n / 20,
            r.pairs_seed,
        )?),
        None => None,
    };
    std::fs::create_dir_all(&r.out).map_err(|e| DataError::io(&r.out, e))?;
    let t = std::time::Instant::now();
    data.write_folder(&r.out, pairs.as_ref())?;
    Ok(SynthFolderSummary {
        images: data.len(),
        pairs: pairs.as_ref().map(|p| p.pairs.len()),
        seconds: t.elapsed().as_secs_f64(),
    })
}
