//! One loss head on host tensors, on any backend: the job behind `visage head` and the head
//! cases of the parity check.
//!
//! [`HeadJob::read`] reads a head spec (TOML) and its input tensors (safetensors):
//! `embeddings` f32 `[N, d]`; `labels` i64 `[N]`; where the head has them `weight` f32
//! `[C, d]` (`[C * k, d]` for subcenter_arcface, row = class * k + sub-centre; `bias` f32
//! `[C]` optional for softmax / deepid2), `centers` f32 `[C, d]`
//! (center), `iteration` i64 `[]` (annealing, default 0), `scale` f32 `[]` (dynamic AdaCos:
//! the previous step's scale; default the fixed value).
//!
//! Running it ([`BackendJob`]) returns `loss` `[]`; `logits` `[N, C]` (classification
//! heads); `grad_embeddings` `[N, d]`; `grad_weight` `[C, d]` (heads with class weights);
//! `centers` `[C, d]` after the alpha update (center); `scale` `[]` used (adacos).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::tensor::{backend::AutodiffBackend, Int, Tensor, TensorData};
use visage_heads::{HeadConfig, HeadKind, HeadState, HeadTensors};
use visage_io::{read_regular_file, HostTensor, IoError, TensorFile};

use crate::backend::BackendJob;
use crate::jobs::host;

/// Why a head's spec or input tensors cannot be used; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum HeadInputError {
    /// The file could not be read, or a tensor is missing or of the wrong dtype or shape.
    #[error(transparent)]
    File(#[from] IoError),
    /// The spec is not a valid head spec.
    #[error("{}: invalid head spec: {reason}", path.display())]
    Spec {
        /// The spec file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor's values are out of range.
    #[error("{}: {reason}", path.display())]
    Value {
        /// The input file.
        path: PathBuf,
        /// Which tensor and what is wrong.
        reason: String,
    },
}

/// The host-side inputs of one head evaluation.
#[derive(Debug, Clone)]
pub struct HeadJob {
    /// The head.
    pub spec: HeadConfig,
    /// Embeddings and their shape `[N, d]`.
    pub embeddings: (Vec<f32>, [usize; 2]),
    /// Labels, `[N]`.
    pub labels: Vec<i64>,
    /// Class weights (centres for center loss) and their shape `[C, d]`.
    pub weight: Option<(Vec<f32>, [usize; 2])>,
    /// Class biases `[C]`.
    pub bias: Option<Vec<f32>>,
    /// Annealing iteration and AdaCos's previous scale.
    pub state: HeadState,
}

fn dims2(d: &[usize]) -> [usize; 2] {
    [d[0], d[1]]
}

impl HeadJob {
    /// Reads the head spec at `spec` and the input tensors at `input` (see the module docs),
    /// checking names, dtypes, shapes and values; NaN and infinities in `embeddings`,
    /// `weight`/`centers` and `bias` are an error unless `allow_non_finite` (the AdaCos
    /// `scale` must be finite regardless).
    pub fn read(
        spec: &Path,
        input: &Path,
        allow_non_finite: bool,
    ) -> Result<HeadJob, HeadInputError> {
        let spec_error = |reason: String| HeadInputError::Spec {
            path: spec.to_path_buf(),
            reason,
        };
        let value_error = |reason: String| HeadInputError::Value {
            path: input.to_path_buf(),
            reason,
        };
        let text = String::from_utf8(read_regular_file(spec)?)
            .map_err(|_| spec_error("not UTF-8 text".into()))?;
        let spec: HeadConfig = toml::from_str(&text).map_err(|e| spec_error(e.to_string()))?;
        let file = TensorFile::open(input)?;
        let allow = allow_non_finite;
        let (x, xd) = file.f32_with("embeddings", &[None, None], allow)?;
        let (n, d) = (xd[0], xd[1]);
        if n == 0 {
            return Err(value_error("tensor `embeddings` has no rows".into()));
        }
        let (labels, _) = file.i64("labels", &[Some(n)])?;
        // backends hold labels as i32 (or narrower): a larger value is refused here, by name,
        // before it reaches a tensor (the range against the class count is checked later)
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| i32::try_from(l).is_err())
        {
            return Err(value_error(format!(
                "tensor `labels`[{i}] = {l} does not fit in i32 (labels are class indices in \
                 [0, C))"
            )));
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
                return Err(value_error(
                    "tensor `bias` is given but the head spec has no `bias = true`".into(),
                ));
            }
            Some(file.f32_with("bias", &[classes], allow)?.0)
        } else {
            None
        };
        let iteration = if file.contains("iteration") {
            let it = file.i64("iteration", &[])?.0[0];
            u64::try_from(it)
                .map_err(|_| value_error(format!("tensor `iteration` = {it} is negative")))?
        } else {
            0
        };
        let adacos_scale = if file.contains("scale") {
            let s = file.f32("scale", &[])?.0[0] as f64;
            if !(s > 0.0 && s <= visage_heads::check::MAX_SCALE) {
                return Err(value_error(format!(
                    "tensor `scale` = {s} is outside (0, {:e}] (AdaCos's previous scale)",
                    visage_heads::check::MAX_SCALE
                )));
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
            result.insert("logits".to_string(), host(logits)?);
        }
        let grads = out.loss.clone().backward();
        let loss = visage_io::read_back_scalar(out.loss)? as f32;
        result.insert("loss".into(), HostTensor::F32(vec![loss], vec![]));
        let grad_x = x
            .grad(&grads)
            .context("the embeddings received no gradient")?;
        result.insert("grad_embeddings".into(), host(grad_x)?);
        if head.kind().is_classifier() {
            let grad_w = head
                .class_tensor()
                .and_then(|w| w.grad(&grads))
                .context("the class weights received no gradient")?;
            result.insert("grad_weight".into(), host(grad_w)?);
        }
        if head.kind() == HeadKind::Center {
            let updated = head
                .after_step(x.detach(), labels)
                .class_tensor()
                .context("the center head has no centres after its update")?;
            result.insert("centers".into(), host(updated)?);
        }
        if let Some(scale) = state.adacos_scale {
            result.insert("scale".into(), HostTensor::F32(vec![scale as f32], vec![]));
        }
        Ok(result)
    }
}
