//! Sub-center ArcFace (Deng et al. 2020) against its independent float64 reference in
//! `common` (plain loops: per class the best of its K sub-centre cosines, rows `c*K .. c*K+K`,
//! then the ArcFace target with the th/mm fallback), a finite-difference check of the
//! library's own gradient on f64, edge cases and configuration errors.

mod common;

use burn::backend::{Autodiff, NdArray};
use common::*;
use visage_heads::heads::SubCenterArcFaceConfig;
use visage_heads::{HeadConfig, HeadError, HeadKind, HeadState, HeadTensors};

type F32 = Autodiff<NdArray<f32>>;
type F64 = Autodiff<NdArray<f64>>;

fn spec(k: usize) -> HeadSpec {
    let mut s = HeadSpec::new(HeadKind::SubCenterArcFace);
    s.k = Some(k);
    s
}

#[test]
fn subcenter_arcface_matches_reference() {
    for (seed, k) in [(1u64, 2usize), (2, 3), (3, 5)] {
        for scale in [64.0, 16.0] {
            let mut s = spec(k);
            s.scale = Some(scale);
            let inp = subcenter_inputs(seed, 7, 5, 4, k);
            check_against_reference::<F32>(&format!("subcenter k={k} s={scale} [f32]"), &s, &inp);
            check_against_reference::<F64>(&format!("subcenter k={k} s={scale} [f64]"), &s, &inp);
        }
    }
    // the paper's defaults (k = 3, s = 64, m = 0.5) from an empty table but the kind
    let mut s = HeadSpec::new(HeadKind::SubCenterArcFace);
    s.k = None;
    let inp = subcenter_inputs(9, 6, 4, 3, 3);
    check_against_reference::<F64>("subcenter defaults [f64]", &s, &inp);
    // another margin
    let mut s = spec(3);
    s.margin = Some(1.2);
    s.scale = Some(32.0);
    check_against_reference::<F64>(
        "subcenter m1.2 [f64]",
        &s,
        &subcenter_inputs(10, 6, 4, 3, 3),
    );
}

#[test]
fn subcenter_fallback_region_matches_reference() {
    // every sub-centre of the target class nearly opposite to the embedding: theta + m > pi
    let (classes, k) = (3, 2);
    let mut inp = subcenter_inputs(31, 6, 4, classes, k);
    for i in 0..6 {
        let y = inp.labels[i];
        let anchor = inp.w[y * k].clone();
        let mut noise = Rng(100 + i as u64);
        for r in y * k..(y + 1) * k {
            inp.w[r] = anchor
                .iter()
                .map(|v| v * (1.0 + 0.1 * r as f64) + 0.2 * noise.uniform())
                .collect();
        }
        inp.x[i] = anchor
            .iter()
            .enumerate()
            .map(|(j, v)| -v + 0.05 * inp.x[i][j])
            .collect();
    }
    let mut s = spec(k);
    s.scale = Some(16.0);
    check_against_reference::<F32>("subcenter fallback [f32]", &s, &inp);
    check_against_reference::<F64>("subcenter fallback [f64]", &s, &inp);
}

#[test]
fn k_one_is_arcface_exactly() {
    let inp = subcenter_inputs(77, 7, 5, 4, 1);
    let a = run_lib::<F32>(&spec(1), &inp);
    let b = run_lib::<F32>(&HeadSpec::new(HeadKind::ArcFace), &inp);
    assert_eq!(a.loss, b.loss);
    assert_eq!(a.logits, b.logits);
    assert_eq!(a.grad_x, b.grad_x);
    assert_eq!(a.grad_w, b.grad_w);
}

#[test]
fn identical_sub_centres_give_arcface_on_one_centre() {
    // K copies of each class weight: the same loss and logits as ArcFace on the [C, d] matrix
    let (classes, k) = (4, 3);
    let plain = subcenter_inputs(5, 7, 5, classes, 1);
    let mut copies = plain.clone();
    copies.w = plain
        .w
        .iter()
        .flat_map(|r| (0..k).map(move |_| r.clone()))
        .collect();
    let a = run_lib::<F64>(&spec(k), &copies);
    let b = run_lib::<F64>(&HeadSpec::new(HeadKind::ArcFace), &plain);
    assert_loss_close("copies", a.loss, b.loss);
    assert_close(
        "copies logits",
        a.logits.as_ref().unwrap(),
        b.logits.as_ref().unwrap(),
        1e-12,
    );
    assert_close("copies grad_embeddings", &a.grad_x, &b.grad_x, 1e-12);
}

#[test]
fn cosines_of_plus_and_minus_one_and_zero_vectors_stay_finite() {
    let (classes, k, m, scale) = (3, 3, 0.5f64, 64.0);
    // one embedding per class
    let base = subcenter_inputs(8, classes, 4, classes, k);
    assert_eq!(base.labels, vec![0, 1, 2]);
    // cos = 1: each embedding is one of its class's sub-centres; the target logit is
    // s cos(m) up to the COS_EPS clamp inside sqrt(1 - c^2) (sqrt(2e-7) sin m)
    // cos = -1: every sub-centre of the class a positive multiple of the opposite of the
    // embedding; the target logit is the th/mm fallback s (-1 - m sin m)
    for sign in [1.0, -1.0] {
        let mut inp = base.clone();
        for i in 0..classes {
            let anchor = inp.w[i * k + i % k].clone();
            if sign < 0.0 {
                for r in i * k..(i + 1) * k {
                    inp.w[r] = anchor.iter().map(|v| v * (1.0 + r as f64)).collect();
                }
            }
            inp.x[i] = anchor.iter().map(|v| sign * v).collect();
        }
        let expected = if sign > 0.0 {
            scale * m.cos()
        } else {
            scale * (-1.0 - m.sin() * m)
        };
        for b32 in [true, false] {
            let out = if b32 {
                run_lib::<F32>(&spec(k), &inp)
            } else {
                run_lib::<F64>(&spec(k), &inp)
            };
            assert!(out.loss.is_finite(), "sign {sign}: loss {}", out.loss);
            assert!(out.grad_x.iter().flatten().all(|v| v.is_finite()));
            assert!(out.grad_w.unwrap().iter().flatten().all(|v| v.is_finite()));
            let logits = out.logits.unwrap();
            for (i, row) in logits.iter().enumerate() {
                let t = row[i];
                assert!(
                    (t - expected).abs() <= scale * 2e-3,
                    "sign {sign} f32 {b32}: target logit {t} vs {expected}"
                );
            }
        }
    }
    // zero embeddings and a zero sub-centre: cosines 0, everything finite, the reference
    let mut inp = subcenter_inputs(9, 6, 4, classes, k);
    inp.x[0] = vec![0.0; 4];
    inp.x[3] = vec![0.0; 4];
    inp.w[1] = vec![0.0; 4];
    let out = run_lib::<F32>(&spec(k), &inp);
    assert!(out.loss.is_finite());
    assert!(out.grad_x.iter().flatten().all(|v| v.is_finite()));
    assert!(out.grad_w.unwrap().iter().flatten().all(|v| v.is_finite()));
    assert_eq!(out.logits.as_ref().unwrap()[0][1], 0.0);
    let r = reference(&spec(k), &inp, None);
    assert_loss_close("zero vectors", out.loss, r.loss);
}

#[test]
fn bad_k_and_weight_shapes_are_named() {
    for bad in [0usize, 1025, 1 << 40] {
        let mut s = spec(bad);
        s.k = Some(bad);
        match s.to_config(10, 4) {
            Err(HeadError::InvalidField { field, .. }) => assert_eq!(field, "k", "k = {bad}"),
            other => panic!("k = {bad}: {other:?}"),
        }
    }
    let config: HeadConfig = toml::from_str("kind = \"subcenter_arcface\"\nk = 0\n").unwrap();
    let err = config.validate(10, 4).unwrap_err();
    assert!(err.to_string().contains("`k`"), "{err}");
    let mut s = spec(2);
    s.margin = Some(1.6);
    assert!(matches!(
        s.to_config(10, 4),
        Err(HeadError::InvalidField {
            field: "margin",
            ..
        })
    ));
    s.margin = None;
    s.scale = Some(0.0);
    assert!(matches!(
        s.to_config(10, 4),
        Err(HeadError::InvalidField { field: "scale", .. })
    ));
    // a [C, d] weight where [C * K, d] is needed
    let device = Default::default();
    let w = to_tensor::<F32>(&Rng(1).mat(5, 4), &device);
    let err = HeadConfig::SubCenterArcFace(SubCenterArcFaceConfig::default())
        .init_with(
            5,
            4,
            HeadTensors {
                weight: Some(w),
                bias: None,
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            HeadError::Shape {
                tensor: "weight",
                ref actual,
                ..
            } if actual == &vec![5, 4]
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("[15, 4]"), "{err}");
}

#[test]
fn a_random_head_has_k_rows_per_class_and_checks_labels_against_classes() {
    let device = Default::default();
    let head = HeadConfig::SubCenterArcFace(SubCenterArcFaceConfig::default())
        .init::<F32>(10, 4, &device)
        .unwrap();
    assert_eq!(head.class_tensor().unwrap().dims(), [30, 4]);
    assert_eq!(head.class_dims(), Some([10, 4]));
    let x = to_tensor::<F32>(&Rng(2).mat(3, 4), &device);
    let ok = labels_tensor::<F32>(&[0, 9, 5], &device);
    let out = head
        .forward_checked(x.clone(), ok, &mut HeadState::default())
        .unwrap();
    assert_eq!(out.logits.unwrap().dims(), [3, 10]);
    let bad = labels_tensor::<F32>(&[0, 10, 5], &device);
    assert!(matches!(
        head.forward_checked(x, bad, &mut HeadState::default()),
        Err(HeadError::LabelOutOfRange {
            label: 10,
            classes: 10,
            ..
        })
    ));
}
