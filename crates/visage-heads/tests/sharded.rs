//! The sharded classifier (`visage_heads::sharded`) against the unsharded head and against the
//! independent float64 references of `common/` (plain-loop logits and loss from the formulas,
//! central finite differences for the gradients): with 2 and 3 shards (threads joined by
//! `LocalExchange`) and sample rate 1, the loss, the logits (concatenated over shards) and the
//! gradients (class weights concatenated, embeddings summed over shards) equal the full
//! head's; with Partial FC sampling, every positive class is kept and the loss is the
//! reference loss restricted to the sampled classes. Plus the exchange's own behaviour.

mod common;

use std::thread;
use std::time::Duration;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use common::*;
use visage_heads::sharded::{
    shard_range, ExchangeError, LocalExchange, ReduceOp, ShardError, ShardedHead,
};
use visage_heads::{HeadKind, HeadState, HeadTensors};

type F32 = Autodiff<NdArray<f32>>;

/// What the shards give together.
#[derive(Debug)]
struct ShardedRun {
    /// The loss seen by each shard.
    losses: Vec<f64>,
    /// `[N, C]` logits, columns at their global class (0 where a class was not sampled).
    logits: Mat,
    /// The union of the shards' classes.
    classes: Vec<usize>,
    /// Embedding gradients summed over the shards.
    grad_x: Mat,
    /// Class-weight gradients, rows at their global place.
    grad_w: Mat,
    /// The dynamic AdaCos scale each shard used.
    scales: Vec<Option<f64>>,
}

fn run_sharded<B: AutodiffBackend>(
    spec: &HeadSpec,
    inp: &Inputs,
    world: usize,
    sample_rate: f64,
) -> ShardedRun {
    let k = spec.sub_centers();
    let (classes, dim, n) = (inp.w.len() / k, inp.x[0].len(), inp.x.len());
    let members = LocalExchange::group(world);
    let handles: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(rank, exchange)| {
            let (spec, inp) = (spec.clone(), inp.clone());
            thread::spawn(move || {
                let device = B::Device::default();
                let config = spec.to_config(classes, dim).expect("valid spec");
                let head = config
                    .init_with::<B>(HeadTensors {
                        weight: Some(to_tensor::<B>(&inp.w, &device)),
                        bias: inp.bias.as_ref().map(|b| {
                            Tensor::from_data(TensorData::new(b.clone(), [b.len()]), &device)
                        }),
                    })
                    .expect("head");
                let shard = ShardedHead::from_head(&head, world, rank)
                    .expect("shard")
                    .with_sampling(sample_rate, 7)
                    .expect("rate");
                let x = to_tensor::<B>(&inp.x, &device).require_grad();
                let labels = labels_tensor::<B>(&inp.labels, &device);
                let state = HeadState {
                    iteration: inp.iteration,
                    adacos_scale: inp.prev_scale,
                };
                let out = shard
                    .forward(x.clone(), labels, &state, &exchange)
                    .expect("forward");
                let loss: f64 = out
                    .loss
                    .clone()
                    .into_data()
                    .convert::<f64>()
                    .to_vec()
                    .unwrap()[0];
                let logits = from_tensor(out.logits.clone().inner());
                let grads = out.loss.backward();
                let gx = from_tensor(x.grad(&grads).expect("x grad"));
                let gw = from_tensor(
                    shard
                        .classifier
                        .weight
                        .val()
                        .grad(&grads)
                        .expect("weight grad"),
                );
                let scale = out.adacos_scale;
                (
                    loss,
                    logits,
                    out.classes,
                    gx,
                    gw,
                    shard.class_range(),
                    scale,
                )
            })
        })
        .collect();
    let mut run = ShardedRun {
        losses: vec![],
        logits: vec![vec![0.0; classes]; n],
        classes: vec![],
        grad_x: vec![vec![0.0; dim]; n],
        grad_w: vec![vec![0.0; dim]; classes * k],
        scales: vec![],
    };
    for (rank, h) in handles.into_iter().enumerate() {
        let (loss, logits, cols, gx, gw, range, scale) = h.join().expect("shard thread");
        run.scales.push(scale);
        assert_eq!(range, shard_range(classes, world, rank));
        run.losses.push(loss);
        for i in 0..n {
            for (c, &class) in cols.iter().enumerate() {
                run.logits[i][class] = logits[i][c];
            }
            for (total, g) in run.grad_x[i].iter_mut().zip(&gx[i]) {
                *total += g;
            }
        }
        for (r, row) in gw.into_iter().enumerate() {
            run.grad_w[range.start * k + r] = row;
        }
        run.classes.extend(cols);
    }
    run
}

fn spec(kind: HeadKind) -> HeadSpec {
    HeadSpec::new(kind)
}

/// Every kind of the softmax family, with options that exercise each margin path.
fn cases() -> Vec<(&'static str, HeadSpec)> {
    let mut v = vec![("softmax", spec(HeadKind::Softmax))];
    let mut s = spec(HeadKind::Softmax);
    s.bias = Some(true);
    v.push(("softmax bias", s));
    v.push(("normface", spec(HeadKind::NormFace)));
    let mut s = spec(HeadKind::NormFace);
    s.learnable_scale = Some(true);
    v.push(("normface learnable", s));
    v.push(("cosface", spec(HeadKind::CosFace)));
    let mut s = spec(HeadKind::ArcFace);
    s.scale = Some(16.0);
    v.push(("arcface", s));
    let mut s = spec(HeadKind::ArcFace);
    s.margin = Some(1.2);
    s.scale = Some(32.0);
    v.push(("arcface fallback", s));
    let mut s = spec(HeadKind::ArcFace);
    s.easy_margin = Some(true);
    v.push(("arcface easy", s));
    let mut s = spec(HeadKind::ArcFace);
    s.detach_margin = Some(true);
    v.push(("arcface detach", s));
    v.push(("combined", spec(HeadKind::Combined)));
    for m in [2, 4] {
        let mut s = spec(HeadKind::SphereFace);
        s.margin_int = Some(m);
        v.push(("sphereface", s.clone()));
        s.base = Some(0.0);
        s.lambda_min = Some(0.0);
        v.push(("sphereface pure", s));
        let mut s = spec(HeadKind::LSoftmax);
        s.margin_int = Some(m);
        s.base = Some(2.0);
        v.push(("lsoftmax", s));
    }
    v.push(("adacos fixed", spec(HeadKind::AdaCos)));
    let mut s = spec(HeadKind::AdaCos);
    s.dynamic = Some(true);
    v.push(("adacos dynamic", s));
    v
}

fn check_exact(name: &str, spec: &HeadSpec, inp: &Inputs) {
    let full = run_lib::<F32>(spec, inp);
    let reference_out = reference(spec, inp, None);
    let (ref_gx, ref_gw) = reference_grads(spec, inp);
    for world in [2, 3] {
        let what = format!("{name}, {world} shards");
        let run = run_sharded::<F32>(spec, inp, world, 1.0);
        for &loss in &run.losses {
            assert_loss_close(&format!("{what} vs full head"), loss, full.loss);
            assert_loss_close(
                &format!("{what} vs f64 reference"),
                loss,
                reference_out.loss,
            );
        }
        let classes = inp.w.len() / spec.sub_centers();
        assert_eq!(run.classes, (0..classes).collect::<Vec<_>>(), "{what}");
        // Dynamic AdaCos: every shard used the scale the full head and the reference did.
        for scale in &run.scales {
            match (scale, reference_out.scale, spec.dynamic == Some(true)) {
                (Some(s), Some(r), true) => {
                    assert!((s - r).abs() <= 1e-5 * r.abs(), "{what}: scale {s} vs {r}");
                    let f = full.scale.expect("the full head's scale");
                    assert!((s - f).abs() <= 1e-5 * f.abs(), "{what}: scale {s} vs {f}");
                }
                (None, _, false) => {}
                other => panic!("{what}: scales {other:?}"),
            }
        }
        assert_close(
            &format!("{what} logits vs full head"),
            &run.logits,
            full.logits.as_ref().unwrap(),
            1e-5,
        );
        assert_close(
            &format!("{what} logits vs f64 reference"),
            &run.logits,
            reference_out.logits.as_ref().unwrap(),
            1e-5,
        );
        assert_close(
            &format!("{what} grad x vs full"),
            &run.grad_x,
            &full.grad_x,
            1e-5,
        );
        assert_close(
            &format!("{what} grad W vs full"),
            &run.grad_w,
            full.grad_w.as_ref().unwrap(),
            1e-5,
        );
        assert_close(
            &format!("{what} grad x vs finite differences"),
            &run.grad_x,
            &ref_gx,
            1e-4,
        );
        assert_close(
            &format!("{what} grad W vs finite differences"),
            &run.grad_w,
            ref_gw.as_ref().unwrap(),
            1e-4,
        );
    }
}

#[test]
fn sharded_heads_equal_the_full_head_and_the_reference() {
    for (seed, (name, spec)) in cases().into_iter().enumerate() {
        // 8 classes over 7 rows: 3 shards get 3, 3 and 2 classes; labels cover all shards.
        let mut inp = random_inputs(300 + seed as u64, 7, 5, 8);
        inp.labels = vec![0, 7, 3, 5, 2, 7, 4];
        inp.iteration = 3;
        if spec.bias == Some(true) {
            inp.bias = Some(Rng(seed as u64).mat(1, 8).remove(0));
        }
        check_exact(name, &spec, &inp);
    }
}

#[test]
fn sharded_subcenter_arcface_equals_the_full_head() {
    let mut s = spec(HeadKind::SubCenterArcFace);
    s.k = Some(2);
    s.scale = Some(16.0);
    let mut inp = subcenter_inputs(41, 6, 4, 5, 2);
    inp.labels = vec![4, 0, 2, 3, 1, 4];
    check_exact("subcenter arcface k=2", &s, &inp);
}

#[test]
fn sampled_shards_keep_positives_and_equal_the_restricted_head() {
    let mut cases = vec![("cosface", spec(HeadKind::CosFace))];
    let mut s = spec(HeadKind::ArcFace);
    s.scale = Some(16.0);
    cases.push(("arcface", s));
    cases.push(("softmax", spec(HeadKind::Softmax)));
    for (name, spec) in cases {
        let classes = 20;
        let mut inp = random_inputs(77, 6, 4, classes);
        inp.labels = vec![0, 5, 9, 13, 19, 5];
        for world in [2, 3] {
            for step in [0, 1] {
                inp.iteration = step;
                let what = format!("{name}, {world} shards, step {step}");
                let run = run_sharded::<F32>(&spec, &inp, world, 0.3);
                let sampled = run.classes.clone();
                // Each shard: ceil(0.3 C_k) classes or all its positives if more.
                let mut expected = 0;
                for rank in 0..world {
                    let r = shard_range(classes, world, rank);
                    let pos = r.clone().filter(|c| inp.labels.contains(c)).count();
                    expected += pos.max(((0.3 * r.len() as f64).ceil()) as usize);
                }
                assert_eq!(sampled.len(), expected, "{what}: {sampled:?}");
                for l in &inp.labels {
                    assert!(sampled.contains(l), "{what}: positive {l} not sampled");
                }
                // The restricted problem: the sampled rows of W, labels re-indexed.
                let mut restricted = inp.clone();
                restricted.w = sampled.iter().map(|&c| inp.w[c].clone()).collect();
                restricted.labels = inp
                    .labels
                    .iter()
                    .map(|l| sampled.iter().position(|c| c == l).unwrap())
                    .collect();
                let r = reference(&spec, &restricted, None);
                for &loss in &run.losses {
                    assert_loss_close(&what, loss, r.loss);
                }
                let (gx, gw) = reference_grads(&spec, &restricted);
                assert_close(&format!("{what} grad x"), &run.grad_x, &gx, 1e-4);
                let gw = gw.unwrap();
                let sampled_rows: Mat = sampled.iter().map(|&c| run.grad_w[c].clone()).collect();
                assert_close(
                    &format!("{what} grad W (sampled rows)"),
                    &sampled_rows,
                    &gw,
                    1e-4,
                );
                for c in (0..classes).filter(|c| !sampled.contains(c)) {
                    assert!(
                        run.grad_w[c].iter().all(|&g| g == 0.0),
                        "{what}: unsampled class {c} has a gradient"
                    );
                }
            }
        }
        // Deterministic given the seed and step; another step draws other negatives.
        inp.iteration = 0;
        let a = run_sharded::<F32>(&spec, &inp, 2, 0.3).classes;
        let b = run_sharded::<F32>(&spec, &inp, 2, 0.3).classes;
        assert_eq!(a, b, "{name}: sampling not deterministic");
    }
}

#[test]
fn unsupported_kinds_and_layouts_are_errors() {
    let device = Default::default();
    let triplet: visage_heads::HeadConfig = toml::from_str("kind = \"triplet\"").unwrap();
    assert!(ShardedHead::<F32>::init(&triplet, 10, 4, 2, 0, &device).is_err());
    let arc: visage_heads::HeadConfig = toml::from_str("kind = \"arcface\"").unwrap();
    let err = ShardedHead::<F32>::init(&arc, 2, 4, 3, 0, &device).unwrap_err();
    assert!(
        matches!(
            err,
            ShardError::Layout {
                field: "classes",
                ..
            }
        ),
        "{err}"
    );
    let err = ShardedHead::<F32>::init(&arc, 10, 4, 2, 2, &device).unwrap_err();
    assert!(
        matches!(err, ShardError::Layout { field: "rank", .. }),
        "{err}"
    );
    let shard = ShardedHead::<F32>::init(&arc, 10, 4, 1, 0, &device).unwrap();
    assert!(shard.clone().with_sampling(0.0, 1).is_err());
    assert!(shard.clone().with_sampling(f64::NAN, 1).is_err());
    // A label outside [0, C) and a wrong width are typed errors.
    let exchange = visage_heads::sharded::SingleExchange;
    let x = Tensor::<F32, 2>::zeros([2, 4], &device);
    let bad = Tensor::from_data(TensorData::new(vec![0i64, 10], [2]), &device);
    let err = shard
        .forward(x, bad, &HeadState::default(), &exchange)
        .unwrap_err();
    assert!(err.to_string().contains("labels[1] = 10"), "{err}");
    let x = Tensor::<F32, 2>::zeros([2, 3], &device);
    let ok = Tensor::from_data(TensorData::new(vec![0i64, 1], [2]), &device);
    let err = shard
        .forward(x, ok, &HeadState::default(), &exchange)
        .unwrap_err();
    assert!(err.to_string().contains("embeddings"), "{err}");
    // Zero embeddings: finite loss (log C at cos = 0 for every class).
    let x = Tensor::<F32, 2>::zeros([2, 4], &device).require_grad();
    let ok = Tensor::from_data(TensorData::new(vec![0i64, 1], [2]), &device);
    let out = shard
        .forward(x, ok, &HeadState::default(), &exchange)
        .unwrap();
    let loss: f64 = out.loss.into_data().convert::<f64>().to_vec().unwrap()[0];
    assert!(loss.is_finite(), "{loss}");
}

#[test]
fn local_exchange_reduces_and_fails_without_hanging() {
    // Sum and max over three threads, several rounds in a row.
    let handles: Vec<_> = LocalExchange::group(3)
        .into_iter()
        .map(|e| {
            thread::spawn(move || {
                let r = e.rank() as f32;
                let mut out = vec![];
                for round in 0..4 {
                    let v = vec![r, -r, round as f32 + r * 10.0];
                    out.push(
                        e.all_reduce_values(v.clone(), [1, 3], ReduceOp::Sum)
                            .unwrap(),
                    );
                    out.push(e.all_reduce_values(v, [1, 3], ReduceOp::Max).unwrap());
                }
                out
            })
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        for round in 0..4 {
            let r = round as f32;
            assert_eq!(out[2 * round], vec![3.0, -3.0, 3.0 * r + 30.0]);
            assert_eq!(out[2 * round + 1], vec![2.0, 0.0, r + 20.0]);
        }
    }
    // A peer that never comes: an error naming it, after the timeout.
    let mut group = LocalExchange::group_with_timeout(2, Duration::from_millis(200));
    let _absent = group.pop();
    let err = group[0]
        .all_reduce_values(vec![1.0], [1, 1], ReduceOp::Sum)
        .unwrap_err();
    assert!(
        matches!(&err, ExchangeError::Timeout { missing, .. } if missing == &vec![1]),
        "{err}"
    );
    // A shape mismatch stops both.
    let group = LocalExchange::group(2);
    let (a, b) = (group[0].clone(), group[1].clone());
    let t = thread::spawn(move || a.all_reduce_values(vec![1.0], [1, 1], ReduceOp::Sum));
    let eb = b.all_reduce_values(vec![1.0, 2.0], [1, 2], ReduceOp::Sum);
    let ea = t.join().unwrap();
    assert!(ea.is_err() && eb.is_err(), "{ea:?} {eb:?}");
    // A stopped member makes its peer fail at once.
    let group = LocalExchange::group(2);
    group[1].stop("worker 1 failed");
    let err = group[0]
        .all_reduce_values(vec![1.0], [1, 1], ReduceOp::Sum)
        .unwrap_err();
    assert!(err.to_string().contains("worker 1 failed"), "{err}");
}
