//! PyTorch weights in: InsightFace `backbone.pth` state dicts (or safetensors with the same
//! keys) loaded into the backbones of this crate.
//!
//! Files are read by [`crate::torch_file`] (`torch.save` files, zip or legacy pickle, every
//! size checked against the bytes present) and the `safetensors` crate; NaN and infinities
//! are refused unless [`ReadOptions::allow_non_finite`] is set. Each tensor of the module gets its
//! PyTorch key from [`torch_key`] (the module field names follow PyTorch's, the rest is a
//! small table: batch norm `gamma`/`beta` -> `weight`/`bias`, PReLU `alpha` -> `weight`,
//! `downsample.{conv,bn}` -> `downsample.{0,1}`, MobileFaceNet's `layers.<i>` indices).
//! `Linear` weights are transposed (PyTorch `[out, in]`, Burn `[in, out]`), batch-norm running
//! statistics load as they are, `num_batches_tracked` is skipped, a `module.` prefix
//! (DataParallel) is dropped, float16/bfloat16/float64 tensors are converted to f32.
//! Every tensor the module needs must be present with the right shape, and every tensor of the
//! file must be used: otherwise a [`BackboneError`] names the file, the key and the shapes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use burn_store::{ModuleSnapshot, TensorSnapshot};

use crate::error::BackboneError;

/// A state dict read from a file: PyTorch key -> tensor (f32, PyTorch layout).
#[derive(Clone, Debug, Default)]
pub struct StateDict {
    /// The file it came from (for error messages).
    pub source: PathBuf,
    /// The tensors by key.
    pub tensors: BTreeMap<String, TensorData>,
}

fn read_err(path: &Path, message: impl ToString) -> BackboneError {
    BackboneError::ReadWeights {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// How [`StateDict::read_with`] treats what it reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Load tensors holding NaN or infinities instead of refusing them with
    /// [`BackboneError::NonFinite`] (the CLI's `--allow-non-finite`).
    pub allow_non_finite: bool,
}

/// Largest weight file read (16 GiB): far above any face backbone (iresnet200 is ~260 MB).
pub const MAX_WEIGHTS_FILE_BYTES: u64 = 16 << 30;

fn looks_like_safetensors(path: &Path, bytes: &[u8]) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
        || (bytes.len() >= 9 && bytes[8] == b'{')
}

/// Strips wrappers that checkpoints commonly add around a state dict's keys.
fn normalise_key(key: &str) -> String {
    let mut k = key;
    loop {
        let before = k;
        for prefix in ["module.", "state_dict.", "model_state_dict.", "backbone."] {
            if let Some(rest) = k.strip_prefix(prefix) {
                k = rest;
            }
        }
        if k == before {
            return k.to_string();
        }
    }
}

/// One tensor as read: f32 values for float dtypes, `None` for integer ones.
type ReadTensor = (String, Vec<usize>, Option<Vec<f32>>, String);

fn read_safetensors(path: &Path, bytes: &[u8]) -> Result<Vec<ReadTensor>, BackboneError> {
    use safetensors::Dtype;
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| read_err(path, format!("safetensors: {e}")))?;
    let mut out = Vec::new();
    for (key, view) in st.tensors() {
        let data = view.data();
        let values: Option<Vec<f32>> = match view.dtype() {
            Dtype::F32 => Some(
                data.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            Dtype::F64 => Some(
                data.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                    .collect(),
            ),
            Dtype::F16 => Some(
                data.chunks_exact(2)
                    .map(|c| burn::tensor::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
            ),
            Dtype::BF16 => Some(
                data.chunks_exact(2)
                    .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                    .collect(),
            ),
            _ => None,
        };
        out.push((
            key,
            view.shape().to_vec(),
            values,
            format!("{:?}", view.dtype()),
        ));
    }
    Ok(out)
}

fn read_torch(path: &Path, bytes: &[u8]) -> Result<Vec<ReadTensor>, BackboneError> {
    Ok(crate::torch_file::parse_torch_file(path, bytes)?
        .into_iter()
        .map(|(k, t)| (k, t.shape, t.values, format!("{:?}", t.dtype)))
        .collect())
}

impl StateDict {
    /// Reads a PyTorch `torch.save` state dict (`.pth`, `.pt`: the zip format of PyTorch >=
    /// 1.6 or the legacy stream) or a safetensors file (by extension or content), refusing
    /// NaN and infinities (see [`StateDict::read_with`]). Non-float entries
    /// (`num_batches_tracked`) are dropped.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, BackboneError> {
        Self::read_with(path, ReadOptions::default())
    }

    /// [`StateDict::read`] with options. Only a regular file is read (a named pipe or a
    /// device is refused, not waited on), of at most [`MAX_WEIGHTS_FILE_BYTES`].
    pub fn read_with(path: impl AsRef<Path>, options: ReadOptions) -> Result<Self, BackboneError> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| read_err(path, e))?;
        if !meta.is_file() {
            return Err(read_err(path, "not a regular file"));
        }
        if meta.len() > MAX_WEIGHTS_FILE_BYTES {
            return Err(read_err(
                path,
                format!(
                    "{} bytes is more than the {MAX_WEIGHTS_FILE_BYTES}-byte limit",
                    meta.len()
                ),
            ));
        }
        let len = meta.len() as usize; // <= MAX_WEIGHTS_FILE_BYTES
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(len)
            .map_err(|_| read_err(path, format!("cannot allocate {len} bytes to read it")))?;
        use std::io::Read;
        std::fs::File::open(path)
            .and_then(|f| f.take(meta.len()).read_to_end(&mut bytes))
            .map_err(|e| read_err(path, e))?;
        Self::from_bytes(path, &bytes, options)
    }

    /// Parses the bytes of a weight file (`path` names it in errors and decides the format by
    /// its extension, as [`StateDict::read`] does).
    pub fn from_bytes(
        path: &Path,
        bytes: &[u8],
        options: ReadOptions,
    ) -> Result<Self, BackboneError> {
        let read = if looks_like_safetensors(path, bytes) {
            read_safetensors(path, bytes)?
        } else {
            read_torch(path, bytes)?
        };
        let mut tensors = BTreeMap::new();
        for (key, shape, values, dtype) in read {
            if key.ends_with("num_batches_tracked") {
                continue;
            }
            let Some(values) = values else {
                return Err(BackboneError::BadDtype {
                    path: path.to_path_buf(),
                    key,
                    dtype,
                });
            };
            if !options.allow_non_finite {
                if let Some(index) = values.iter().position(|v| !v.is_finite()) {
                    return Err(BackboneError::NonFinite {
                        path: path.to_path_buf(),
                        key,
                        index,
                        value: values[index],
                    });
                }
            }
            tensors.insert(normalise_key(&key), TensorData::new(values, shape));
        }
        if tensors.is_empty() {
            return Err(read_err(path, "the file holds no float tensors"));
        }
        Ok(Self {
            source: path.to_path_buf(),
            tensors,
        })
    }
}

/// PyTorch name of one path segment, given the type of the module that holds it.
fn torch_segment(container: &str, field: &str) -> Option<&'static str> {
    Some(match (container, field) {
        ("Struct:BatchNorm", "gamma") => "weight",
        ("Struct:BatchNorm", "beta") => "bias",
        ("Struct:PRelu", "alpha") => "weight",
        ("Struct:Downsample", "conv") => "0",
        ("Struct:Downsample", "bn") => "1",
        ("Struct:ConvBlock", "conv") | ("Struct:LinearBlock", "conv") => "layers.0",
        ("Struct:ConvBlock", "bn") | ("Struct:LinearBlock", "bn") => "layers.1",
        ("Struct:ConvBlock", "prelu") => "layers.2",
        ("Struct:DepthWise", "expand") => "layers.0",
        ("Struct:DepthWise", "depthwise") => "layers.1",
        ("Struct:DepthWise", "project") => "layers.2",
        ("Struct:MobileFaceNet", "stem") => "layers.0",
        ("Struct:MobileFaceNet", "stem_dw") => "layers.1",
        ("Struct:MobileFaceNet", "stem_residual") => "layers.1.layers",
        ("Struct:MobileFaceNet", "down2") => "layers.2",
        ("Struct:MobileFaceNet", "stage2") => "layers.3.layers",
        ("Struct:MobileFaceNet", "down3") => "layers.4",
        ("Struct:MobileFaceNet", "stage3") => "layers.5.layers",
        ("Struct:MobileFaceNet", "down4") => "layers.6",
        ("Struct:MobileFaceNet", "stage4") => "layers.7.layers",
        ("Struct:MobileFaceNet", "gdc") => "features.layers.0",
        ("Struct:MobileFaceNet", "linear") => "features.layers.2",
        ("Struct:MobileFaceNet", "features") => "features.layers.3",
        _ => return None,
    })
}

/// The PyTorch (InsightFace) key of a module tensor, from its Burn path and the types of the
/// modules holding each segment (as burn-store's snapshots record them). Enum variants (the
/// [`crate::Backbone`] wrapper) are dropped.
pub fn torch_key(path_stack: &[String], container_stack: &[String]) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(path_stack.len());
    for (i, field) in path_stack.iter().enumerate() {
        let container = container_stack.get(i).map(String::as_str).unwrap_or("");
        if container.starts_with("Enum:") {
            continue;
        }
        out.push(torch_segment(container, field).unwrap_or(field));
    }
    out.join(".")
}

fn is_linear_weight(snap: &TensorSnapshot) -> bool {
    let path = snap.path_stack.as_deref().unwrap_or(&[]);
    let containers = snap.container_stack.as_deref().unwrap_or(&[]);
    path.last().is_some_and(|p| p == "weight")
        && containers.last().is_some_and(|c| c == "Struct:Linear")
        && snap.shape.num_dims() == 2
}

fn transpose_2d(data: TensorData) -> TensorData {
    let (rows, cols) = (data.shape[0], data.shape[1]);
    let values: Vec<f32> = data.into_vec().unwrap_or_default();
    let mut out = vec![0f32; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    TensorData::new(out, [cols, rows])
}

/// Count of parameters as PyTorch's `sum(p.numel() for p in model.parameters())` gives it:
/// every parameter (frozen ones included), running statistics excluded. Uses the parameters'
/// lazy shapes, so counting does not initialise them.
pub fn pytorch_num_params<B: Backend, M: Module<B>>(model: &M) -> usize {
    struct Counter {
        path: Vec<String>,
        total: usize,
    }
    impl<B: Backend> ModuleVisitor<B> for Counter {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let running = matches!(
                self.path.last().map(String::as_str),
                Some("running_mean") | Some("running_var")
            );
            if !running {
                self.total += param.lazy_shape().num_elements();
            }
        }
    }
    let mut counter = Counter {
        path: Vec::new(),
        total: 0,
    };
    model.visit(&mut counter);
    counter.total
}

/// The PyTorch keys and shapes (PyTorch layout) the module expects, in module order.
pub fn expected_state_dict<B: Backend, M: Module<B>>(model: &M) -> Vec<(String, Vec<usize>)> {
    model
        .collect(None, None, false)
        .iter()
        .map(|s| {
            let key = torch_key(
                s.path_stack.as_deref().unwrap_or(&[]),
                s.container_stack.as_deref().unwrap_or(&[]),
            );
            let mut shape = s.shape.as_slice().to_vec();
            if is_linear_weight(s) {
                shape.reverse();
            }
            (key, shape)
        })
        .collect()
}

/// Loads a state dict into `model` (see the module docs for the rules).
pub fn load_state_dict<B: Backend, M: Module<B>>(
    mut model: M,
    state: &StateDict,
) -> Result<M, BackboneError> {
    let path = &state.source;
    let mut used = BTreeSet::new();
    let mut snapshots = Vec::new();
    for snap in model.collect(None, None, false) {
        let path_stack = snap.path_stack.clone().unwrap_or_default();
        let container_stack = snap.container_stack.clone().unwrap_or_default();
        let key = torch_key(&path_stack, &container_stack);
        let linear = is_linear_weight(&snap);
        let mut expected = snap.shape.as_slice().to_vec();
        if linear {
            expected.reverse();
        }
        let Some(data) = state.tensors.get(&key) else {
            let stem = key.rsplit_once('.').map(|(a, _)| a).unwrap_or(&key);
            let near: Vec<&String> = state
                .tensors
                .keys()
                .filter(|k| k.starts_with(stem))
                .take(4)
                .collect();
            let hint = if near.is_empty() {
                let first: Vec<&String> = state.tensors.keys().take(4).collect();
                format!("; the file's keys start {first:?}")
            } else {
                format!("; keys near it in the file: {near:?}")
            };
            return Err(BackboneError::MissingKey {
                path: path.clone(),
                key,
                module_path: path_stack.join("."),
                expected,
                hint,
            });
        };
        if data.shape.as_slice() != expected.as_slice() {
            return Err(BackboneError::ShapeMismatch {
                path: path.clone(),
                key,
                expected,
                found: data.shape.as_slice().to_vec(),
            });
        }
        let data = if linear {
            transpose_2d(data.clone())
        } else {
            data.clone()
        };
        used.insert(key);
        snapshots.push(TensorSnapshot::from_data(
            data,
            path_stack,
            container_stack,
            snap.tensor_id.unwrap_or_else(ParamId::new),
        ));
    }
    let unused: Vec<String> = state
        .tensors
        .keys()
        .filter(|k| !used.contains(*k))
        .cloned()
        .collect();
    if !unused.is_empty() {
        return Err(BackboneError::UnusedKeys {
            path: path.clone(),
            count: unused.len(),
            examples: unused.into_iter().take(5).collect(),
        });
    }
    let result = model.apply(snapshots, None, None, false);
    if let Some(e) = result.errors.first() {
        return Err(read_err(path, format!("applying the weights: {e}")));
    }
    if let Some((p, _)) = result.missing.first() {
        return Err(read_err(
            path,
            format!("the module tensor `{p}` was not loaded"),
        ));
    }
    Ok(model)
}

/// Reads `path` (PyTorch `.pth`/`.pt` or safetensors) and loads it into `model`.
pub fn load_weights<B: Backend, M: Module<B>>(
    model: M,
    path: impl AsRef<Path>,
) -> Result<M, BackboneError> {
    let state = StateDict::read(path)?;
    load_state_dict(model, &state)
}

/// The module's tensors under their PyTorch (InsightFace) keys and in PyTorch's layout
/// (Linear weights transposed back to `[out, in]`), in module order: the inverse of
/// [`load_state_dict`], so that a trained backbone can be used from PyTorch.
pub fn export_state_dict<B: Backend, M: Module<B>>(model: &M) -> Vec<(String, TensorData)> {
    model
        .collect(None, None, false)
        .iter()
        .filter_map(|s| {
            let key = torch_key(
                s.path_stack.as_deref().unwrap_or(&[]),
                s.container_stack.as_deref().unwrap_or(&[]),
            );
            let data = s.to_data().ok()?.convert::<f32>();
            Some((
                key,
                if is_linear_weight(s) {
                    transpose_2d(data)
                } else {
                    data
                },
            ))
        })
        .collect()
}

/// Writes [`export_state_dict`] as a safetensors file (f32; temporary file, then rename).
pub fn save_safetensors<B: Backend, M: Module<B>>(
    model: &M,
    path: impl AsRef<Path>,
) -> Result<(), BackboneError> {
    let path = path.as_ref();
    let tensors = export_state_dict(model);
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, d)| {
            d.as_slice::<f32>()
                .map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect())
                .unwrap_or_default()
        })
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((key, data), b) in tensors.iter().zip(&bytes) {
        let view = safetensors::tensor::TensorView::new(
            safetensors::Dtype::F32,
            data.shape.as_slice().to_vec(),
            b,
        )
        .map_err(|e| read_err(path, format!("tensor {key}: {e}")))?;
        views.push((key.clone(), view));
    }
    let out = safetensors::serialize(views, &None).map_err(|e| read_err(path, e))?;
    let tmp = path.with_extension("safetensors.tmp");
    std::fs::write(&tmp, out).map_err(|e| read_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| read_err(path, e))
}
