//! Named tensors in safetensors files, with errors that name the file, the tensor, and what
//! was expected; files are written to a temporary name and renamed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};

/// A host tensor to write to a safetensors file.
#[derive(Debug, Clone, PartialEq)]
pub enum HostTensor {
    /// f32 values and shape.
    F32(Vec<f32>, Vec<usize>),
}

impl HostTensor {
    fn dtype(&self) -> Dtype {
        match self {
            HostTensor::F32(..) => Dtype::F32,
        }
    }
    fn shape(&self) -> &[usize] {
        match self {
            HostTensor::F32(_, s) => s,
        }
    }
    fn bytes(&self) -> Vec<u8> {
        match self {
            HostTensor::F32(v, _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// The tensors of one safetensors file, read whole.
pub struct TensorFile {
    path: String,
    bytes: Vec<u8>,
}

/// How a tensor's shape is constrained: `None` = any size in that dimension.
pub type ShapeSpec<'a> = &'a [Option<usize>];

impl TensorFile {
    /// Reads `path` (a regular file only: a named pipe or a folder is refused, not waited on)
    /// and checks it parses as safetensors (every shape against the file's size).
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let bytes = read_regular_file(path)?;
        SafeTensors::deserialize(&bytes)
            .with_context(|| format!("{}: not a valid safetensors file", path.display()))?;
        Ok(TensorFile {
            path: path.display().to_string(),
            bytes,
        })
    }

    fn parsed(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).expect("validated in open")
    }

    /// Whether the file holds tensor `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.parsed().names().iter().any(|n| *n == name)
    }

    fn view_checked(
        &self,
        name: &str,
        dtype: Dtype,
        shape: ShapeSpec,
    ) -> anyhow::Result<(Vec<u8>, Vec<usize>)> {
        let st = self.parsed();
        let view = st
            .tensor(name)
            .map_err(|_| anyhow::anyhow!("{}: tensor `{name}` is missing", self.path))?;
        if view.dtype() != dtype {
            bail!(
                "{}: tensor `{name}` has dtype {:?}; expected {dtype:?}",
                self.path,
                view.dtype()
            );
        }
        let actual = view.shape().to_vec();
        let fits = actual.len() == shape.len()
            && actual
                .iter()
                .zip(shape)
                .all(|(a, s)| s.is_none_or(|s| s == *a));
        if !fits {
            let expected: Vec<String> = shape
                .iter()
                .map(|s| s.map_or("_".to_string(), |v| v.to_string()))
                .collect();
            bail!(
                "{}: tensor `{name}` has shape {actual:?}; expected [{}]",
                self.path,
                expected.join(", ")
            );
        }
        Ok((view.data().to_vec(), actual))
    }

    /// An f32 tensor with a constrained shape; a NaN or infinity is an error naming the
    /// tensor and the flat index.
    pub fn f32(&self, name: &str, shape: ShapeSpec) -> anyhow::Result<(Vec<f32>, Vec<usize>)> {
        self.f32_with(name, shape, false)
    }

    /// [`TensorFile::f32`], letting NaN and infinities through when `allow_non_finite`.
    pub fn f32_with(
        &self,
        name: &str,
        shape: ShapeSpec,
        allow_non_finite: bool,
    ) -> anyhow::Result<(Vec<f32>, Vec<usize>)> {
        let (bytes, dims) = self.view_checked(name, Dtype::F32, shape)?;
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if let Some(i) = values
            .iter()
            .position(|v| !allow_non_finite && !v.is_finite())
        {
            bail!(
                "{}: tensor `{name}` holds a non-finite value ({}) at flat index {i} (pass \
                 --allow-non-finite to use it anyway)",
                self.path,
                values[i]
            );
        }
        Ok((values, dims))
    }

    /// An i64 tensor with a constrained shape.
    pub fn i64(&self, name: &str, shape: ShapeSpec) -> anyhow::Result<(Vec<i64>, Vec<usize>)> {
        let (bytes, dims) = self.view_checked(name, Dtype::I64, shape)?;
        Ok((
            bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            dims,
        ))
    }
}

/// Reads a whole file after checking that it is a regular file (a named pipe would block
/// forever, a folder or device is not a file), with an error naming it; at most the size the
/// metadata gave, into a buffer reserved fallibly.
pub fn read_regular_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "{}: not a regular file (folders, named pipes and devices are not read)",
            path.display()
        );
    }
    use std::io::Read;
    let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    let mut bytes = Vec::new();
    // fallible: a file larger than the memory available is an error, not an abort
    bytes.try_reserve_exact(len).map_err(|_| {
        anyhow::anyhow!(
            "{}: cannot allocate {len} bytes to read the file",
            path.display()
        )
    })?;
    std::fs::File::open(path)
        .and_then(|f| f.take(meta.len()).read_to_end(&mut bytes))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
}

/// Writes `tensors` to `path` as safetensors (temporary file, then rename).
pub fn write_tensors(path: &Path, tensors: &BTreeMap<String, HostTensor>) -> anyhow::Result<()> {
    let bytes: Vec<(String, Vec<u8>)> = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.bytes()))
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, t), (_, b))| {
            TensorView::new(t.dtype(), t.shape().to_vec(), b)
                .map(|v| (name.clone(), v))
                .map_err(anyhow::Error::from)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let data = safetensors::serialize(views, &None).context("serialising safetensors")?;
    write_atomic(path, &data)
}

/// Writes `data` to a temporary file beside `path`, then renames it over `path` (creating the
/// folder first); on failure no temporary is left and `path` is as it was.
pub fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(visage_data::sample::write_atomic(path, data)?)
}
