//! `chunked_margin_cross_entropy` against an independent float64 reference written here with
//! plain loops (the full `[N, C]` logits, margin on the target, cross-entropy), its gradients
//! against central finite differences of that reference, for block sizes that divide C, do
//! not, are 1 and exceed C; plus the edge cases (one class, zero rows, cos = +-1) and errors.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use visage_heads::loss::chunked_margin_cross_entropy;
use visage_heads::margin;
use visage_heads::HeadError;

mod common;
use common::{from_tensor, to_tensor, Mat};

type F32 = Autodiff<NdArray<f32>>;
type F64 = Autodiff<NdArray<f64>>;

#[derive(Clone, Copy, Debug)]
enum Margin {
    None,
    CosFace(f64),
    ArcFace(f64),
}

impl Margin {
    /// The margined target cosine, in f64 (ArcFace with the th/mm fallback).
    fn apply(self, c: f64) -> f64 {
        match self {
            Margin::None => c,
            Margin::CosFace(m) => c - m,
            Margin::ArcFace(m) => {
                if c > (std::f64::consts::PI - m).cos() {
                    c * m.cos() - (1.0 - c * c).max(0.0).sqrt() * m.sin()
                } else {
                    c - m * m.sin()
                }
            }
        }
    }

    fn lib<B: Backend>(self, c: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Margin::None => c,
            Margin::CosFace(m) => c.sub_scalar(m),
            Margin::ArcFace(m) => margin::arcface(c, m, false),
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    fn mat(&mut self, rows: usize, cols: usize) -> Mat {
        (0..rows)
            .map(|_| (0..cols).map(|_| self.next()).collect())
            .collect()
    }
}

fn normalized(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    if n == 0.0 {
        return vec![0.0; v.len()];
    }
    v.iter().map(|a| a / n).collect()
}

/// The full-logits loss in f64.
fn reference_loss(x: &Mat, w: &Mat, labels: &[usize], scale: f64, margin: Margin) -> f64 {
    let wn: Mat = w.iter().map(|r| normalized(r)).collect();
    let mut total = 0.0;
    for (i, row) in x.iter().enumerate() {
        let xn = normalized(row);
        let logits: Vec<f64> = wn
            .iter()
            .enumerate()
            .map(|(j, wj)| {
                let c: f64 = xn.iter().zip(wj).map(|(a, b)| a * b).sum();
                scale * if j == labels[i] { margin.apply(c) } else { c }
            })
            .collect();
        let top = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = top + logits.iter().map(|z| (z - top).exp()).sum::<f64>().ln();
        total += lse - logits[labels[i]];
    }
    total / x.len() as f64
}

fn finite_difference(m: &Mat, mut f: impl FnMut(&Mat) -> f64) -> Mat {
    let h = 1e-6;
    let mut out = vec![vec![0.0; m[0].len()]; m.len()];
    for i in 0..m.len() {
        for j in 0..m[0].len() {
            let mut plus = m.clone();
            plus[i][j] += h;
            let mut minus = m.clone();
            minus[i][j] -= h;
            out[i][j] = (f(&plus) - f(&minus)) / (2.0 * h);
        }
    }
    out
}

struct LibOut {
    loss: f64,
    grad_x: Mat,
    grad_w: Mat,
}

fn run<B: AutodiffBackend>(
    x: &Mat,
    w: &Mat,
    labels: &[usize],
    scale: f64,
    margin: Margin,
    block: usize,
) -> LibOut {
    let device = Default::default();
    let xt = to_tensor::<B>(x, &device).require_grad();
    let wt = to_tensor::<B>(w, &device).require_grad();
    let lt = Tensor::<B, 1, Int>::from_data(
        TensorData::new(labels.iter().map(|&l| l as i64).collect(), [labels.len()]),
        &device,
    );
    let loss =
        chunked_margin_cross_entropy(xt.clone(), wt.clone(), lt, scale, block, |c| margin.lib(c))
            .unwrap();
    let grads = loss.backward();
    LibOut {
        loss: loss.into_data().convert::<f64>().to_vec::<f64>().unwrap()[0],
        grad_x: from_tensor(xt.grad(&grads).unwrap()),
        grad_w: from_tensor(wt.grad(&grads).unwrap()),
    }
}

fn max_abs(m: &Mat) -> f64 {
    m.iter().flatten().fold(0.0, |a, b| a.max(b.abs()))
}

fn assert_close(what: &str, got: &Mat, want: &Mat, tol: f64) {
    let bound = tol * max_abs(want).max(1e-3);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        for (j, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(a.is_finite(), "{what}[{i}][{j}] = {a} is not finite");
            assert!(
                (a - b).abs() <= bound,
                "{what}[{i}][{j}]: got {a}, reference {b} (tolerance {bound})"
            );
        }
    }
}

fn check(name: &str, x: &Mat, w: &Mat, labels: &[usize], scale: f64, margin: Margin) {
    let want = reference_loss(x, w, labels, scale, margin);
    let want_gx = finite_difference(x, |x| reference_loss(x, w, labels, scale, margin));
    let want_gw = finite_difference(w, |w| reference_loss(x, w, labels, scale, margin));
    let classes = w.len();
    for block in [1, 3, classes, classes + 5] {
        let case = format!("{name} block {block}");
        let got = run::<F64>(x, w, labels, scale, margin, block);
        assert!(
            (got.loss - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{case} [f64]: loss {} vs reference {want}",
            got.loss
        );
        assert_close(&format!("{case} [f64] dL/dx"), &got.grad_x, &want_gx, 1e-6);
        assert_close(&format!("{case} [f64] dL/dW"), &got.grad_w, &want_gw, 1e-6);
        let got = run::<F32>(x, w, labels, scale, margin, block);
        assert!(
            (got.loss - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{case} [f32]: loss {} vs reference {want}",
            got.loss
        );
        assert_close(&format!("{case} [f32] dL/dx"), &got.grad_x, &want_gx, 1e-4);
        assert_close(&format!("{case} [f32] dL/dW"), &got.grad_w, &want_gw, 1e-4);
    }
}

#[test]
fn matches_the_full_logits_reference_for_every_block_size() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (n, d, classes) = (5, 4, 7);
    let x = rng.mat(n, d);
    let w = rng.mat(classes, d);
    let labels = [0, 6, 3, 3, 5];
    check("normface s16", &x, &w, &labels, 16.0, Margin::None);
    check(
        "cosface s30 m0.35",
        &x,
        &w,
        &labels,
        30.0,
        Margin::CosFace(0.35),
    );
    check(
        "arcface s8 m0.5",
        &x,
        &w,
        &labels,
        8.0,
        Margin::ArcFace(0.5),
    );
    check(
        "arcface s64 m0.5",
        &x,
        &w,
        &labels,
        64.0,
        Margin::ArcFace(0.5),
    );
}

#[test]
fn one_class_gives_zero_loss_and_zero_gradient() {
    // With C = 1 the softmax has one entry: loss 0 whatever the margin (blocks hold only the
    // masked target column).
    let mut rng = Rng(7);
    let x = rng.mat(3, 4);
    let w = rng.mat(1, 4);
    for margin in [Margin::None, Margin::ArcFace(0.5)] {
        let got = run::<F32>(&x, &w, &[0, 0, 0], 64.0, margin, 1);
        assert!(got.loss.abs() < 1e-6, "{margin:?}: loss {}", got.loss);
        assert!(max_abs(&got.grad_x) < 1e-6 && max_abs(&got.grad_w) < 1e-6);
    }
}

#[test]
fn zero_rows_and_cosines_of_plus_minus_one_stay_finite() {
    // x0 = 0 (cosines 0), x1 = w1 (cos +1 at its target), x2 = -w2 (cos -1 at its target,
    // ArcFace's fallback), w3 = 0 (a zero class weight).
    let mut rng = Rng(11);
    let mut w = rng.mat(4, 3);
    w[3] = vec![0.0; 3];
    let x = vec![
        vec![0.0; 3],
        w[1].clone(),
        w[2].iter().map(|v| -v).collect(),
    ];
    let labels = [3, 1, 2];
    for block in [1, 2, 4] {
        let got = run::<F32>(&x, &w, &labels, 64.0, Margin::ArcFace(0.5), block);
        let want = reference_loss(&x, &w, &labels, 64.0, Margin::ArcFace(0.5));
        assert!(got.loss.is_finite(), "block {block}: loss {}", got.loss);
        assert!(
            (got.loss - want).abs() <= 1e-4 * want.abs().max(1.0),
            "block {block}: loss {} vs reference {want}",
            got.loss
        );
        for v in got.grad_x.iter().chain(&got.grad_w).flatten() {
            assert!(v.is_finite(), "block {block}: gradient {v}");
        }
        // Zero rows get no gradient (as l2_normalize gives them none).
        assert!(
            got.grad_x[0].iter().all(|v| *v == 0.0),
            "{:?}",
            got.grad_x[0]
        );
        assert!(
            got.grad_w[3].iter().all(|v| *v == 0.0),
            "{:?}",
            got.grad_w[3]
        );
    }
}

#[test]
fn bad_block_and_shapes_are_errors_naming_them() {
    let device = Default::default();
    let x = Tensor::<F32, 2>::ones([2, 3], &device);
    let w = Tensor::<F32, 2>::ones([4, 3], &device);
    let labels = Tensor::<F32, 1, Int>::zeros([2], &device);
    let err = chunked_margin_cross_entropy(x.clone(), w.clone(), labels.clone(), 16.0, 0, |c| c)
        .unwrap_err();
    assert!(
        matches!(err, HeadError::InvalidField { field: "block", .. }),
        "{err}"
    );
    let w5 = Tensor::<F32, 2>::ones([4, 5], &device);
    let err =
        chunked_margin_cross_entropy(x.clone(), w5, labels.clone(), 16.0, 2, |c| c).unwrap_err();
    assert!(
        matches!(
            err,
            HeadError::Shape {
                tensor: "embeddings",
                ..
            }
        ),
        "{err}"
    );
    let err = chunked_margin_cross_entropy(x, w, labels, 0.0, 2, |c| c).unwrap_err();
    assert!(
        matches!(err, HeadError::InvalidField { field: "scale", .. }),
        "{err}"
    );
}
