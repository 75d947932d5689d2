//! The computations `visage parity` runs on each backend, each written once for every
//! backend ([`BackendJob`]) and returning host tensors by name, so that the orchestrator
//! compares backends it only knows at run time.
//!
//! Every backend starts from the same weights: [`InitJob`] draws the model once (on the
//! reference backend) and writes it as a Burn record; every other job loads that record.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use visage_train::{
    init_model, load_model, load_trained, save_model, train, TrainConfig, TrainOptions, Trainee,
};

use visage_io::{read_back, HostTensor, ReadBackError};

use crate::backend::BackendJob;

/// Host tensors by name.
pub type Tensors = BTreeMap<String, HostTensor>;

/// A tensor read back to the host as f32 ([`visage_io::read_back`]).
pub fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<HostTensor, ReadBackError> {
    let (values, shape) = read_back::<f32, B, D>(t)?;
    Ok(HostTensor::F32(values, shape))
}

/// Checks that a backend runs at all: a 2x2 matrix product read back, checked by hand.
pub struct ProbeJob;

impl BackendJob for ProbeJob {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        let a = Tensor::<B, 2>::from_data(TensorData::new(vec![1f32, 2., 3., 4.], [2, 2]), &device);
        let HostTensor::F32(p, _) = host(a.clone().matmul(a))?;
        // [[1, 2], [3, 4]]^2 = [[7, 10], [15, 22]]
        if p != [7.0, 10.0, 15.0, 22.0] {
            bail!("a 2x2 matrix product gave {p:?} instead of [7, 10, 15, 22]");
        }
        Ok(())
    }
}

/// Draws the initial model of a config on this backend and writes it to `path`.
pub struct InitJob {
    /// The training config.
    pub config: TrainConfig,
    /// Classes of its training data.
    pub classes: usize,
    /// Where the record goes.
    pub path: PathBuf,
}

impl BackendJob for InitJob {
    type Output = PathBuf;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<PathBuf> {
        let model = init_model::<B>(&self.config, self.classes, &device)?;
        Ok(save_model(&model, &self.path)?)
    }
}

/// The model of `config` with the weights of the record at `path`.
fn read_model<B: AutodiffBackend>(
    config: &TrainConfig,
    classes: usize,
    path: &std::path::Path,
    device: &B::Device,
) -> anyhow::Result<Trainee<B>> {
    Ok(load_model(
        init_model::<B>(config, classes, device)?,
        path,
        device,
    )?)
}

/// Collects parameter values (or their gradients) under their module paths.
struct Collect<'a> {
    path: Vec<String>,
    prefix: &'static str,
    grads: Option<&'a GradientsParams>,
    out: Tensors,
    error: Option<ReadBackError>,
}

impl<'a> Collect<'a> {
    fn new(prefix: &'static str, grads: Option<&'a GradientsParams>) -> Self {
        Collect {
            path: Vec::new(),
            prefix,
            grads,
            out: Tensors::new(),
            error: None,
        }
    }

    fn keep<B: Backend, const D: usize>(&mut self, t: Tensor<B, D>) {
        match host(t) {
            Ok(h) => {
                self.out
                    .insert(format!("{}{}", self.prefix, self.path.join(".")), h);
            }
            Err(e) => self.error = self.error.take().or(Some(e)),
        }
    }

    fn finish(self) -> Result<Tensors, ReadBackError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.out),
        }
    }
}

/// Parameter values of a module on any backend.
struct Values<'a>(Collect<'a>);

impl<B: Backend> ModuleVisitor<B> for Values<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.0.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.0.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.keep(param.val());
    }
}

/// Parameter gradients of a module on an autodiff backend (parameters without a gradient,
/// such as running statistics, are left out).
struct Grads<'a>(Collect<'a>);

impl<B: AutodiffBackend> ModuleVisitor<B> for Grads<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.0.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.0.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self
            .0
            .grads
            .and_then(|grads| grads.get::<B::InnerBackend, D>(param.id))
        {
            self.0.keep(g);
        }
    }
}

/// Every parameter value of `module`, named `prefix` + its module path.
pub fn parameter_values<B: Backend, M: Module<B>>(
    module: &M,
    prefix: &'static str,
) -> Result<Tensors, ReadBackError> {
    let mut v = Values(Collect::new(prefix, None));
    module.visit(&mut v);
    v.0.finish()
}

/// Every parameter gradient of `module` in `grads`, named `prefix` + its module path.
pub fn parameter_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
    prefix: &'static str,
) -> Result<Tensors, ReadBackError> {
    let mut v = Grads(Collect::new(prefix, Some(grads)));
    module.visit(&mut v);
    v.0.finish()
}

/// The backbone of the initial model on fixed images: the embeddings in training mode (batch
/// statistics) and inference mode (running statistics), the input gradient and every
/// parameter gradient of `sum(embeddings * cotangent)`.
///
/// # Shapes
/// - `images`: `[N, C, H, W]`; `cotangent`: `[N, embedding_dim]`.
/// - out: `forward` and `forward_inference` `[N, embedding_dim]`, `grad_input` `[N, C, H, W]`,
///   `grad.<parameter path>` each parameter's shape.
#[derive(Debug, Clone)]
pub struct BackboneJob {
    /// The training config (its backbone and head define the model's structure).
    pub config: TrainConfig,
    /// Classes of its training data.
    pub classes: usize,
    /// The initial model's record.
    pub model: PathBuf,
    /// Images and their shape.
    pub images: (Vec<f32>, [usize; 4]),
    /// The cotangent of the embeddings, `[N * embedding_dim]` values.
    pub cotangent: Vec<f32>,
}

impl BackendJob for BackboneJob {
    type Output = Tensors;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Tensors> {
        let model = read_model::<B>(&self.config, self.classes, &self.model, &device)?;
        let backbone = model.backbone;
        let (images, shape) = self.images;
        let x = Tensor::<B, 4>::from_data(TensorData::new(images.clone(), shape), &device)
            .require_grad();
        let out = backbone.forward(x.clone());
        let [n, d] = out.dims();
        if self.cotangent.len() != n * d {
            bail!(
                "the cotangent has {} values, the embeddings {n} x {d}",
                self.cotangent.len()
            );
        }
        let r = Tensor::<B, 2>::from_data(TensorData::new(self.cotangent, [n, d]), &device);
        let mut grads = (out.clone() * r).sum().backward();
        let mut result = Tensors::new();
        result.insert("forward".into(), host(out)?);
        let gx = x
            .grad_remove(&mut grads)
            .context("the images received no gradient")?;
        result.insert("grad_input".into(), host(gx)?);
        let params = GradientsParams::from_grads(grads, &backbone);
        result.extend(parameter_gradients(&backbone, &params, "grad.")?);
        let inference = backbone.valid();
        let xi = Tensor::<B::InnerBackend, 4>::from_data(TensorData::new(images, shape), &device);
        result.insert("forward_inference".into(), host(inference.forward(xi))?);
        Ok(result)
    }
}

/// `steps` training steps of a config from the initial model, through the training loop
/// itself: the loss at every step (`loss`, `[steps]`) and every tensor of the model after
/// the last step (`weight.<path>`: backbone, head, centres, running statistics).
#[derive(Debug, Clone)]
pub struct TrainStepsJob {
    /// The training config, `train.steps` set to the steps to run and no evaluation.
    pub config: TrainConfig,
    /// Classes of its training data.
    pub classes: usize,
    /// The initial model's record.
    pub model: PathBuf,
    /// The run directory (emptied first).
    pub run_dir: PathBuf,
}

impl BackendJob for TrainStepsJob {
    type Output = Tensors;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Tensors> {
        if self.run_dir.exists() {
            std::fs::remove_dir_all(&self.run_dir)
                .with_context(|| format!("clearing {}", self.run_dir.display()))?;
        }
        let options = TrainOptions {
            quiet: true,
            initial_model: Some(self.model.clone()),
            ..TrainOptions::default()
        };
        let summary = train::<B>(&self.config, &self.run_dir, &options, &device)?;
        let losses: Vec<f32> = summary.losses.iter().map(|(_, l)| *l as f32).collect();
        let model = load_trained::<B>(&self.config, &self.run_dir, self.classes, &device)?;
        let mut result = parameter_values(&model, "weight.")?;
        let steps = losses.len();
        result.insert("loss".into(), HostTensor::F32(losses, vec![steps]));
        Ok(result)
    }
}
