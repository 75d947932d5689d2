//! `visage head`: one loss head on given tensors, for parity checks against PyTorch and
//! between backends.
//!
//! IN (safetensors): `embeddings` f32 [N, d]; `labels` i64 [N]; where the head has them
//! `weight` f32 [C, d] (`[C * k, d]` for subcenter_arcface, row = class * k + sub-centre;
//! `bias` f32 [C] optional for softmax / deepid2), `centers` f32 [C, d]
//! (center), `iteration` i64 [] (annealing, default 0), `scale` f32 [] (dynamic AdaCos: the
//! previous step's scale; default the fixed value).
//! OUT (safetensors): `loss` f32 []; `logits` f32 [N, C] (classification heads);
//! `grad_embeddings` f32 [N, d]; `grad_weight` f32 [C, d] (heads with class weights);
//! `centers` f32 [C, d] after the alpha update (center); `scale` f32 [] used (adacos).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use burn::tensor::{backend::AutodiffBackend, Int, Tensor, TensorData};
use visage_heads::{HeadConfig, HeadKind, HeadState, HeadTensors};

use crate::backend::{dispatch, BackendJob, BackendKind};
use crate::tensor_file::{read_regular_file, write_tensors, HostTensor, TensorFile};

/// Arguments of `visage head`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// HEAD.toml: `kind = "..."` and that head's fields.
    #[arg(long)]
    pub spec: PathBuf,
    /// Input tensors (safetensors).
    #[arg(long)]
    pub input: PathBuf,
    /// Output tensors (safetensors).
    #[arg(long)]
    pub output: PathBuf,
    /// Backend to compute on.
    #[arg(long, value_enum, default_value_t = BackendKind::default_compiled())]
    pub backend: BackendKind,
    /// Accept NaN/Inf in `embeddings`, `weight`/`centers` and `bias` (by default an error
    /// naming the tensor); the AdaCos `scale` must be finite regardless.
    #[arg(long)]
    pub allow_non_finite: bool,
}

/// The host-side inputs of one head evaluation (also `visage parity`'s head case).
#[derive(Debug, Clone)]
pub struct HeadJob {
    /// The head.
    pub spec: HeadConfig,
    /// Embeddings and their shape `[N, d]`.
    pub embeddings: (Vec<f32>, [usize; 2]),
    /// Labels, `[N]`.
    pub labels: Vec<i64>,
    /// Class weights (centres for center loss) and their shape `[C, d]` (`[C * k, d]` with
    /// `k` sub-centres).
    pub weight: Option<(Vec<f32>, [usize; 2])>,
    /// Class biases `[C]`.
    pub bias: Option<Vec<f32>>,
    /// Annealing iteration and AdaCos's previous scale.
    pub state: HeadState,
}

fn dims2(d: &[usize]) -> [usize; 2] {
    [d[0], d[1]]
}

/// Reads the spec and the input tensors, checking names, dtypes and shapes.
fn load(args: &Args) -> anyhow::Result<HeadJob> {
    let text = String::from_utf8(read_regular_file(&args.spec)?)
        .with_context(|| format!("{}: not UTF-8 text", args.spec.display()))?;
    let spec: HeadConfig = toml::from_str(&text)
        .with_context(|| format!("{}: invalid head spec", args.spec.display()))?;
    let file = TensorFile::open(&args.input)?;
    let allow = args.allow_non_finite;
    let (x, xd) = file.f32_with("embeddings", &[None, None], allow)?;
    let (n, d) = (xd[0], xd[1]);
    if n == 0 {
        bail!("{}: tensor `embeddings` has no rows", args.input.display());
    }
    let (labels, _) = file.i64("labels", &[Some(n)])?;
    // backends hold labels as i32 (or narrower): a larger value is refused here, by name,
    // before it reaches a tensor (the range against the class count is checked later)
    if let Some((i, &l)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| i32::try_from(l).is_err())
    {
        bail!(
            "{}: tensor `labels`[{i}] = {l} does not fit in i32 (labels are class indices in \
             [0, C))",
            args.input.display()
        );
    }
    let class_name = match spec.kind() {
        HeadKind::Center => Some("centers"),
        k if k.has_class_tensor() => Some("weight"),
        _ => None,
    };
    let weight = match class_name {
        Some(name) => {
            let (w, wd) = file.f32_with(name, &[None, Some(d)], allow)?;
            Some((w, dims2(&wd)))
        }
        None => None,
    };
    let classes = weight.as_ref().map(|(_, wd)| wd[0]);
    let bias = if file.contains("bias") {
        let has_bias = match &spec {
            HeadConfig::Softmax(c) => c.bias,
            HeadConfig::DeepId2(c) => c.bias,
            _ => false,
        };
        if !has_bias {
            bail!(
                "{}: tensor `bias` is given but the head spec has no `bias = true`",
                args.input.display()
            );
        }
        Some(file.f32_with("bias", &[classes], allow)?.0)
    } else {
        None
    };
    let iteration = if file.contains("iteration") {
        let it = file.i64("iteration", &[])?.0[0];
        u64::try_from(it).map_err(|_| {
            anyhow::anyhow!(
                "{}: tensor `iteration` = {it} is negative",
                args.input.display()
            )
        })?
    } else {
        0
    };
    let adacos_scale = if file.contains("scale") {
        let s = file.f32("scale", &[])?.0[0] as f64;
        if !(s > 0.0 && s <= visage_heads::check::MAX_SCALE) {
            bail!(
                "{}: tensor `scale` = {s} is outside (0, {:e}] (AdaCos's previous scale)",
                args.input.display(),
                visage_heads::check::MAX_SCALE
            );
        }
        Some(s)
    } else {
        None
    };
    Ok(HeadJob {
        spec,
        embeddings: (x, [n, d]),
        labels,
        weight,
        bias,
        state: HeadState {
            iteration,
            adacos_scale,
        },
    })
}

fn host<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> HostTensor {
    let shape = t.dims().to_vec();
    HostTensor::F32(
        t.into_data().convert::<f32>().into_vec().expect("f32 data"),
        shape,
    )
}

impl BackendJob for HeadJob {
    type Output = BTreeMap<String, HostTensor>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Self::Output> {
        let [n, d] = self.embeddings.1;
        let rows = self.weight.as_ref().map_or(1, |(_, wd)| wd[0]);
        let sub_centers = self.spec.classifier(1, d).map_or(1, |c| c.sub_centers);
        let classes = (rows / sub_centers).max(1);
        let weight = self
            .weight
            .map(|(w, wd)| Tensor::<B, 2>::from_data(TensorData::new(w, wd), &device));
        let bias = self
            .bias
            .map(|b| Tensor::<B, 1>::from_data(TensorData::new(b, [classes]), &device));
        let head = self
            .spec
            .init_with(classes, d, HeadTensors { weight, bias })?;
        let x = Tensor::<B, 2>::from_data(TensorData::new(self.embeddings.0, [n, d]), &device)
            .require_grad();
        let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(self.labels, [n]), &device);
        let mut state = self.state;
        let out = head.forward_checked(x.clone(), labels.clone(), &mut state)?;
        let mut result = BTreeMap::new();
        if let Some(logits) = out.logits.clone() {
            result.insert("logits".to_string(), host(logits));
        }
        let grads = out.loss.clone().backward();
        let loss = out
            .loss
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("f32")[0];
        result.insert("loss".into(), HostTensor::F32(vec![loss], vec![]));
        let grad_x = x
            .grad(&grads)
            .context("the embeddings received no gradient")?;
        result.insert("grad_embeddings".into(), host(grad_x));
        if head.kind().is_classifier() {
            let grad_w = head
                .class_tensor()
                .and_then(|w| w.grad(&grads))
                .context("the class weights received no gradient")?;
            result.insert("grad_weight".into(), host(grad_w));
        }
        if head.kind() == HeadKind::Center {
            let updated = head
                .after_step(x.detach(), labels)
                .class_tensor()
                .expect("centres");
            result.insert("centers".into(), host(updated));
        }
        if let Some(scale) = state.adacos_scale {
            result.insert("scale".into(), HostTensor::F32(vec![scale as f32], vec![]));
        }
        Ok(result)
    }
}

/// Runs `visage head`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let job = load(&args)?;
    let kind = job.spec.kind();
    let tensors = dispatch(args.backend, job)
        .with_context(|| format!("head `{kind}` on {}", args.backend))?;
    write_tensors(&args.output, &tensors)?;
    if let Some(HostTensor::F32(loss, _)) = tensors.get("loss") {
        println!(
            "{kind} on {}: loss {:.6} -> {}",
            args.backend,
            loss[0],
            args.output.display()
        );
    }
    Ok(())
}
