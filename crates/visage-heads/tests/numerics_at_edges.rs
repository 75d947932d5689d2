//! Numerics at the edges: SphereFace and L-Softmax at huge embedding norms (1e19, 1e30,
//! about f32::MAX / 16) and zero embeddings, against an independent float64 reference
//! written here with plain loops; every head finite at huge norms; scale and margin ranges
//! enforced with errors naming the field.

mod common;

use std::f64::consts::PI;

use burn::backend::{Autodiff, NdArray};
use common::{labels_tensor, run_lib, to_tensor, HeadSpec, Inputs, LibOut, Mat, Rng};
use visage_heads::check::MAX_SCALE;
use visage_heads::{HeadError, HeadKind, HeadState, HeadTensors};

type F32 = Autodiff<NdArray<f32>>;
type F64 = Autodiff<NdArray<f64>>;

// ---- the float64 reference (plain loops, scaled norms so that f64 never overflows) ----

/// `|v|` as `m |v / m|` with `m = max |v_k|` (0 for a zero vector).
fn norm64(v: &[f64]) -> f64 {
    let m = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    if m == 0.0 {
        return 0.0;
    }
    let mut s = 0.0;
    for x in v {
        s += (x / m) * (x / m);
    }
    m * s.sqrt()
}

fn cos64(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (norm64(a), norm64(b));
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    let mut d = 0.0;
    for (x, y) in a.iter().zip(b) {
        d += (x / na) * (y / nb);
    }
    d.clamp(-1.0, 1.0)
}

/// `psi(theta) = (-1)^k cos(m theta) - 2k`, `k = floor(m theta / pi)` held in `[0, m-1]`.
fn psi64(theta: f64, m: u32) -> f64 {
    let k = ((m as f64 * theta / PI).floor() as i64).clamp(0, m as i64 - 1);
    let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
    sign * (m as f64 * theta).cos() - 2.0 * k as f64
}

/// Logits and loss of L-Softmax (`sphere = false`) or SphereFace (`sphere = true`) with pure
/// margin (lambda = 0) or the default annealing at iteration 0 (`lambda` given).
fn reference(sphere: bool, m: u32, lambda: f64, inp: &Inputs) -> (Mat, f64) {
    let mut logits = Mat::new();
    let mut loss = 0.0;
    for (i, x) in inp.x.iter().enumerate() {
        let mut row = Vec::new();
        for (j, w) in inp.w.iter().enumerate() {
            let c = cos64(x, w);
            let mag = if sphere {
                norm64(x)
            } else {
                norm64(x) * norm64(w)
            };
            let plain = mag * c;
            if j == inp.labels[i] && m > 1 {
                let margin = mag * psi64(c.acos(), m);
                row.push(plain * (lambda / (1.0 + lambda)) + margin / (1.0 + lambda));
            } else {
                row.push(plain);
            }
        }
        let top = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut z = 0.0;
        for v in &row {
            z += (v - top).exp();
        }
        loss += top + z.ln() - row[inp.labels[i]];
        logits.push(row);
    }
    (logits, loss / inp.x.len() as f64)
}

/// Central differences of the reference loss, with a step relative to each entry's row norm.
#[allow(clippy::needless_range_loop)]
fn reference_grad(sphere: bool, m: u32, lambda: f64, inp: &Inputs) -> Mat {
    let mut g = vec![vec![0.0; inp.x[0].len()]; inp.x.len()];
    for i in 0..inp.x.len() {
        let h = 1e-6 * norm64(&inp.x[i]).max(1e-300);
        for k in 0..inp.x[0].len() {
            let mut p = inp.clone();
            p.x[i][k] += h;
            let up = reference(sphere, m, lambda, &p).1;
            p.x[i][k] = inp.x[i][k] - h;
            let down = reference(sphere, m, lambda, &p).1;
            g[i][k] = (up - down) / (2.0 * h);
        }
    }
    g
}

fn max_abs(m: &Mat) -> f64 {
    m.iter().flatten().fold(0.0, |a, v| a.max(v.abs()))
}

fn worst_diff(a: &Mat, b: &Mat) -> f64 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .fold(0.0, |w, (x, y)| w.max((x - y).abs()))
}

fn all_finite(out: &LibOut) -> bool {
    out.loss.is_finite()
        && out.grad_x.iter().flatten().all(|v| v.is_finite())
        && out.logits.iter().flatten().flatten().all(|v| v.is_finite())
        && out.grad_w.iter().flatten().flatten().all(|v| v.is_finite())
}

/// Random inputs whose embedding rows have norm `norm` exactly (weights stay O(1)).
fn inputs_at_norm(seed: u64, norm: f64) -> Inputs {
    let mut inp = common::random_inputs(seed, 6, 4, 3);
    for row in inp.x.iter_mut() {
        let n = norm64(row);
        row.iter_mut().for_each(|v| *v *= norm / n);
    }
    inp
}

fn spec(kind: HeadKind, m: u32, pure: bool) -> HeadSpec {
    let mut s = HeadSpec::new(kind);
    s.margin_int = Some(m);
    if pure {
        s.base = Some(0.0);
        s.lambda_min = Some(0.0);
    }
    s
}

/// The norms tried: 1e19 (where squaring overflowed f32 before), 1e30, and about
/// f32::MAX / 16 (2.1e37: the largest at which every logit `8 |W| |x|` of these inputs
/// still fits in f32, the weights having norms below 2).
const HUGE: [f64; 3] = [1e19, 1e30, f32::MAX as f64 / 16.0];

fn check_huge<B: burn::tensor::backend::AutodiffBackend>(precision: &str) {
    for &norm in &HUGE {
        for kind in [HeadKind::SphereFace, HeadKind::LSoftmax] {
            let sphere = kind == HeadKind::SphereFace;
            for m in 1..=4u32 {
                for pure in [true, false] {
                    let inp = inputs_at_norm(17 + m as u64, norm);
                    let s = spec(kind, m, pure);
                    // lambda at iteration 0: 0 when pure, the default base 1000 otherwise
                    let lambda = if pure { 0.0 } else { 1000.0 };
                    let name = format!("{kind} m={m} pure={pure} |x|={norm:e} [{precision}]");
                    let out = run_lib::<B>(&s, &inp);
                    assert!(all_finite(&out), "{name}: not finite: {out:?}");
                    let (rl, rloss) = reference(sphere, m, lambda, &inp);
                    let scale = max_abs(&rl);
                    let dl = worst_diff(out.logits.as_ref().unwrap(), &rl);
                    assert!(
                        dl <= 1e-4 * scale,
                        "{name}: logits off by {dl:e} (scale {scale:e})"
                    );
                    assert!(
                        (out.loss - rloss).abs() <= 1e-4 * scale.max(1.0),
                        "{name}: loss {} vs reference {rloss} (logit scale {scale:e})",
                        out.loss
                    );
                    let rg = reference_grad(sphere, m, lambda, &inp);
                    let gs = max_abs(&rg).max(1e-30);
                    let dg = worst_diff(&out.grad_x, &rg);
                    assert!(
                        dg <= 1e-3 * gs,
                        "{name}: grad_embeddings off by {dg:e} (scale {gs:e})\n{:?}\n{:?}",
                        out.grad_x,
                        rg
                    );
                }
            }
        }
    }
}

#[test]
fn sphereface_and_lsoftmax_match_the_reference_at_huge_norms_f32() {
    check_huge::<F32>("f32");
}

#[test]
fn sphereface_and_lsoftmax_match_the_reference_at_huge_norms_f64() {
    check_huge::<F64>("f64");
}

#[test]
fn zero_and_huge_rows_together_stay_finite_and_match() {
    for kind in [HeadKind::SphereFace, HeadKind::LSoftmax] {
        for m in 1..=4u32 {
            let mut inp = inputs_at_norm(3, 1e30);
            inp.x[1] = vec![0.0; 4];
            inp.x[4] = vec![0.0; 4];
            inp.w[2] = vec![0.0; 4];
            let s = spec(kind, m, true);
            let out = run_lib::<F32>(&s, &inp);
            assert!(all_finite(&out), "{kind} m={m}: {out:?}");
            let (rl, rloss) = reference(kind == HeadKind::SphereFace, m, 0.0, &inp);
            let scale = max_abs(&rl);
            let dl = worst_diff(out.logits.as_ref().unwrap(), &rl);
            assert!(dl <= 1e-4 * scale, "{kind} m={m}: logits off by {dl:e}");
            assert!(
                (out.loss - rloss).abs() <= 1e-4 * scale,
                "{kind} m={m}: loss"
            );
            // zero rows: logits of at most 7 NORM_EPS |W| (the norm is held at NORM_EPS)
            for &i in &[1usize, 4] {
                let row = &out.logits.as_ref().unwrap()[i];
                assert!(
                    row.iter().all(|v| v.abs() <= 1.4e-11),
                    "{kind} m={m}: {row:?}"
                );
            }
        }
    }
}

#[test]
fn every_head_is_finite_at_huge_and_tiny_norms() {
    for norm in [1e-30, 1e-12, 1e19, 1e30, f32::MAX as f64 / 16.0] {
        let inp = inputs_at_norm(9, norm);
        for &kind in HeadKind::ALL.iter() {
            // unnormalised logits x.W of these inputs are legitimately beyond f32 at 1e30+
            if matches!(
                kind,
                HeadKind::Softmax | HeadKind::DeepId2 | HeadKind::Center | HeadKind::Contrastive
            ) && norm > 1e18
            {
                continue;
            }
            let out = run_lib::<F32>(&HeadSpec::new(kind), &inp);
            assert!(all_finite(&out), "{kind} at |x| = {norm:e}: {out:?}");
        }
    }
}

#[test]
fn ordinary_inputs_do_not_move() {
    // default SphereFace / L-Softmax on ordinary inputs: within 1e-5 of the reference
    let inp = common::random_inputs(77, 6, 4, 5);
    for (kind, sphere, lambda) in [
        (HeadKind::SphereFace, true, 1000.0),
        (HeadKind::LSoftmax, false, 1000.0),
    ] {
        let out = run_lib::<F32>(&HeadSpec::new(kind), &inp);
        let (rl, rloss) = reference(sphere, 4, lambda, &inp);
        assert!(worst_diff(out.logits.as_ref().unwrap(), &rl) <= 1e-5 * max_abs(&rl));
        assert!((out.loss - rloss).abs() <= 1e-5 * rloss.abs());
    }
}

fn field_of(spec: &HeadSpec) -> &'static str {
    match spec.to_config(10, 4) {
        Err(HeadError::InvalidField { field, .. }) => field,
        other => panic!("expected an invalid field for {spec:?}, got {other:?}"),
    }
}

#[test]
fn scales_and_margins_outside_their_ranges_name_the_field() {
    for kind in [
        HeadKind::NormFace,
        HeadKind::CosFace,
        HeadKind::ArcFace,
        HeadKind::Combined,
    ] {
        for bad in [1e300, f64::INFINITY, f64::NAN, -1.0, 0.0, MAX_SCALE * 1.001] {
            let mut s = HeadSpec::new(kind);
            s.scale = Some(bad);
            assert_eq!(field_of(&s), "scale", "{kind} scale {bad}");
        }
        let mut s = HeadSpec::new(kind);
        s.scale = Some(MAX_SCALE);
        assert!(s.to_config(10, 4).is_ok(), "{kind}: scale 1e4 is allowed");
    }
    let mut s = HeadSpec::new(HeadKind::NormFace);
    s.learnable_scale = Some(true);
    s.scale = Some(1e300);
    assert_eq!(field_of(&s), "scale");
    for kind in [HeadKind::Contrastive, HeadKind::Triplet, HeadKind::DeepId2] {
        for bad in [1e300, f64::INFINITY, f64::NAN, -1.0, 0.0, 2e4] {
            let mut s = HeadSpec::new(kind);
            s.margin = Some(bad);
            assert_eq!(field_of(&s), "margin", "{kind} margin {bad}");
        }
    }
    let mut s = HeadSpec::new(HeadKind::DeepId2);
    s.lambda = Some(1e300);
    assert_eq!(field_of(&s), "lambda");
    for (field, set) in [
        (
            "base",
            (|s: &mut HeadSpec| s.base = Some(f64::INFINITY)) as fn(&mut HeadSpec),
        ),
        ("gamma", |s| s.gamma = Some(f64::NAN)),
        ("power", |s| s.power = Some(-2.0)),
        ("lambda_min", |s| s.lambda_min = Some(f64::NEG_INFINITY)),
    ] {
        for kind in [HeadKind::SphereFace, HeadKind::LSoftmax] {
            let mut s = HeadSpec::new(kind);
            set(&mut s);
            assert_eq!(field_of(&s), field, "{kind}");
        }
    }
    for (m2, m3) in [(f64::NAN, 0.2), (0.3, f64::INFINITY)] {
        let mut s = HeadSpec::new(HeadKind::Combined);
        s.m2 = Some(m2);
        s.m3 = Some(m3);
        assert!(matches!(
            s.to_config(10, 4),
            Err(HeadError::InvalidField {
                field: "m2" | "m3",
                ..
            })
        ));
    }
}

#[test]
fn extreme_but_valid_annealing_stays_finite() {
    // any finite non-negative schedule is accepted and finite
    let mut inp = inputs_at_norm(5, 1e30);
    inp.iteration = 3;
    for kind in [HeadKind::SphereFace, HeadKind::LSoftmax] {
        let mut s = HeadSpec::new(kind);
        s.base = Some(1e300);
        s.gamma = Some(1e300);
        s.power = Some(0.0);
        s.lambda_min = Some(1e300);
        let out = run_lib::<F32>(&s, &inp);
        assert!(all_finite(&out), "{kind}: {out:?}");
    }
}

#[test]
fn adacos_previous_scale_is_checked_and_the_dynamic_scale_stays_positive() {
    let device = Default::default();
    let mut spec = HeadSpec::new(HeadKind::AdaCos);
    spec.dynamic = Some(true);
    let mut rng = Rng(4);
    let w = rng.mat(2, 3);
    let head = spec
        .to_config(2, 3)
        .unwrap()
        .init_with::<F32>(HeadTensors {
            weight: Some(to_tensor(&w, &device)),
            bias: None,
        })
        .unwrap();
    // each embedding is its class weight: cos = 1 at the target, B_avg tiny
    let x: Mat = vec![w[0].clone(), w[1].clone()];
    let labels = labels_tensor::<F32>(&[0, 1], &device);
    for bad in [-1.0, 0.0, f64::NAN, f64::INFINITY, 1e300] {
        let mut state = HeadState {
            iteration: 0,
            adacos_scale: Some(bad),
        };
        let err = head
            .forward_checked(to_tensor(&x, &device), labels.clone(), &mut state)
            .unwrap_err();
        assert!(
            matches!(err, HeadError::InvalidField { field: "scale", .. }),
            "{bad}: {err:?}"
        );
    }
    // with two classes ln(B_avg) < 0 at a small previous scale: held at ADACOS_MIN_SCALE
    let mut state = HeadState {
        iteration: 0,
        adacos_scale: Some(MAX_SCALE),
    };
    let out = head
        .forward_checked(to_tensor(&x, &device), labels, &mut state)
        .unwrap();
    let s = state.adacos_scale.unwrap();
    assert!(
        (visage_heads::heads::ADACOS_MIN_SCALE..=MAX_SCALE).contains(&s),
        "{s}"
    );
    let loss: f64 = out
        .loss
        .into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .unwrap()[0];
    assert!(loss.is_finite());
}
