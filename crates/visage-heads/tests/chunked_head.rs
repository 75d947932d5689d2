//! The cosine heads with `chunk_classes` (their training loss over blocks of classes):
//! loss and gradients with respect to the embeddings and the class weights equal the full
//! head's (itself tested against float64 references in `reference.rs`), for block sizes that
//! do not divide C, equal 1 and reach or pass C; the loss also equals a plain-loop float64
//! loss written here; no training logits, the same inference logits; and the config errors
//! name `chunk_classes`.

use std::f64::consts::PI;

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use visage_heads::{Head, HeadConfig, HeadError, HeadState, HeadTensors};

mod common;
use common::{from_tensor, to_tensor, Mat};

type F32 = Autodiff<NdArray<f32>>;
type F64 = Autodiff<NdArray<f64>>;

/// `[head]` tables of the heads that take `chunk_classes`, with non-default margins (ArcFace
/// twice: once past its fallback threshold on some rows is not guaranteed, so a large margin
/// too).
const HEADS: [&str; 7] = [
    "kind = \"normface\"\nscale = 16.0",
    "kind = \"cosface\"\nscale = 16.0\nmargin = 0.3",
    "kind = \"arcface\"\nscale = 16.0\nmargin = 0.4",
    "kind = \"arcface\"\nscale = 8.0\nmargin = 1.2\ndetach_margin = true",
    "kind = \"arcface\"\nscale = 8.0\nmargin = 0.5\neasy_margin = true",
    "kind = \"combined\"\nscale = 16.0\nm1 = 1.1\nm2 = 0.2\nm3 = 0.15",
    "kind = \"subcenter_arcface\"\nscale = 16.0\nmargin = 0.3\nk = 1",
];

const N: usize = 6;
const D: usize = 5;
const C: usize = 10;

/// Deterministic uniform numbers in `[-1, 1)` (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    fn mat(&mut self, rows: usize, cols: usize) -> Mat {
        (0..rows)
            .map(|_| (0..cols).map(|_| self.next()).collect())
            .collect()
    }
}

struct Inputs {
    x: Mat,
    w: Mat,
    labels: Vec<usize>,
}

/// Random embeddings and weights; labels with a repeated class and the first and last class.
fn inputs(seed: u64) -> Inputs {
    let mut rng = Rng(seed);
    Inputs {
        x: rng.mat(N, D),
        w: rng.mat(C, D),
        labels: vec![0, 3, 3, 9, 7, 4],
    }
}

fn config(table: &str, chunk: Option<usize>) -> HeadConfig {
    let text = match chunk {
        Some(c) => format!("{table}\nchunk_classes = {c}\n"),
        None => format!("{table}\n"),
    };
    toml::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

struct Out {
    loss: f64,
    logits: bool,
    grad_x: Mat,
    grad_w: Mat,
    inference: Mat,
}

fn head<B: AutodiffBackend>(config: &HeadConfig, inp: &Inputs) -> Head<B> {
    let device = Default::default();
    config
        .init_with::<B>(
            C,
            D,
            HeadTensors {
                weight: Some(to_tensor::<B>(&inp.w, &device)),
                bias: None,
            },
        )
        .unwrap()
}

fn run<B: AutodiffBackend>(config: &HeadConfig, inp: &Inputs) -> Out {
    let device = Default::default();
    let head = head::<B>(config, inp);
    let x = to_tensor::<B>(&inp.x, &device).require_grad();
    let labels = Tensor::<B, 1, Int>::from_data(
        TensorData::new(
            inp.labels.iter().map(|&l| l as i64).collect(),
            [inp.labels.len()],
        ),
        &device,
    );
    let out = head
        .forward_checked(x.clone(), labels, &mut HeadState::default())
        .unwrap();
    let grads = out.loss.backward();
    let weight = head.classifier.as_ref().unwrap().weight.val();
    Out {
        loss: out
            .loss
            .into_data()
            .convert::<f64>()
            .to_vec::<f64>()
            .unwrap()[0],
        logits: out.logits.is_some(),
        grad_x: from_tensor(x.grad(&grads).unwrap()),
        grad_w: from_tensor(weight.grad(&grads).unwrap()),
        inference: from_tensor(
            head.valid()
                .inference_logits(to_tensor::<B::InnerBackend>(&inp.x, &device))
                .unwrap(),
        ),
    }
}

fn max_abs(m: &Mat) -> f64 {
    m.iter().flatten().fold(0.0, |a, b| a.max(b.abs()))
}

/// Every entry within `tol` of the largest magnitude of `want` (relative to the matrix).
fn assert_close(what: &str, got: &Mat, want: &Mat, tol: f64) {
    let bound = tol * max_abs(want).max(1e-3);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        for (j, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(a.is_finite(), "{what}[{i}][{j}] = {a} is not finite");
            assert!(
                (a - b).abs() <= bound,
                "{what}[{i}][{j}]: chunked {a}, expected {b} (tolerance {bound})"
            );
        }
    }
}

fn assert_loss(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: loss {got} vs {want}"
    );
}

#[test]
fn chunked_heads_equal_the_full_heads_in_loss_and_gradients() {
    for (h, table) in HEADS.iter().enumerate() {
        for seed in [1, 2] {
            let inp = inputs(seed * 100 + h as u64);
            let full = run::<F32>(&config(table, None), &inp);
            assert!(full.logits, "{table}: the full head returns logits");
            for chunk in [1, 3, 4, C, C + 7, 65536] {
                let case = format!("{table:?} chunk {chunk} seed {seed}");
                let got = run::<F32>(&config(table, Some(chunk)), &inp);
                assert!(!got.logits, "{case}: a chunked head returns no logits");
                assert_loss(&case, got.loss, full.loss, 1e-5);
                assert_close(&format!("{case} dL/dx"), &got.grad_x, &full.grad_x, 1e-5);
                assert_close(&format!("{case} dL/dW"), &got.grad_w, &full.grad_w, 1e-5);
                assert_eq!(got.inference, full.inference, "{case}: inference logits");
            }
        }
    }
}

/// Central finite differences of `f` at `m` (step 1e-6).
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

/// In f64 the chunked heads' gradients (but `detach_margin`'s) equal central differences of the plain-loop loss
/// below to 1e-7 (the differences' own error is ~1e-9), and the full heads' to 1e-6: the
/// full heads' f64 gradients stray from the differences by a few 1e-8 (NormFace, dL/dx:
/// -1.6363544634 full, -1.6363544146 chunked, -1.6363544146 differences), a rounding inside
/// the full path this test does not pin down.
#[test]
fn chunked_heads_match_finite_differences_in_f64() {
    for (h, table) in HEADS.iter().enumerate() {
        let inp = inputs(7 + h as u64);
        let want_gx = finite_difference(&inp.x, |x| {
            loop_loss(
                table,
                &Inputs {
                    x: x.clone(),
                    w: inp.w.clone(),
                    labels: inp.labels.clone(),
                },
            )
        });
        let want_gw = finite_difference(&inp.w, |w| {
            loop_loss(
                table,
                &Inputs {
                    x: inp.x.clone(),
                    w: w.clone(),
                    labels: inp.labels.clone(),
                },
            )
        });
        let full = run::<F64>(&config(table, None), &inp);
        for chunk in [3, C + 1] {
            let case = format!("{table:?} chunk {chunk} [f64]");
            let got = run::<F64>(&config(table, Some(chunk)), &inp);
            assert_loss(&case, got.loss, full.loss, 1e-12);
            // detach_margin's gradient is by design not the loss's derivative
            if !table.contains("detach_margin = true") {
                assert_close(
                    &format!("{case} dL/dx vs differences"),
                    &got.grad_x,
                    &want_gx,
                    1e-7,
                );
                assert_close(
                    &format!("{case} dL/dW vs differences"),
                    &got.grad_w,
                    &want_gw,
                    1e-7,
                );
            }
            assert_close(
                &format!("{case} dL/dx vs full"),
                &got.grad_x,
                &full.grad_x,
                1e-6,
            );
            assert_close(
                &format!("{case} dL/dW vs full"),
                &got.grad_w,
                &full.grad_w,
                1e-6,
            );
        }
    }
}

/// The margined target cosine of each head of [`HEADS`], from the papers' formulas in f64.
fn margin_ref(table: &str, c: f64) -> f64 {
    let value = |key: &str| -> f64 {
        table
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("{table} has no {key}"))
            .parse()
            .unwrap()
    };
    let kind = table.lines().next().unwrap();
    if kind.contains("normface") {
        c
    } else if kind.contains("cosface") {
        c - value("margin")
    } else if kind.contains("combined") {
        let theta = c.clamp(-1.0 + 1e-7, 1.0 - 1e-7).acos();
        (value("m1") * theta + value("m2")).cos() - value("m3")
    } else if table.contains("easy_margin = true") {
        let m = value("margin");
        if c > 0.0 {
            (c.acos() + m).cos()
        } else {
            c
        }
    } else {
        // ArcFace (and sub-center with k = 1): cos(theta + m) while theta + m <= pi, else
        // InsightFace's fallback c - m sin m
        let m = value("margin");
        if c > (PI - m).cos() {
            (c.acos() + m).cos()
        } else {
            c - m * m.sin()
        }
    }
}

/// The loss in f64 with plain loops over the full `[N, C]` logits.
fn loop_loss(table: &str, inp: &Inputs) -> f64 {
    let scale: f64 = table
        .lines()
        .find_map(|l| l.strip_prefix("scale = "))
        .unwrap()
        .parse()
        .unwrap();
    let unit = |v: &[f64]| {
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.iter().map(|a| a / n).collect::<Vec<f64>>()
    };
    let mut total = 0.0;
    for (row, &y) in inp.x.iter().zip(&inp.labels) {
        let xn = unit(row);
        let logits: Vec<f64> = inp
            .w
            .iter()
            .enumerate()
            .map(|(j, wj)| {
                let c: f64 = xn.iter().zip(unit(wj)).map(|(a, b)| a * b).sum();
                scale * if j == y { margin_ref(table, c) } else { c }
            })
            .collect();
        let top = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = top + logits.iter().map(|z| (z - top).exp()).sum::<f64>().ln();
        total += lse - logits[y];
    }
    total / inp.labels.len() as f64
}

#[test]
fn chunked_heads_match_a_float64_loop() {
    for (h, table) in HEADS.iter().enumerate() {
        let inp = inputs(31 + h as u64);
        let want = loop_loss(table, &inp);
        assert!(want.is_finite() && want > 0.0, "{table}: reference {want}");
        for chunk in [3, C] {
            let case = format!("{table:?} chunk {chunk}");
            let got = run::<F64>(&config(table, Some(chunk)), &inp);
            assert_loss(&format!("{case} [f64]"), got.loss, want, 1e-12);
            let got = run::<F32>(&config(table, Some(chunk)), &inp);
            assert_loss(&format!("{case} [f32]"), got.loss, want, 1e-5);
        }
    }
}

#[test]
fn chunk_classes_is_read_written_and_reported() {
    let with = config(HEADS[2], Some(3));
    assert_eq!(with.chunk_classes(), Some(3));
    let text = toml::to_string(&with).unwrap();
    assert!(text.contains("chunk_classes = 3"), "{text}");
    assert_eq!(toml::from_str::<HeadConfig>(&text).unwrap(), with);
    // absent: the full head, and not written
    let without = config(HEADS[2], None);
    assert_eq!(without.chunk_classes(), None);
    assert!(!toml::to_string(&without).unwrap().contains("chunk_classes"));
}

fn chunk_error(text: &str) -> HeadError {
    let config: HeadConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let err = config.validate(C, D).unwrap_err();
    assert_eq!(
        config.init::<NdArray<f32>>(C, D, &Default::default()).err(),
        Some(err.clone())
    );
    err
}

#[test]
fn bad_chunk_classes_are_errors_naming_the_field() {
    // zero classes per block, on every head that takes the field
    for table in HEADS {
        let err = chunk_error(&format!("{table}\nchunk_classes = 0\n"));
        assert!(
            matches!(err, HeadError::InvalidField { field: "chunk_classes", ref value, ref expected }
                if value == "0" && expected.contains("at least 1")),
            "{table}: {err:?}"
        );
        assert!(err.to_string().contains("chunk_classes"), "{err}");
    }
    // sub-centres: the chunked loss takes one weight row per class
    let err = chunk_error("kind = \"subcenter_arcface\"\nk = 3\nchunk_classes = 4\n");
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            HeadError::InvalidField {
                field: "chunk_classes",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(msg.contains("k = 3") && msg.contains("k = 1"), "{msg}");
    // a learned scale gets no gradient through the chunked loss
    let err = chunk_error("kind = \"normface\"\nlearnable_scale = true\nchunk_classes = 4\n");
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            HeadError::InvalidField {
                field: "chunk_classes",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(msg.contains("learnable_scale"), "{msg}");
    // kinds without the field: a parse error naming it
    for kind in [
        "softmax",
        "sphereface",
        "lsoftmax",
        "adacos",
        "center",
        "triplet",
        "contrastive",
        "deepid2",
    ] {
        let text = format!("kind = \"{kind}\"\nchunk_classes = 4\n");
        let err = toml::from_str::<HeadConfig>(&text).unwrap_err().to_string();
        assert!(err.contains("chunk_classes"), "{kind}: {err}");
    }
}
