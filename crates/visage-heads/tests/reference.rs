//! Every head and option against the independent float64 reference of `common`: loss within
//! 1e-5 relative, logits and gradients within 1e-4 of the reference's largest magnitude.
//! The library runs in f32 (ndarray) and in f64; reference gradients are central finite
//! differences of the reference.

mod common;

use burn::backend::{Autodiff, NdArray};
use common::*;
use visage_heads::loss::{TripletDistance, TripletMining, TripletReduction};
use visage_heads::HeadKind;

type F32 = Autodiff<NdArray<f32>>;
type F64 = Autodiff<NdArray<f64>>;

fn spec(kind: HeadKind) -> HeadSpec {
    HeadSpec::new(kind)
}

fn check_both(name: &str, spec: &HeadSpec, inp: &Inputs) {
    check_against_reference::<F32>(&format!("{name} [f32]"), spec, inp);
    check_against_reference::<F64>(&format!("{name} [f64]"), spec, inp);
}

fn classification_cases() -> Vec<(&'static str, HeadSpec)> {
    let mut v = vec![("softmax", spec(HeadKind::Softmax))];
    let mut s = spec(HeadKind::Softmax);
    s.bias = Some(true);
    v.push(("softmax bias", s));
    for m in 1..=4 {
        let mut s = spec(HeadKind::LSoftmax);
        s.margin_int = Some(m);
        v.push(("lsoftmax", s.clone()));
        s.base = Some(0.0);
        v.push(("lsoftmax pure", s));
        let mut s = spec(HeadKind::SphereFace);
        s.margin_int = Some(m);
        v.push(("sphereface", s.clone()));
        s.base = Some(0.0);
        s.lambda_min = Some(0.0);
        v.push(("sphereface pure", s));
    }
    v.extend(common::cosine_head_cases());
    let mut s = spec(HeadKind::NormFace);
    s.learnable_scale = Some(true);
    v.push(("normface learnable", s));
    let mut s = spec(HeadKind::Combined);
    s.m1 = Some(1.35);
    s.m2 = Some(0.0);
    s.m3 = Some(0.0);
    v.push(("combined sphere-like", s));
    v.push(("adacos fixed", spec(HeadKind::AdaCos)));
    let mut s = spec(HeadKind::AdaCos);
    s.dynamic = Some(true);
    v.push(("adacos dynamic", s));
    v.push(("deepid2", spec(HeadKind::DeepId2)));
    let mut s = spec(HeadKind::DeepId2);
    s.lambda = Some(0.5);
    s.margin = Some(2.0);
    s.normalize = Some(true);
    s.bias = Some(true);
    v.push(("deepid2 options", s));
    v
}

#[test]
fn classification_heads_match_reference() {
    for (seed, (name, spec)) in classification_cases().into_iter().enumerate() {
        let mut inp = random_inputs(100 + seed as u64, 7, 5, 6);
        if spec.bias == Some(true) {
            inp.bias = Some(Rng(seed as u64).mat(1, 6).remove(0));
        }
        check_both(name, &spec, &inp);
    }
}

#[test]
fn annealed_heads_follow_the_iteration() {
    for kind in [HeadKind::LSoftmax, HeadKind::SphereFace] {
        for iteration in [0u64, 1, 50, 1_000, 100_000] {
            let mut inp = random_inputs(7 + iteration, 6, 4, 5);
            inp.iteration = iteration;
            let mut s = spec(kind);
            s.gamma = Some(0.12);
            s.power = Some(1.0);
            s.lambda_min = Some(0.5);
            check_both(&format!("{kind} it {iteration}"), &s, &inp);
        }
    }
}

#[test]
fn dynamic_adacos_uses_the_previous_scale() {
    let mut s = spec(HeadKind::AdaCos);
    s.dynamic = Some(true);
    for (n, prev) in [(6usize, Some(2.5)), (7, Some(9.0)), (8, None)] {
        let mut inp = random_inputs(900 + n as u64, n, 4, 9);
        inp.prev_scale = prev;
        check_both(&format!("adacos dynamic n={n} prev={prev:?}"), &s, &inp);
    }
}

#[test]
fn arcface_fallback_region_matches_reference() {
    // Targets nearly opposite to their class weight: theta + m > pi, the fallback is used.
    for easy in [false, true] {
        let mut inp = random_inputs(31, 6, 4, 3);
        for i in 0..6 {
            let y = inp.labels[i];
            inp.x[i] = inp.w[y]
                .iter()
                .enumerate()
                .map(|(k, v)| -v + 0.05 * inp.x[i][k])
                .collect();
        }
        let mut s = spec(HeadKind::ArcFace);
        s.easy_margin = Some(easy);
        s.scale = Some(16.0);
        check_both(&format!("arcface fallback easy={easy}"), &s, &inp);
    }
}

#[test]
fn metric_losses_match_reference() {
    let mut cases: Vec<(String, HeadSpec)> = Vec::new();
    for normalize in [false, true] {
        for margin in [1.0, 2.5] {
            let mut s = spec(HeadKind::Contrastive);
            s.normalize = Some(normalize);
            s.margin = Some(margin);
            cases.push((format!("contrastive norm={normalize} m={margin}"), s));
        }
    }
    for mining in [
        TripletMining::All,
        TripletMining::SemiHard,
        TripletMining::Hard,
    ] {
        for distance in [TripletDistance::SquaredL2, TripletDistance::L2] {
            for reduction in [TripletReduction::Mean, TripletReduction::MeanNonzero] {
                for margin in [0.2, 1.0] {
                    let mut s = spec(HeadKind::Triplet);
                    s.mining = Some(mining);
                    s.distance = Some(distance);
                    s.reduction = Some(reduction);
                    s.margin = Some(margin);
                    cases.push((
                        format!("triplet {mining:?} {distance:?} {reduction:?} m={margin}"),
                        s,
                    ));
                }
            }
        }
    }
    for alpha in [0.5, 0.1, 1.0] {
        let mut s = spec(HeadKind::Center);
        s.alpha = Some(alpha);
        cases.push((format!("center alpha={alpha}"), s));
    }
    for (seed, (name, spec)) in cases.iter().enumerate() {
        let mut inp = random_inputs(500 + seed as u64, 8, 4, 4);
        if spec.kind != HeadKind::Center {
            inp.w.clear();
        }
        check_both(name, spec, &inp);
    }
}
