//! The cosine heads' fused CPU node (`Autodiff<Flex>`, feature `fast-cpu`): loss, training
//! logits and both gradients against the float64 plain-loop reference of `common` (central
//! finite differences for the gradients), full and with `chunk_classes`, and against the
//! composite Burn ops on `Autodiff<NdArray<f32>>`; edge cases (zero and tiny weight rows,
//! cosines of exactly +1 and -1, the largest scale, labels out of range).
#![cfg(feature = "fast-cpu")]

mod common;

use burn::backend::{Autodiff, Flex, NdArray};
use common::*;
use visage_heads::loss::fused_cosine_loss_active;
use visage_heads::HeadKind;

type Fused = Autodiff<Flex>;
type Composite = Autodiff<NdArray<f32>>;

/// The cosine heads and options the fused node serves.
fn cases() -> Vec<(&'static str, HeadSpec)> {
    cosine_head_cases()
}

fn with_chunk(spec: &HeadSpec, chunk: Option<usize>) -> HeadSpec {
    let mut s = spec.clone();
    s.chunk_classes = chunk;
    s
}

#[test]
fn the_fused_node_is_used_on_autodiff_flex_only() {
    assert!(fused_cosine_loss_active::<Fused>());
    assert!(!fused_cosine_loss_active::<Composite>());
    assert!(!fused_cosine_loss_active::<Flex>());
}

/// Loss within 1e-5 relative, logits and gradients within 1e-4 of the reference's largest
/// magnitude (the tolerances of `reference.rs`), for the full head and block sizes that do
/// not divide C, equal 1, equal C and pass it.
#[test]
fn fused_heads_match_the_float64_reference() {
    for (seed, (n, d, classes)) in [(3, (8, 6, 10)), (4, (5, 12, 7))] {
        let inp = random_inputs(seed, n, d, classes);
        for (name, spec) in cases() {
            for chunk in [None, Some(1), Some(3), Some(classes), Some(classes + 5)] {
                let case = format!("{name} chunk {chunk:?} seed {seed}");
                let lib = run_lib::<Fused>(&with_chunk(&spec, chunk), &inp);
                let r = reference(&spec, &inp, None);
                assert_loss_close(&case, lib.loss, r.loss);
                match chunk {
                    None => assert_close(
                        &format!("{case} logits"),
                        lib.logits.as_ref().expect("the full head returns logits"),
                        r.logits.as_ref().expect("reference logits"),
                        1e-4,
                    ),
                    Some(_) => assert!(lib.logits.is_none(), "{case}: no logits when chunked"),
                }
                let (gx, gw) = reference_grads(&spec, &inp);
                assert_close(&format!("{case} grad_embeddings"), &lib.grad_x, &gx, 1e-4);
                assert_close(
                    &format!("{case} grad_weight"),
                    lib.grad_w.as_ref().expect("grad_weight"),
                    gw.as_ref().expect("reference grad_weight"),
                    1e-4,
                );
            }
        }
    }
}

/// On sizes where the kernels split rows over threads (hundreds of classes, several blocks),
/// the fused node equals the composite ops in f32: loss 1e-5 relative, logits and gradients
/// 1e-5 of the largest magnitude.
#[test]
fn fused_heads_equal_the_composite_ops_at_larger_sizes() {
    let (n, d, classes) = (37, 24, 700);
    for (seed, (name, spec)) in cases().into_iter().enumerate() {
        let inp = random_inputs(100 + seed as u64, n, d, classes);
        let want = run_lib::<Composite>(&spec, &inp);
        for chunk in [None, Some(128), Some(333)] {
            let case = format!("{name} chunk {chunk:?}");
            let got = run_lib::<Fused>(&with_chunk(&spec, chunk), &inp);
            assert_loss_close(&case, got.loss, want.loss);
            if chunk.is_none() {
                assert_close(
                    &format!("{case} logits"),
                    got.logits.as_ref().unwrap(),
                    want.logits.as_ref().unwrap(),
                    1e-5,
                );
            }
            assert_close(&format!("{case} grad_x"), &got.grad_x, &want.grad_x, 1e-5);
            assert_close(
                &format!("{case} grad_w"),
                got.grad_w.as_ref().unwrap(),
                want.grad_w.as_ref().unwrap(),
                1e-5,
            );
        }
    }
}

/// A zero weight row and one below `NORM_EPS` (treated as zero vectors: cosine 0, no
/// gradient), an embedding equal to its class's weight row (cos = +1) and one opposite to it
/// (cos = -1), at the paper scale and at the largest scale 1e4: finite, no gradient on the
/// zero rows, and at the paper scale equal to the composite ops.
#[test]
fn edge_cases_are_finite_and_equal_the_composite_ops() {
    let (n, d, classes) = (4, 5, 6);
    let mut inp = random_inputs(9, n, d, classes);
    inp.w[4] = vec![0.0; d];
    inp.w[5] = vec![1e-13, 0.0, -5e-14, 0.0, 0.0];
    inp.labels = vec![0, 1, 4, 2];
    inp.x[0] = inp.w[0].clone();
    inp.x[1] = inp.w[1].iter().map(|v| -3.0 * v).collect();
    for (name, spec) in cases() {
        for scale in [None, Some(1e4)] {
            for chunk in [None, Some(2)] {
                let mut spec = with_chunk(&spec, chunk);
                if scale.is_some() {
                    spec.scale = scale;
                }
                let case = format!("{name} scale {scale:?} chunk {chunk:?}");
                let got = run_lib::<Fused>(&spec, &inp);
                let want = run_lib::<Composite>(&with_chunk(&spec, None), &inp);
                let gw = got.grad_w.as_ref().unwrap();
                for m in [&got.grad_x, gw] {
                    assert!(m.iter().flatten().all(|v| v.is_finite()), "{case}: {m:?}");
                }
                assert!(got.loss.is_finite(), "{case}: loss {}", got.loss);
                assert!(
                    gw[4].iter().chain(&gw[5]).all(|&v| v == 0.0),
                    "{case}: zero rows get no gradient: {:?} {:?}",
                    gw[4],
                    gw[5]
                );
                if scale.is_some() {
                    // At s = 1e4 an f32 rounding of a cosine moves a logit by ~1e-3: the two
                    // implementations agree on finiteness, not to 1e-5.
                    continue;
                }
                assert_loss_close(&case, got.loss, want.loss);
                assert_close(&format!("{case} grad_x"), &got.grad_x, &want.grad_x, 1e-5);
                assert_close(
                    &format!("{case} grad_w"),
                    gw,
                    want.grad_w.as_ref().unwrap(),
                    1e-5,
                );
            }
        }
    }
}

/// A label outside `[0, C)` is the same error on the fused backend as on the others.
#[test]
fn labels_out_of_range_are_an_error_naming_them() {
    use burn::tensor::{Int, Tensor, TensorData};
    use visage_heads::{HeadError, HeadState};
    let inp = random_inputs(5, 3, 4, 5);
    let spec = HeadSpec::new(HeadKind::ArcFace);
    let config = spec.to_config(5, 4).unwrap();
    let device = Default::default();
    let head = config
        .init_with::<Fused>(visage_heads::HeadTensors {
            weight: Some(to_tensor::<Fused>(&inp.w, &device)),
            bias: None,
        })
        .unwrap();
    let labels =
        Tensor::<Fused, 1, Int>::from_data(TensorData::new(vec![0i64, 5, 1], [3]), &device);
    let x = to_tensor::<Fused>(&inp.x, &device);
    match head.forward_checked(x, labels, &mut HeadState::default()) {
        Err(HeadError::LabelOutOfRange { .. }) => {}
        other => panic!("expected LabelOutOfRange, got {:?}", other.map(|_| ())),
    }
}
