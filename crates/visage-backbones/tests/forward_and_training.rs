//! Output shapes, a backward pass through every backbone (training mode, autodiff), the frozen
//! IResNet `features` scale, and inference mode using running statistics.
#![allow(clippy::single_range_in_vec_init)] // Burn's `slice([a..b])` selects along dim 0

use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module};
use burn::tensor::{Distribution, Tensor, TensorData, Tolerance};
use visage_backbones::{
    Backbone, BackboneConfig, BackboneKind, IResNetConfig, LeNetPPConfig, MobileFaceNetConfig,
    SphereNetConfig,
};

// Flex: burn-ndarray 0.21's convolution backward is ~50-100x slower here (LeNets++ step 10.7 s vs 0.09 s).
type B = Flex;
type AD = Autodiff<B>;

fn images<Bk: burn::tensor::backend::Backend>(
    shape: [usize; 4],
    device: &Bk::Device,
) -> Tensor<Bk, 4> {
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), device)
}

#[test]
fn iresnet18_full_size_inference_shape() {
    let device = Default::default();
    let model = IResNetConfig::new().with_depth(18).init::<B>(&device);
    let out = model.forward(images::<B>([1, 3, 112, 112], &device));
    assert_eq!(out.dims(), [1, 512]);
    let v: Vec<f32> = out.into_data().into_vec().unwrap();
    assert!(v.iter().all(|x| x.is_finite()));
    // a freshly initialised net in inference mode: running mean 0, var 1, gamma 1 -> not all 0
    assert!(v.iter().any(|x| x.abs() > 1e-6));
}

#[test]
fn mobilefacenet_full_size_inference_shape() {
    let device = Default::default();
    let model = MobileFaceNetConfig::new().init::<B>(&device);
    let out = model.forward(images::<B>([1, 3, 112, 112], &device));
    assert_eq!(out.dims(), [1, 512]);
}

#[test]
fn small_backbones_shapes() {
    let device = Default::default();
    let lenet = LeNetPPConfig::new().init::<B>(&device);
    assert_eq!(
        lenet.forward(images::<B>([3, 1, 28, 28], &device)).dims(),
        [3, 2]
    );
    let lenet3 = LeNetPPConfig::new()
        .with_embedding_dim(3)
        .init::<B>(&device);
    assert_eq!(
        lenet3.forward(images::<B>([2, 1, 28, 28], &device)).dims(),
        [2, 3]
    );
    let sphere = SphereNetConfig::new()
        .with_depth(4)
        .with_input_size([32, 32])
        .init::<B>(&device);
    assert_eq!(
        sphere.forward(images::<B>([2, 3, 32, 32], &device)).dims(),
        [2, 512]
    );
    let sphere10 = SphereNetConfig::new()
        .with_depth(10)
        .with_input_size([48, 40])
        .with_embedding_dim(64)
        .init::<B>(&device);
    assert_eq!(
        sphere10
            .forward(images::<B>([1, 3, 48, 40], &device))
            .dims(),
        [1, 64]
    );
}

/// One training step's backward through `model`; every parameter with `require_grad` gets a
/// finite, non-zero gradient; returns the number of parameters that got one.
fn backward_reaches_params(model: &Backbone<AD>, x: Tensor<AD, 4>) -> usize {
    let out = model.forward(x);
    let n = out.dims()[0];
    // a loss that depends on every embedding coordinate non-symmetrically
    let w = Tensor::<AD, 2>::random(out.dims(), Distribution::Normal(0.0, 1.0), &out.device());
    let loss = (out * w).sum() / n as f32;
    let grads = loss.backward();
    struct Check<'a> {
        grads: &'a <AD as burn::tensor::backend::AutodiffBackend>::Gradients,
        with_grad: usize,
        without: usize,
    }
    impl burn::module::ModuleVisitor<AD> for Check<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<AD, D>>) {
            let t = param.val();
            if !t.is_require_grad() {
                self.without += 1;
                return;
            }
            match t.grad(self.grads) {
                Some(g) => {
                    let v: Vec<f32> = g.into_data().into_vec().unwrap();
                    assert!(v.iter().all(|x| x.is_finite()));
                    self.with_grad += 1;
                }
                None => self.without += 1,
            }
        }
    }
    let mut check = Check {
        grads: &grads,
        with_grad: 0,
        without: 0,
    };
    model.visit(&mut check);
    check.with_grad
}

fn backward_case(cfg: BackboneConfig, shape: [usize; 4]) {
    let device = Default::default();
    let model = cfg.init::<AD>(&device).unwrap();
    let n = backward_reaches_params(&model, images::<AD>(shape, &device));
    assert!(n > 0, "{}: no gradient", cfg.kind);
}

#[test]
fn backward_lenet_pp() {
    backward_case(BackboneConfig::new(BackboneKind::LeNetPP), [2, 1, 28, 28]);
}

#[test]
fn backward_sphere_net() {
    let cfg = BackboneConfig {
        input_size: Some([32, 32]),
        ..BackboneConfig::new(BackboneKind::SphereNet(10))
    };
    backward_case(cfg, [2, 3, 32, 32]);
}

#[test]
fn backward_iresnet() {
    let cfg = BackboneConfig {
        input_size: Some([32, 32]),
        embedding_dim: Some(16),
        ..BackboneConfig::new(BackboneKind::IResNet(18))
    };
    backward_case(cfg, [2, 3, 32, 32]);
}

#[test]
fn backward_mobilefacenet() {
    backward_case(
        BackboneConfig::new(BackboneKind::MobileFaceNet),
        [2, 3, 112, 112],
    );
}

#[test]
fn iresnet_features_scale_is_frozen_and_gets_no_gradient() {
    let device = Default::default();
    let model = IResNetConfig::new()
        .with_depth(18)
        .with_input_size([32, 32])
        .with_embedding_dim(8)
        .init::<AD>(&device);
    let gamma = model.features.gamma.val();
    assert!(!gamma.is_require_grad());
    gamma
        .clone()
        .into_data()
        .assert_eq(&TensorData::from([1.0f32; 8]), false);
    let out = model.forward(images::<AD>([2, 3, 32, 32], &device));
    let grads = out.sum().backward();
    assert!(model.features.gamma.val().grad(&grads).is_none());
    assert!(model.features.beta.val().grad(&grads).is_some());
    assert!(model.conv1.weight.val().grad(&grads).is_some());
    // still frozen after the valid() / train round trip the training loop does
    let back: visage_backbones::IResNet<AD> =
        visage_backbones::IResNet::<AD>::from_inner(model.valid());
    assert!(!back.features.gamma.val().is_require_grad());
}

#[test]
fn inference_mode_uses_running_statistics_training_mode_batch_statistics() {
    let device = Default::default();
    let cfg = IResNetConfig::new()
        .with_depth(18)
        .with_input_size([32, 32])
        .with_embedding_dim(8);
    let trained = cfg.init::<AD>(&device);
    let x = images::<AD>([4, 3, 32, 32], &device);
    // training mode: an image's embedding depends on the rest of the batch
    let full = trained.forward(x.clone());
    let alone = trained.forward(x.clone().slice([0..2]));
    let d: f32 = (full.slice([0..1]) - alone.slice([0..1]))
        .abs()
        .max()
        .into_scalar();
    assert!(d > 1e-3, "training mode should use batch statistics ({d})");
    // inference mode: it does not
    let model = trained.valid();
    let xi = x.inner();
    let full = model.forward(xi.clone());
    let alone = model.forward(xi.slice([0..1]));
    full.slice([0..1])
        .into_data()
        .assert_approx_eq::<f32>(&alone.into_data(), Tolerance::rel_abs(1e-4, 1e-4));
    // and the running statistics moved during the two training forwards (momentum 0.1)
    let rm: Vec<f32> = model
        .bn1
        .running_mean
        .value()
        .into_data()
        .into_vec()
        .unwrap();
    assert!(rm.iter().any(|v| v.abs() > 1e-6));
}
