//! The library's autodiff gradients on an f64 backend against central finite differences of
//! the library's own forward pass on that backend (h = 1e-6).

mod common;

use burn::backend::{Autodiff, NdArray};
use common::*;
use visage_heads::{HeadKind, HeadState, HeadTensors};

type F64 = NdArray<f64>;
type AdF64 = Autodiff<F64>;

fn forward_loss(spec: &HeadSpec, inp: &Inputs) -> f64 {
    let device = Default::default();
    let config = spec
        .to_config((inp.w.len() / spec.sub_centers()).max(1), inp.x[0].len())
        .unwrap();
    let tensors = HeadTensors::<F64> {
        weight: (!inp.w.is_empty()).then(|| to_tensor(&inp.w, &device)),
        bias: None,
    };
    let head = config.init_with(tensors).unwrap();
    let mut state = HeadState {
        iteration: inp.iteration,
        adacos_scale: inp.prev_scale,
    };
    let out = head.forward(
        to_tensor(&inp.x, &device),
        labels_tensor(&inp.labels, &device),
        &mut state,
    );
    out.loss
        .into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .unwrap()[0]
}

#[test]
fn autodiff_gradients_equal_central_differences_on_f64() {
    let mut specs: Vec<HeadSpec> = HeadKind::ALL.iter().map(|&k| HeadSpec::new(k)).collect();
    let mut s = HeadSpec::new(HeadKind::ArcFace);
    s.easy_margin = Some(true);
    specs.push(s);
    for m in 2..=4 {
        let mut s = HeadSpec::new(HeadKind::SphereFace);
        s.margin_int = Some(m);
        s.base = Some(0.0);
        s.lambda_min = Some(0.0);
        specs.push(s);
    }
    for (seed, spec) in specs.iter().enumerate() {
        let mut inp = random_inputs(2000 + seed as u64, 6, 4, 4);
        if !spec.kind.has_class_tensor() {
            inp.w.clear();
        }
        let lib = run_lib::<AdF64>(spec, &inp);
        let gx = fd_grad(&inp.x, 1e-6, |x| {
            let mut p = inp.clone();
            p.x = x.clone();
            forward_loss(spec, &p)
        });
        assert_close(
            &format!("{} grad_embeddings", spec.kind),
            &lib.grad_x,
            &gx,
            1e-6,
        );
        if spec.kind.is_classifier() {
            let gw = fd_grad(&inp.w, 1e-6, |w| {
                let mut p = inp.clone();
                p.w = w.clone();
                forward_loss(spec, &p)
            });
            assert_close(
                &format!("{} grad_weight", spec.kind),
                lib.grad_w.as_ref().unwrap(),
                &gw,
                1e-6,
            );
        }
    }
}

#[test]
fn subcenter_arcface_gradients_equal_central_differences_on_f64() {
    for (seed, k) in [(40u64, 1usize), (41, 2), (42, 3)] {
        let mut spec = HeadSpec::new(HeadKind::SubCenterArcFace);
        spec.k = Some(k);
        let inp = subcenter_inputs(seed, 6, 4, 3, k);
        let lib = run_lib::<AdF64>(&spec, &inp);
        let gx = fd_grad(&inp.x, 1e-6, |x| {
            let mut p = inp.clone();
            p.x = x.clone();
            forward_loss(&spec, &p)
        });
        assert_close(&format!("k={k} grad_embeddings"), &lib.grad_x, &gx, 1e-6);
        let gw = fd_grad(&inp.w, 1e-6, |w| {
            let mut p = inp.clone();
            p.w = w.clone();
            forward_loss(&spec, &p)
        });
        let lib_gw = lib.grad_w.as_ref().unwrap();
        assert_close(&format!("k={k} grad_weight"), lib_gw, &gw, 1e-6);
        // only the best sub-centre of a class is trained: with k = 3 and 6 samples over 3
        // classes, some of the 9 sub-centres are nobody's best and get no gradient
        if k == 3 {
            let untouched = lib_gw
                .iter()
                .filter(|r| r.iter().all(|v| *v == 0.0))
                .count();
            assert!(untouched > 0, "k=3: every sub-centre got a gradient");
        }
    }
}
