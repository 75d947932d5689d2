//! Edge cases: cos = +-1, identical and antipodal vectors, zero-norm embeddings and class
//! weights, theta + m > pi, batches without a valid pair or triplet, huge magnitudes.
//! Nothing may be NaN or Inf; where the value is known by hand it is asserted.

mod common;

use burn::backend::{Autodiff, NdArray};
use common::*;
use visage_heads::loss::{TripletMining, TripletReduction};
use visage_heads::HeadKind;

type F32 = Autodiff<NdArray<f32>>;

fn all_finite(out: &LibOut) -> bool {
    out.loss.is_finite()
        && out.grad_x.iter().flatten().all(|v| v.is_finite())
        && out.logits.iter().flatten().flatten().all(|v| v.is_finite())
        && out.grad_w.iter().flatten().flatten().all(|v| v.is_finite())
}

fn every_spec() -> Vec<HeadSpec> {
    let mut v: Vec<HeadSpec> = HeadKind::ALL.iter().map(|&k| HeadSpec::new(k)).collect();
    for m in 1..=4 {
        for kind in [HeadKind::LSoftmax, HeadKind::SphereFace] {
            let mut s = HeadSpec::new(kind);
            s.margin_int = Some(m);
            s.base = Some(0.0);
            s.lambda_min = Some(0.0);
            v.push(s);
        }
    }
    let mut s = HeadSpec::new(HeadKind::ArcFace);
    s.easy_margin = Some(true);
    v.push(s);
    let mut s = HeadSpec::new(HeadKind::ArcFace);
    s.detach_margin = Some(true);
    v.push(s);
    let mut s = HeadSpec::new(HeadKind::AdaCos);
    s.dynamic = Some(true);
    v.push(s);
    for mining in [TripletMining::SemiHard, TripletMining::Hard] {
        let mut s = HeadSpec::new(HeadKind::Triplet);
        s.mining = Some(mining);
        v.push(s);
    }
    v
}

fn inputs_with(f: impl Fn(&mut Inputs)) -> Inputs {
    let mut inp = random_inputs(42, 6, 4, 3);
    f(&mut inp);
    inp
}

#[test]
fn cos_plus_minus_one_is_finite_everywhere() {
    // Rows 0..2 equal their class weight (cos = 1), rows 3..5 are its negative (cos = -1).
    let inp = inputs_with(|inp| {
        for i in 0..6 {
            let w = inp.w[inp.labels[i]].clone();
            inp.x[i] = if i < 3 {
                w.iter().map(|v| v * 2.0).collect()
            } else {
                w.iter().map(|v| -v).collect()
            };
        }
    });
    for spec in every_spec() {
        let out = run_lib::<F32>(&spec, &inp);
        assert!(all_finite(&out), "{:?}: {out:?}", spec);
    }
}

#[test]
fn arcface_at_cos_one_and_minus_one_has_hand_derived_logits() {
    // c = 1: cos(0 + m) = cos m; c = -1: th/mm fallback gives -1 - m sin m.
    let inp = inputs_with(|inp| {
        for i in 0..6 {
            let w = inp.w[inp.labels[i]].clone();
            inp.x[i] = if i % 2 == 0 {
                w
            } else {
                w.iter().map(|v| -v).collect()
            };
        }
    });
    let (s, m) = (64.0, 0.5f64);
    let out = run_lib::<F32>(&HeadSpec::new(HeadKind::ArcFace), &inp);
    let logits = out.logits.unwrap();
    for i in 0..6 {
        let t = logits[i][inp.labels[i]];
        let expected = if i % 2 == 0 {
            s * m.cos()
        } else {
            s * (-1.0 - m * m.sin())
        };
        assert!(
            (t - expected).abs() < 1e-3 * s,
            "row {i}: {t} vs {expected}"
        );
    }
}

#[test]
fn zero_embeddings_have_zero_cosines_and_finite_gradients() {
    let inp = inputs_with(|inp| {
        inp.x[0] = vec![0.0; 4];
        inp.x[3] = vec![0.0; 4];
        inp.w[1] = vec![0.0; 4];
    });
    for spec in every_spec() {
        let out = run_lib::<F32>(&spec, &inp);
        assert!(all_finite(&out), "{:?}: {out:?}", spec);
    }
    // NormFace: a zero embedding has every logit 0 (documented: cos = 0).
    let out = run_lib::<F32>(&HeadSpec::new(HeadKind::NormFace), &inp);
    assert!(out.logits.unwrap()[0].iter().all(|v| *v == 0.0));
}

#[test]
fn huge_magnitudes_stay_finite() {
    let inp = inputs_with(|inp| {
        for row in inp.x.iter_mut() {
            row.iter_mut().for_each(|v| *v *= 1e4);
        }
    });
    for spec in every_spec() {
        if matches!(
            spec.kind,
            HeadKind::Softmax
                | HeadKind::LSoftmax
                | HeadKind::DeepId2
                | HeadKind::SphereFace
                | HeadKind::Center
        ) {
            continue; // unnormalised logits of 1e4 are legitimately huge but still finite below
        }
        let out = run_lib::<F32>(&spec, &inp);
        assert!(all_finite(&out), "{:?}: {out:?}", spec);
    }
}

#[test]
fn metric_losses_without_valid_pairs_give_zero_and_zero_gradient() {
    // All labels distinct: no positive pair, so no triplet.
    let mut inp = random_inputs(5, 5, 3, 5);
    inp.labels = vec![0, 1, 2, 3, 4];
    inp.w.clear();
    for mining in [
        TripletMining::All,
        TripletMining::SemiHard,
        TripletMining::Hard,
    ] {
        for reduction in [TripletReduction::Mean, TripletReduction::MeanNonzero] {
            let mut s = HeadSpec::new(HeadKind::Triplet);
            s.mining = Some(mining);
            s.reduction = Some(reduction);
            let out = run_lib::<F32>(&s, &inp);
            assert_eq!(out.loss, 0.0, "{mining:?}");
            assert!(
                out.grad_x.iter().flatten().all(|v| *v == 0.0),
                "{mining:?}: {:?}",
                out.grad_x
            );
        }
    }
    // All labels equal: no negative.
    inp.labels = vec![2; 5];
    let out = run_lib::<F32>(&HeadSpec::new(HeadKind::Triplet), &inp);
    assert_eq!(out.loss, 0.0);
    assert!(out.grad_x.iter().flatten().all(|v| *v == 0.0));
    // A batch of one has no pair for the contrastive loss.
    let one = Inputs {
        x: vec![vec![0.3, -0.2, 0.1]],
        labels: vec![0],
        w: vec![],
        bias: None,
        iteration: 0,
        prev_scale: None,
    };
    let out = run_lib::<F32>(&HeadSpec::new(HeadKind::Contrastive), &one);
    assert_eq!(out.loss, 0.0);
    assert!(out.grad_x.iter().flatten().all(|v| *v == 0.0));
}

#[test]
fn contrastive_identical_impostors_have_zero_gradient_and_known_loss() {
    // Two identical vectors of different identities: d = 0, loss 0.5 m^2, gradient defined 0.
    let x = vec![vec![0.5, 0.5], vec![0.5, 0.5]];
    let inp = Inputs {
        x,
        labels: vec![0, 1],
        w: vec![],
        bias: None,
        iteration: 0,
        prev_scale: None,
    };
    let mut s = HeadSpec::new(HeadKind::Contrastive);
    s.margin = Some(2.0);
    let out = run_lib::<F32>(&s, &inp);
    assert!((out.loss - 2.0).abs() < 1e-6, "{}", out.loss);
    assert!(
        out.grad_x.iter().flatten().all(|v| *v == 0.0),
        "{:?}",
        out.grad_x
    );
}

#[test]
fn triplet_hand_computed_value() {
    // Unit vectors on the plane: a = (1,0), p = (0,1), n = (-1,0) ; d(a,p) = 2, d(a,n) = 4
    // (squared). Labels a,p = 0, n = 1. Triplets (all mining, margin 0.2):
    // (a,p,n): max(0, 2 - 4 + 0.2) = 0; (p,a,n): d(p,a)=2, d(p,n)=2 -> 0.2. Mean = 0.1.
    let x = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![-1.0, 0.0]];
    let inp = Inputs {
        x,
        labels: vec![0, 0, 1],
        w: vec![],
        bias: None,
        iteration: 0,
        prev_scale: None,
    };
    let out = run_lib::<F32>(&HeadSpec::new(HeadKind::Triplet), &inp);
    assert!((out.loss - 0.1).abs() < 1e-6, "{}", out.loss);
    let mut nz = HeadSpec::new(HeadKind::Triplet);
    nz.reduction = Some(TripletReduction::MeanNonzero);
    let out = run_lib::<F32>(&nz, &inp);
    assert!((out.loss - 0.2).abs() < 1e-6, "{}", out.loss);
}

#[test]
fn m_one_reduces_to_the_plain_heads() {
    let inp = random_inputs(77, 6, 4, 5);
    let mut l = HeadSpec::new(HeadKind::LSoftmax);
    l.margin_int = Some(1);
    let a = run_lib::<F32>(&l, &inp);
    let b = run_lib::<F32>(&HeadSpec::new(HeadKind::Softmax), &inp);
    assert_eq!(a.loss, b.loss);
    assert_eq!(a.logits, b.logits);
}

#[test]
fn adacos_fixed_scale_values() {
    // sqrt(2) ln(C - 1) for the class counts of docs/losses.md (AdaCos).
    for (c, s) in [(10usize, 3.11f64), (10_575, 13.10), (85_742, 16.06)] {
        let fixed = visage_heads::heads::adacos_fixed_scale(c);
        assert!((fixed - s).abs() < 0.005, "C={c}: {}", fixed);
    }
}
