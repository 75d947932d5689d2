//! Independent float64 references for every head, written with plain loops from the formulas
//! of `docs/losses.md` (not from the library's code), central finite differences,
//! and a runner that evaluates the library on any autodiff backend.
#![allow(dead_code)]

use std::f64::consts::{FRAC_PI_4, PI};

use burn::tensor::{backend::AutodiffBackend, Int, Tensor, TensorData};
use visage_heads::{HeadKind, HeadState, HeadTensors};

mod spec;
pub use spec::HeadSpec;

pub type Mat = Vec<Vec<f64>>;

/// Deterministic uniform numbers (SplitMix64).
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    pub fn mat(&mut self, rows: usize, cols: usize) -> Mat {
        (0..rows)
            .map(|_| (0..cols).map(|_| self.uniform()).collect())
            .collect()
    }
}

/// What a head is given.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub x: Mat,
    pub labels: Vec<usize>,
    pub w: Mat,
    pub bias: Option<Vec<f64>>,
    pub iteration: u64,
    pub prev_scale: Option<f64>,
}

/// What the reference computes.
#[derive(Clone, Debug)]
pub struct RefOut {
    pub loss: f64,
    pub logits: Option<Mat>,
    pub scale: Option<f64>,
    pub centers: Option<Mat>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}
fn cosine(a: &[f64], b: &[f64]) -> f64 {
    dot(a, b) / (norm(a).max(1e-12) * norm(b).max(1e-12))
}
fn normalized(a: &[f64]) -> Vec<f64> {
    let n = norm(a).max(1e-12);
    a.iter().map(|v| v / n).collect()
}
fn cross_entropy(logits: &Mat, labels: &[usize]) -> f64 {
    let mut total = 0.0;
    for (row, &y) in logits.iter().zip(labels) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        total += lse - row[y];
    }
    total / logits.len() as f64
}
fn cos_matrix(x: &Mat, w: &Mat) -> Mat {
    x.iter()
        .map(|xi| w.iter().map(|wj| cosine(xi, wj)).collect())
        .collect()
}
/// psi from the angle directly: (-1)^k cos(m theta) - 2k.
pub fn psi_ref(theta: f64, m: u32) -> f64 {
    let k = ((m as f64 * theta / PI).floor() as i64).clamp(0, m as i64 - 1);
    let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
    sign * (m as f64 * theta).cos() - 2.0 * k as f64
}
fn lambda(base: f64, gamma: f64, power: f64, lambda_min: f64, it: u64) -> f64 {
    (base * (1.0 + gamma * it as f64).powf(-power)).max(lambda_min)
}

fn contrastive_ref(x: &Mat, labels: &[usize], margin: f64, normalize: bool) -> f64 {
    let f: Mat = if normalize {
        x.iter().map(|r| normalized(r)).collect()
    } else {
        x.clone()
    };
    let n = f.len();
    let (mut total, mut pairs) = (0.0, 0usize);
    for i in 0..n {
        for j in i + 1..n {
            let d2: f64 = f[i].iter().zip(&f[j]).map(|(a, b)| (a - b) * (a - b)).sum();
            let d = d2.sqrt();
            total += if labels[i] == labels[j] {
                0.5 * d2
            } else {
                0.5 * (margin - d).max(0.0).powi(2)
            };
            pairs += 1;
        }
    }
    if pairs == 0 {
        0.0
    } else {
        total / pairs as f64
    }
}

fn triplet_ref(x: &Mat, labels: &[usize], spec: &HeadSpec) -> f64 {
    use visage_heads::loss::{TripletDistance, TripletMining, TripletReduction};
    let margin = spec.margin.unwrap_or(0.2);
    let mining = spec.mining.unwrap_or(TripletMining::All);
    let squared = spec.distance.unwrap_or(TripletDistance::SquaredL2) == TripletDistance::SquaredL2;
    let mean_all = spec.reduction.unwrap_or(TripletReduction::Mean) == TripletReduction::Mean;
    let f: Mat = x.iter().map(|r| normalized(r)).collect();
    let n = f.len();
    let dist = |a: usize, b: usize| {
        let d2: f64 = f[a].iter().zip(&f[b]).map(|(p, q)| (p - q) * (p - q)).sum();
        if squared {
            d2
        } else {
            d2.sqrt()
        }
    };
    let mut losses = Vec::new();
    for a in 0..n {
        match mining {
            TripletMining::Hard => {
                let hp = (0..n)
                    .filter(|&p| p != a && labels[p] == labels[a])
                    .map(|p| dist(a, p))
                    .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
                let hn = (0..n)
                    .filter(|&q| labels[q] != labels[a])
                    .map(|q| dist(a, q))
                    .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
                if let (Some(hp), Some(hn)) = (hp, hn) {
                    losses.push((hp - hn + margin).max(0.0));
                }
            }
            _ => {
                for p in 0..n {
                    if p == a || labels[p] != labels[a] {
                        continue;
                    }
                    for q in 0..n {
                        if labels[q] == labels[a] {
                            continue;
                        }
                        let (dap, dan) = (dist(a, p), dist(a, q));
                        if mining == TripletMining::SemiHard && !(dap < dan && dan < dap + margin) {
                            continue;
                        }
                        losses.push((dap - dan + margin).max(0.0));
                    }
                }
            }
        }
    }
    let count = if mean_all {
        losses.len()
    } else {
        losses.iter().filter(|&&l| l > 0.0).count()
    };
    if count == 0 {
        0.0
    } else {
        losses.iter().sum::<f64>() / count as f64
    }
}

/// The reference forward. `scale_override` holds the AdaCos scale fixed (it carries no
/// gradient), for finite differences.
pub fn reference(spec: &HeadSpec, inp: &Inputs, scale_override: Option<f64>) -> RefOut {
    let (x, y, w) = (&inp.x, &inp.labels, &inp.w);
    let n = x.len();
    let classifier = |logits: Mat, scale: Option<f64>| RefOut {
        loss: cross_entropy(&logits, y),
        logits: Some(logits),
        scale,
        centers: None,
    };
    match spec.kind {
        HeadKind::Softmax => {
            let logits = x
                .iter()
                .map(|xi| {
                    w.iter()
                        .enumerate()
                        .map(|(j, wj)| dot(xi, wj) + inp.bias.as_ref().map_or(0.0, |b| b[j]))
                        .collect()
                })
                .collect();
            classifier(logits, None)
        }
        HeadKind::LSoftmax | HeadKind::SphereFace => {
            let sphere = spec.kind == HeadKind::SphereFace;
            let m = spec.margin_int.unwrap_or(4);
            let (base, gamma, power, lmin) = if sphere {
                (
                    spec.base.unwrap_or(1000.0),
                    spec.gamma.unwrap_or(0.12),
                    spec.power.unwrap_or(1.0),
                    spec.lambda_min.unwrap_or(5.0),
                )
            } else {
                (
                    spec.base.unwrap_or(1000.0),
                    spec.gamma.unwrap_or(0.000025),
                    spec.power.unwrap_or(35.0),
                    spec.lambda_min.unwrap_or(0.0),
                )
            };
            let lam = lambda(base, gamma, power, lmin, inp.iteration);
            let mut logits = Mat::new();
            for (i, xi) in x.iter().enumerate() {
                let mut row = Vec::new();
                for (j, wj) in w.iter().enumerate() {
                    let c = cosine(xi, wj).clamp(-1.0, 1.0);
                    let mag = if sphere {
                        norm(xi)
                    } else {
                        norm(xi) * norm(wj)
                    };
                    let plain = mag * c;
                    if j == y[i] && m > 1 {
                        let margin = mag * psi_ref(c.acos(), m);
                        row.push((lam * plain + margin) / (1.0 + lam));
                    } else {
                        row.push(plain);
                    }
                }
                logits.push(row);
            }
            classifier(logits, None)
        }
        HeadKind::NormFace => {
            let s = spec.scale.unwrap_or(if spec.learnable_scale == Some(true) {
                10.0
            } else {
                30.0
            });
            let logits = cos_matrix(x, w)
                .into_iter()
                .map(|r| r.into_iter().map(|c| s * c).collect())
                .collect();
            classifier(logits, None)
        }
        HeadKind::CosFace | HeadKind::ArcFace | HeadKind::Combined => {
            let s = spec.scale.unwrap_or(64.0);
            let target = |c: f64| -> f64 {
                match spec.kind {
                    HeadKind::CosFace => c - spec.margin.unwrap_or(0.35),
                    HeadKind::ArcFace => {
                        let m = spec.margin.unwrap_or(0.5);
                        let phi = (c.clamp(-1.0, 1.0).acos() + m).cos();
                        if spec.easy_margin == Some(true) {
                            if c > 0.0 {
                                phi
                            } else {
                                c
                            }
                        } else if c > (PI - m).cos() {
                            phi
                        } else {
                            c - m.sin() * m
                        }
                    }
                    _ => {
                        let (m1, m2, m3) = (
                            spec.m1.unwrap_or(1.0),
                            spec.m2.unwrap_or(0.3),
                            spec.m3.unwrap_or(0.2),
                        );
                        (m1 * c.clamp(-1.0, 1.0).acos() + m2).cos() - m3
                    }
                }
            };
            let mut logits = cos_matrix(x, w);
            for (i, row) in logits.iter_mut().enumerate() {
                row[y[i]] = target(row[y[i]]);
                row.iter_mut().for_each(|v| *v *= s);
            }
            classifier(logits, None)
        }
        HeadKind::SubCenterArcFace => {
            let (s, m, k) = (
                spec.scale.unwrap_or(64.0),
                spec.margin.unwrap_or(0.5),
                spec.sub_centers(),
            );
            let classes = w.len() / k;
            let mut logits = Mat::new();
            for (i, xi) in x.iter().enumerate() {
                let mut row = Vec::new();
                for j in 0..classes {
                    // the best of class j's sub-centres, rows j*k .. j*k + k
                    let mut c = f64::NEG_INFINITY;
                    for wr in &w[j * k..(j + 1) * k] {
                        c = c.max(cosine(xi, wr));
                    }
                    let t = if j == y[i] {
                        if c > (PI - m).cos() {
                            (c.clamp(-1.0, 1.0).acos() + m).cos()
                        } else {
                            c - m.sin() * m
                        }
                    } else {
                        c
                    };
                    row.push(s * t);
                }
                logits.push(row);
            }
            classifier(logits, None)
        }
        HeadKind::AdaCos => {
            let c_count = w.len();
            let fixed = 2f64.sqrt() * ((c_count - 1) as f64).ln();
            let cos = cos_matrix(x, w);
            let s = if let Some(s) = scale_override {
                s
            } else if spec.dynamic == Some(true) {
                let prev = inp.prev_scale.unwrap_or(fixed);
                let mut b = 0.0;
                for (i, row) in cos.iter().enumerate() {
                    for (j, c) in row.iter().enumerate() {
                        if j != y[i] {
                            b += (prev * c).exp();
                        }
                    }
                }
                let b_avg = b / n as f64;
                let mut angles: Vec<f64> = (0..n)
                    .map(|i| cos[i][y[i]].clamp(-1.0, 1.0).acos())
                    .collect();
                angles.sort_by(|a, b| a.partial_cmp(b).unwrap());
                let med = angles[(n - 1) / 2];
                b_avg.ln() / med.min(FRAC_PI_4).cos()
            } else {
                fixed
            };
            let logits = cos
                .into_iter()
                .map(|r| r.into_iter().map(|c| s * c).collect())
                .collect();
            classifier(logits, Some(s))
        }
        HeadKind::Contrastive => RefOut {
            loss: contrastive_ref(
                x,
                y,
                spec.margin.unwrap_or(1.0),
                spec.normalize.unwrap_or(false),
            ),
            logits: None,
            scale: None,
            centers: None,
        },
        HeadKind::Triplet => RefOut {
            loss: triplet_ref(x, y, spec),
            logits: None,
            scale: None,
            centers: None,
        },
        HeadKind::Center => {
            let alpha = spec.alpha.unwrap_or(0.5);
            let mut loss = 0.0;
            for (xi, &yi) in x.iter().zip(y) {
                loss += xi
                    .iter()
                    .zip(&w[yi])
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>();
            }
            loss /= 2.0 * n as f64;
            let mut centers = w.clone();
            for (j, cj) in centers.iter_mut().enumerate() {
                let members: Vec<usize> = (0..n).filter(|&i| y[i] == j).collect();
                for k in 0..cj.len() {
                    let delta: f64 = members.iter().map(|&i| w[j][k] - x[i][k]).sum::<f64>()
                        / (1.0 + members.len() as f64);
                    cj[k] = w[j][k] - alpha * delta;
                }
            }
            RefOut {
                loss,
                logits: None,
                scale: None,
                centers: Some(centers),
            }
        }
        HeadKind::DeepId2 => {
            let mut soft = spec.clone();
            soft.kind = HeadKind::Softmax;
            soft.lambda = None;
            soft.margin = None;
            soft.normalize = None;
            let ident = reference(&soft, inp, None);
            let verif = contrastive_ref(
                x,
                y,
                spec.margin.unwrap_or(1.0),
                spec.normalize.unwrap_or(false),
            );
            RefOut {
                loss: ident.loss + spec.lambda.unwrap_or(0.05) * verif,
                logits: ident.logits,
                scale: None,
                centers: None,
            }
        }
    }
}

/// Central finite differences of `f` with respect to every entry of `m`.
pub fn fd_grad(m: &Mat, h: f64, mut f: impl FnMut(&Mat) -> f64) -> Mat {
    let mut g = vec![vec![0.0; m[0].len()]; m.len()];
    let mut p = m.clone();
    for i in 0..m.len() {
        for k in 0..m[0].len() {
            p[i][k] = m[i][k] + h;
            let up = f(&p);
            p[i][k] = m[i][k] - h;
            let down = f(&p);
            p[i][k] = m[i][k];
            g[i][k] = (up - down) / (2.0 * h);
        }
    }
    g
}

/// Reference gradients of the loss (x, and the class weights where they get a gradient).
pub fn reference_grads(spec: &HeadSpec, inp: &Inputs) -> (Mat, Option<Mat>) {
    let h = 1e-6;
    let scale = reference(spec, inp, None).scale;
    if spec.kind == HeadKind::ArcFace && spec.detach_margin == Some(true) {
        // Gradient of sum (p - onehot)/N * s cos with p the margin softmax held fixed.
        let out = reference(spec, inp, None);
        let logits = out.logits.unwrap();
        let s = spec.scale.unwrap_or(64.0);
        let n = inp.x.len() as f64;
        let coef: Mat = logits
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = row.iter().map(|v| (v - m).exp()).sum();
                row.iter()
                    .enumerate()
                    .map(|(j, v)| {
                        ((v - m).exp() / z - if j == inp.labels[i] { 1.0 } else { 0.0 }) / n
                    })
                    .collect()
            })
            .collect();
        let surrogate = |x: &Mat, w: &Mat| -> f64 {
            let cos = cos_matrix(x, w);
            cos.iter()
                .zip(&coef)
                .map(|(r, c)| r.iter().zip(c).map(|(a, b)| s * a * b).sum::<f64>())
                .sum()
        };
        let gx = fd_grad(&inp.x, h, |x| surrogate(x, &inp.w));
        let gw = fd_grad(&inp.w, h, |w| surrogate(&inp.x, w));
        return (gx, Some(gw));
    }
    let gx = fd_grad(&inp.x, h, |x| {
        let mut p = inp.clone();
        p.x = x.clone();
        reference(spec, &p, scale).loss
    });
    let gw = if spec.kind.is_classifier() {
        Some(fd_grad(&inp.w, h, |w| {
            let mut p = inp.clone();
            p.w = w.clone();
            reference(spec, &p, scale).loss
        }))
    } else {
        None
    };
    (gx, gw)
}

/// What the library computes on one backend.
#[derive(Debug)]
pub struct LibOut {
    pub loss: f64,
    pub logits: Option<Mat>,
    pub grad_x: Mat,
    pub grad_w: Option<Mat>,
    pub scale: Option<f64>,
    pub centers: Option<Mat>,
}

/// `m` as a tensor of the backend's own float dtype, given explicitly: Burn 0.21 otherwise
/// takes it from a per-device registry set by whichever backend touched the device first, and
/// `NdArray<f32>` and `NdArray<f64>` (both in some test binaries) share one device.
pub fn to_tensor<B: burn::tensor::backend::Backend>(m: &Mat, device: &B::Device) -> Tensor<B, 2> {
    let (r, c) = (m.len(), m.first().map_or(0, |v| v.len()));
    let flat: Vec<f64> = m.iter().flatten().cloned().collect();
    let dtype = <B::FloatElem as burn::tensor::Element>::dtype();
    Tensor::from_data(TensorData::new(flat, [r, c]), (device, dtype))
}

pub fn from_tensor<B: burn::tensor::backend::Backend>(t: Tensor<B, 2>) -> Mat {
    let [r, c] = t.dims();
    let v: Vec<f64> = t.into_data().convert::<f64>().into_vec().unwrap();
    (0..r).map(|i| v[i * c..(i + 1) * c].to_vec()).collect()
}

pub fn labels_tensor<B: burn::tensor::backend::Backend>(
    labels: &[usize],
    device: &B::Device,
) -> Tensor<B, 1, Int> {
    let v: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Tensor::from_data(TensorData::new(v, [labels.len()]), device)
}

/// Runs the library's head (through [`visage_heads::Head`]) on backend `B`.
pub fn run_lib<B: AutodiffBackend>(spec: &HeadSpec, inp: &Inputs) -> LibOut {
    let device = B::Device::default();
    let (classes, dim) = (inp.w.len() / spec.sub_centers(), inp.x[0].len());
    let config = spec.to_config(classes.max(1), dim).expect("valid spec");
    let tensors = HeadTensors::<B> {
        weight: (!inp.w.is_empty()).then(|| to_tensor::<B>(&inp.w, &device)),
        bias: inp.bias.as_ref().map(|b| {
            let dtype = <B::FloatElem as burn::tensor::Element>::dtype();
            Tensor::from_data(TensorData::new(b.clone(), [b.len()]), (&device, dtype))
        }),
    };
    let head = config.init_with(tensors).expect("head");
    let x = to_tensor::<B>(&inp.x, &device).require_grad();
    let labels = labels_tensor::<B>(&inp.labels, &device);
    let mut state = HeadState {
        iteration: inp.iteration,
        adacos_scale: inp.prev_scale,
    };
    let out = head
        .forward_checked(x.clone(), labels.clone(), &mut state)
        .expect("forward");
    let loss: f64 = out
        .loss
        .clone()
        .into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .unwrap()[0];
    let logits = out.logits.clone().map(|l| from_tensor(l.inner()));
    let grads = out.loss.backward();
    let grad_x = from_tensor(x.grad(&grads).expect("x has a gradient"));
    let grad_w = if spec.kind.is_classifier() {
        head.class_tensor()
            .and_then(|w| w.grad(&grads))
            .map(from_tensor)
    } else {
        None
    };
    let centers = (spec.kind == HeadKind::Center).then(|| {
        from_tensor(
            head.clone()
                .after_step(x.clone().detach(), labels.clone())
                .class_tensor()
                .unwrap(),
        )
    });
    LibOut {
        loss,
        logits,
        grad_x,
        grad_w,
        scale: state.adacos_scale,
        centers,
    }
}

pub fn max_abs(m: &Mat) -> f64 {
    m.iter().flatten().fold(0.0, |a, v| a.max(v.abs()))
}

/// `max |a - b| <= tol * max |b|` (b is the reference), with a floor for an all-zero reference.
pub fn assert_close(what: &str, a: &Mat, b: &Mat, tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: rows");
    let scale = max_abs(b).max(1e-6);
    let mut worst = 0.0f64;
    for (ra, rb) in a.iter().zip(b) {
        for (va, vb) in ra.iter().zip(rb) {
            assert!(va.is_finite(), "{what}: non-finite value {va}");
            worst = worst.max((va - vb).abs());
        }
    }
    assert!(
        worst <= tol * scale,
        "{what}: max abs diff {worst:e} > {tol:e} * {scale:e}\nlib {a:?}\nref {b:?}"
    );
}

pub fn assert_loss_close(what: &str, a: f64, b: f64) {
    assert!(a.is_finite(), "{what}: loss {a}");
    let tol = 1e-5 * b.abs().max(1e-3);
    assert!(
        (a - b).abs() <= tol,
        "{what}: loss {a} vs reference {b} (diff {:e})",
        (a - b).abs()
    );
}

/// Random inputs: labels cycle over `min(classes, n)` identities so that metric losses have
/// pairs of each kind; the order is scrambled.
pub fn random_inputs(seed: u64, n: usize, d: usize, classes: usize) -> Inputs {
    let mut rng = Rng(seed);
    let x = rng.mat(n, d);
    let w = rng.mat(classes, d);
    let ids = classes.min(n.div_ceil(2)).max(1);
    let mut labels: Vec<usize> = (0..n).map(|i| i % ids).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        labels.swap(i, j);
    }
    Inputs {
        x,
        labels,
        w,
        bias: None,
        iteration: 0,
        prev_scale: None,
    }
}

/// Full comparison of the library (on `B`) with the reference.
pub fn check_against_reference<B: AutodiffBackend>(name: &str, spec: &HeadSpec, inp: &Inputs) {
    let lib = run_lib::<B>(spec, inp);
    let r = reference(spec, inp, None);
    assert_loss_close(name, lib.loss, r.loss);
    if let Some(rl) = &r.logits {
        assert_close(
            &format!("{name} logits"),
            lib.logits.as_ref().expect("logits"),
            rl,
            1e-4,
        );
    }
    if let (Some(ls), Some(rs)) = (lib.scale, r.scale) {
        assert!(
            (ls - rs).abs() <= 1e-5 * rs.abs(),
            "{name}: scale {ls} vs {rs}"
        );
    }
    if let Some(rc) = &r.centers {
        assert_close(
            &format!("{name} centers"),
            lib.centers.as_ref().unwrap(),
            rc,
            1e-4,
        );
    }
    let (gx, gw) = reference_grads(spec, inp);
    assert_close(&format!("{name} grad_embeddings"), &lib.grad_x, &gx, 1e-4);
    if let Some(gw) = gw {
        assert_close(
            &format!("{name} grad_weight"),
            lib.grad_w.as_ref().expect("grad_weight"),
            &gw,
            1e-4,
        );
    }
}

/// `n` embeddings of width `d`, `classes * k` weight rows, labels in `[0, classes)` with
/// every class present when `n >= classes`.
pub fn subcenter_inputs(seed: u64, n: usize, d: usize, classes: usize, k: usize) -> Inputs {
    let mut inp = random_inputs(seed, n, d, classes * k);
    let mut rng = Rng(seed ^ 0x5eed);
    inp.labels = (0..n)
        .map(|i| {
            if i < classes {
                i
            } else {
                (rng.next_u64() % classes as u64) as usize
            }
        })
        .collect();
    inp
}

/// The cosine-margin heads with options that exercise each margin path (NormFace with a fixed
/// scale, CosFace, ArcFace with its fallback, easy and detached margins, the combined margin,
/// sub-center ArcFace with `k = 1`): the heads the fused CPU node serves.
pub fn cosine_head_cases() -> Vec<(&'static str, HeadSpec)> {
    let spec = HeadSpec::new;
    let mut v = vec![("normface", spec(HeadKind::NormFace))];
    let mut s = spec(HeadKind::NormFace);
    s.scale = Some(16.0);
    v.push(("normface s16", s));
    v.push(("cosface", spec(HeadKind::CosFace)));
    let mut s = spec(HeadKind::CosFace);
    s.scale = Some(30.0);
    s.margin = Some(0.4);
    v.push(("cosface s30 m0.4", s));
    v.push(("arcface", spec(HeadKind::ArcFace)));
    let mut s = spec(HeadKind::ArcFace);
    s.easy_margin = Some(true);
    v.push(("arcface easy", s));
    let mut s = spec(HeadKind::ArcFace);
    s.detach_margin = Some(true);
    v.push(("arcface detach", s));
    let mut s = spec(HeadKind::ArcFace);
    s.margin = Some(1.2);
    s.scale = Some(32.0);
    v.push(("arcface m1.2 (fallback)", s));
    v.push(("combined", spec(HeadKind::Combined)));
    let mut s = spec(HeadKind::Combined);
    s.m1 = Some(0.9);
    s.m2 = Some(0.4);
    s.m3 = Some(0.15);
    v.push(("combined 0.9/0.4/0.15", s));
    v.push(("subcenter k=1", spec(HeadKind::SubCenterArcFace)));
    v
}
