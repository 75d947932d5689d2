//! The optimisers against an f64 plain-loop reference of PyTorch's `torch.optim.SGD` and
//! `torch.optim.AdamW` update rules (written here from their documentation), on burn-flex
//! (the fused update) and on ndarray (Burn's own update), over several steps with a
//! changing learning rate; and Burn's optimiser records loading into visage's.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::module::{Module, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer, SgdConfig};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use visage_train::config::OptimConfig;
use visage_train::optim::GroupOptimizer;

/// A matrix and a vector parameter; the vector is larger than one task of the fused
/// update (32,768 elements), so it is split over threads.
#[derive(Module, Debug)]
struct Params<B: burn::tensor::backend::Backend> {
    w: Param<Tensor<B, 2>>,
    b: Param<Tensor<B, 1>>,
}

const W: [usize; 2] = [3, 5];
const NB: usize = 70_001;
const STEPS: usize = 4;
const LRS: [f64; STEPS] = [0.1, 0.05, 0.2, 0.01];

/// Deterministic values in `[-1, -0.05] U [0.05, 1]` (no gradient near 0).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
            let mag = 0.05 + 0.95 * (2.0 * u - 1.0).abs();
            if u < 0.5 {
                -mag
            } else {
                mag
            }
        })
        .collect()
}

fn start() -> [Vec<f64>; 2] {
    [values(W[0] * W[1], 1), values(NB, 2)]
}

fn grads_at(step: usize) -> [Vec<f64>; 2] {
    [
        values(W[0] * W[1], 10 + step as u64),
        values(NB, 20 + step as u64),
    ]
}

fn module<B: AutodiffBackend>(device: &B::Device) -> Params<B> {
    let [w, b] = start();
    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    Params {
        w: Param::from_tensor(Tensor::from_data(TensorData::new(f(&w), W), device)),
        b: Param::from_tensor(Tensor::from_data(TensorData::new(f(&b), [NB]), device)),
    }
}

fn grads<B: AutodiffBackend>(m: &Params<B>, step: usize, device: &B::Device) -> GradientsParams {
    let [gw, gb] = grads_at(step);
    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let mut g = GradientsParams::new();
    g.register::<B::InnerBackend, 2>(
        m.w.id,
        Tensor::from_data(TensorData::new(f(&gw), W), device),
    );
    g.register::<B::InnerBackend, 1>(
        m.b.id,
        Tensor::from_data(TensorData::new(f(&gb), [NB]), device),
    );
    g
}

fn read<B: AutodiffBackend>(m: &Params<B>) -> [Vec<f32>; 2] {
    [
        m.w.val().into_data().to_vec::<f32>().unwrap(),
        m.b.val().into_data().to_vec::<f32>().unwrap(),
    ]
}

/// Runs `STEPS` steps of `step` from `start()`.
fn run<B: AutodiffBackend>(
    mut step: impl FnMut(f64, Params<B>, GradientsParams) -> Params<B>,
    steps: std::ops::Range<usize>,
    mut m: Params<B>,
) -> Params<B> {
    let device = m.w.device();
    for s in steps {
        let g = grads(&m, s, &device);
        m = step(LRS[s], m, g);
    }
    m
}

fn close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = 2e-6 * (1.0 + w.abs());
        assert!(
            (g as f64 - w).abs() <= tol && g.is_finite(),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

// ----------------------------------------------------------------------------------------
// The references.

/// `torch.optim.SGD`: `g += wd p`; momentum buffer `b = g` at the first step, else
/// `b = m b + (1 - d) g`; `g = g + m b` (Nesterov) or `b`; `p -= lr g`.
fn sgd_reference(m: f64, d: f64, nesterov: bool, wd: f64) -> [Vec<f64>; 2] {
    let mut params = start();
    let mut bufs: [Vec<f64>; 2] = [vec![0.0; W[0] * W[1]], vec![0.0; NB]];
    for (s, &lr) in LRS.iter().enumerate() {
        let gs = grads_at(s);
        for k in 0..2 {
            for i in 0..params[k].len() {
                let p = params[k][i];
                let mut g = gs[k][i] + wd * p;
                if m != 0.0 {
                    bufs[k][i] = if s == 0 {
                        g
                    } else {
                        m * bufs[k][i] + (1.0 - d) * g
                    };
                    g = if nesterov {
                        g + m * bufs[k][i]
                    } else {
                        bufs[k][i]
                    };
                }
                params[k][i] = p - lr * g;
            }
        }
    }
    params
}

/// `torch.optim.AdamW` (no AMSGrad): `p *= 1 - lr wd`; `m = b1 m + (1 - b1) g`,
/// `v = b2 v + (1 - b2) g^2`; `p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`.
fn adamw_reference(b1: f64, b2: f64, eps: f64, wd: f64) -> [Vec<f64>; 2] {
    let mut params = start();
    let mut m1: [Vec<f64>; 2] = [vec![0.0; W[0] * W[1]], vec![0.0; NB]];
    let mut m2 = m1.clone();
    for (s, &lr) in LRS.iter().enumerate() {
        let t = (s + 1) as i32;
        let gs = grads_at(s);
        for k in 0..2 {
            for i in 0..params[k].len() {
                let g = gs[k][i];
                let mut p = params[k][i] * (1.0 - lr * wd);
                m1[k][i] = b1 * m1[k][i] + (1.0 - b1) * g;
                m2[k][i] = b2 * m2[k][i] + (1.0 - b2) * g * g;
                let mh = m1[k][i] / (1.0 - b1.powi(t));
                let vh = m2[k][i] / (1.0 - b2.powi(t));
                p -= lr * mh / (vh.sqrt() + eps);
                params[k][i] = p;
            }
        }
    }
    params
}

fn sgd_config(momentum: f64, nesterov: bool, wd: f64) -> OptimConfig {
    toml::from_str(&format!(
        "kind = \"sgd\"\nlr = 0.1\nmomentum = {momentum:?}\nnesterov = {nesterov}\nweight_decay = {wd:?}\n"
    ))
    .unwrap()
}

fn adamw_config(wd: f64) -> OptimConfig {
    toml::from_str(&format!(
        "kind = \"adamw\"\nlr = 0.001\nbetas = [0.9, 0.99]\neps = 1e-8\nweight_decay = {wd:?}\n"
    ))
    .unwrap()
}

fn check_sgd<B: AutodiffBackend>(device: &B::Device) {
    for (momentum, nesterov, wd) in [
        (0.9, false, 5e-4),
        (0.9, true, 5e-4),
        (0.0, false, 1e-2),
        (0.5, false, 0.0),
        (0.0, false, 0.0),
    ] {
        let c = sgd_config(momentum, nesterov, wd);
        let mut o = GroupOptimizer::<Params<B>, B>::new(&c, wd);
        let m = run::<B>(|lr, m, g| o.step(lr, m, g), 0..STEPS, module::<B>(device));
        let want = sgd_reference(momentum, 0.0, nesterov, wd);
        let got = read(&m);
        let what = format!("sgd m {momentum} nesterov {nesterov} wd {wd}");
        close(&got[0], &want[0], &format!("{what} w"));
        close(&got[1], &want[1], &format!("{what} b"));
    }
}

fn check_adamw<B: AutodiffBackend>(device: &B::Device) {
    for wd in [1e-2, 0.0] {
        let c = adamw_config(wd);
        let mut o = GroupOptimizer::<Params<B>, B>::new(&c, wd);
        let m = run::<B>(|lr, m, g| o.step(lr, m, g), 0..STEPS, module::<B>(device));
        let want = adamw_reference(0.9, 0.99, 1e-8, wd);
        let got = read(&m);
        close(&got[0], &want[0], &format!("adamw wd {wd} w"));
        close(&got[1], &want[1], &format!("adamw wd {wd} b"));
    }
}

#[test]
fn sgd_matches_pytorchs_rule_on_flex() {
    check_sgd::<Autodiff<Flex>>(&Default::default());
}

#[test]
fn sgd_matches_pytorchs_rule_on_ndarray() {
    check_sgd::<Autodiff<NdArray>>(&Default::default());
}

#[test]
fn adamw_matches_pytorchs_rule_on_flex() {
    check_adamw::<Autodiff<Flex>>(&Default::default());
}

#[test]
fn adamw_matches_pytorchs_rule_on_ndarray() {
    check_adamw::<Autodiff<NdArray>>(&Default::default());
}

/// Two steps with Burn's own optimiser, its record saved and loaded into visage's, two more
/// steps there: the same values as four steps of the reference (the state carried over).
#[test]
fn burns_optimiser_records_resume_in_visages() {
    type B = Autodiff<Flex>;
    let device = Default::default();
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();

    let sgd = SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)));
    let mut burn_sgd: OptimizerAdaptor<_, Params<B>, B> = sgd.init();
    let m = run::<B>(
        |lr, m, g| burn_sgd.step(lr, m, g),
        0..2,
        module::<B>(&device),
    );
    let bytes = Recorder::<B>::record(&recorder, burn_sgd.to_record(), ()).unwrap();
    let o = GroupOptimizer::<Params<B>, B>::new(&sgd_config(0.9, false, 5e-4), 5e-4);
    let mut o = o.load_bytes(&bytes, &device).unwrap();
    let m = run::<B>(|lr, m, g| o.step(lr, m, g), 2..STEPS, m);
    let want = sgd_reference(0.9, 0.0, false, 5e-4);
    let got = read(&m);
    close(&got[0], &want[0], "resumed sgd w");
    close(&got[1], &want[1], "resumed sgd b");

    let adamw = AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.99)
        .with_epsilon(1e-8)
        .with_weight_decay(1e-2);
    let mut burn_adamw: OptimizerAdaptor<_, Params<B>, B> = adamw.init();
    let m = run::<B>(
        |lr, m, g| burn_adamw.step(lr, m, g),
        0..2,
        module::<B>(&device),
    );
    let bytes = Recorder::<B>::record(&recorder, burn_adamw.to_record(), ()).unwrap();
    let o = GroupOptimizer::<Params<B>, B>::new(&adamw_config(1e-2), 1e-2);
    let mut o = o.load_bytes(&bytes, &device).unwrap();
    let m = run::<B>(|lr, m, g| o.step(lr, m, g), 2..STEPS, m);
    let want = adamw_reference(0.9, 0.99, 1e-8, 1e-2);
    let got = read(&m);
    close(&got[0], &want[0], "resumed adamw w");
    close(&got[1], &want[1], "resumed adamw b");
}
