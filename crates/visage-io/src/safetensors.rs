//! Named host tensors in safetensors files (an 8-byte little-endian header length, a JSON
//! header of dtype, shape and data offsets per tensor, then the raw little-endian data).
//!
//! [`TensorFile`] reads a whole file once (a regular file only, its size checked before the
//! buffer is reserved), validates every shape against the file's size, and hands out tensors
//! with their name, dtype and shape checked: every error names the file and the tensor.
//! [`write_tensors`] writes through [`crate::write_atomic`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ::safetensors::tensor::TensorView;
use ::safetensors::{Dtype, SafeTensors};

use crate::fs::{read_regular_file, write_atomic};
use crate::npy::{ElementType, RawArray};
use crate::IoError;

/// The [`ElementType`] of a safetensors dtype, if it is one.
fn element_type(dtype: Dtype) -> Option<ElementType> {
    Some(match dtype {
        Dtype::F32 => ElementType::F32,
        Dtype::F64 => ElementType::F64,
        Dtype::BOOL => ElementType::Bool,
        Dtype::U8 => ElementType::U8,
        Dtype::I8 => ElementType::I8,
        Dtype::I16 => ElementType::I16,
        Dtype::U16 => ElementType::U16,
        Dtype::I32 => ElementType::I32,
        Dtype::U32 => ElementType::U32,
        Dtype::I64 => ElementType::I64,
        Dtype::U64 => ElementType::U64,
        _ => return None,
    })
}

/// A tensor on the host: values in row-major order and the shape.
#[derive(Debug, Clone, PartialEq)]
pub enum HostTensor {
    /// f32 values and shape.
    F32(Vec<f32>, Vec<usize>),
}

impl HostTensor {
    /// The safetensors dtype of the values.
    pub fn dtype(&self) -> Dtype {
        match self {
            HostTensor::F32(..) => Dtype::F32,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            HostTensor::F32(_, s) => s,
        }
    }

    /// The values as little-endian bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            HostTensor::F32(v, _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// How a tensor's shape is constrained: one entry per dimension, `None` = any size.
pub type ShapeSpec<'a> = &'a [Option<usize>];

/// The tensors of one safetensors file, read whole and validated once.
#[derive(Debug)]
pub struct TensorFile {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl TensorFile {
    /// Reads `path` (a regular file only: a named pipe or a folder is refused, not waited
    /// on) and checks that it parses as safetensors, every shape against the file's size.
    pub fn open(path: &Path) -> Result<Self, IoError> {
        let bytes = read_regular_file(path)?;
        Self::from_bytes(path, bytes)
    }

    /// [`TensorFile::open`] on bytes already in memory; `path` names them in errors.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, IoError> {
        SafeTensors::deserialize(&bytes).map_err(|e| IoError::Safetensors {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(TensorFile {
            path: path.to_path_buf(),
            bytes,
        })
    }

    /// The file the tensors came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn parsed(&self) -> SafeTensors<'_> {
        // Validated by `from_bytes`; the bytes are never changed afterwards.
        SafeTensors::deserialize(&self.bytes).expect("validated when opened")
    }

    /// Whether the file holds tensor `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.parsed().names().iter().any(|n| *n == name)
    }

    /// The names of every tensor in the file, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.parsed().names().into_iter().cloned().collect();
        names.sort();
        names
    }

    /// The raw bytes and shape of tensor `name`, whose dtype must be `dtype` and whose shape
    /// must fit `shape`.
    pub fn raw(
        &self,
        name: &str,
        dtype: Dtype,
        shape: ShapeSpec,
    ) -> Result<(&[u8], Vec<usize>), IoError> {
        let view = self.view(name)?;
        if view.dtype() != dtype {
            return Err(IoError::Dtype {
                path: self.path.clone(),
                name: name.to_string(),
                found: format!("{:?}", view.dtype()),
                expected: format!("{dtype:?}"),
            });
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
            return Err(IoError::Shape {
                path: self.path.clone(),
                name: name.to_string(),
                found: actual,
                expected: expected.join(", "),
            });
        }
        Ok((view.data(), actual))
    }

    /// The view of tensor `name`, borrowing the file's bytes.
    fn view(&self, name: &str) -> Result<TensorView<'_>, IoError> {
        SafeTensors::deserialize(&self.bytes)
            .expect("validated when opened")
            .tensor(name)
            .map_err(|_| IoError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
                available: self.names(),
            })
    }

    /// Tensor `name` of any dtype that [`ElementType`] covers, as raw little-endian bytes
    /// (the shape is checked against the file's size when it was opened).
    pub fn raw_array(&self, name: &str) -> Result<RawArray, IoError> {
        let view = self.view(name)?;
        let dtype = element_type(view.dtype()).ok_or_else(|| IoError::Dtype {
            path: self.path.clone(),
            name: name.to_string(),
            found: format!("{:?}", view.dtype()),
            expected: "one of F32, F64, BOOL, U8, I8, I16, U16, I32, U32, I64, U64".into(),
        })?;
        Ok(RawArray {
            dtype,
            shape: view.shape().to_vec(),
            data: view.data().to_vec(),
        })
    }

    /// An f32 tensor with a constrained shape; a NaN or infinity is
    /// [`IoError::NonFinite`], naming the tensor and the flat index.
    pub fn f32(&self, name: &str, shape: ShapeSpec) -> Result<(Vec<f32>, Vec<usize>), IoError> {
        self.f32_with(name, shape, false)
    }

    /// [`TensorFile::f32`], letting NaN and infinities through when `allow_non_finite`.
    pub fn f32_with(
        &self,
        name: &str,
        shape: ShapeSpec,
        allow_non_finite: bool,
    ) -> Result<(Vec<f32>, Vec<usize>), IoError> {
        let (bytes, dims) = self.raw(name, Dtype::F32, shape)?;
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if !allow_non_finite {
            if let Some(index) = values.iter().position(|v| !v.is_finite()) {
                return Err(IoError::NonFinite {
                    path: self.path.clone(),
                    name: name.to_string(),
                    value: values[index],
                    index,
                });
            }
        }
        Ok((values, dims))
    }

    /// An i64 tensor with a constrained shape.
    pub fn i64(&self, name: &str, shape: ShapeSpec) -> Result<(Vec<i64>, Vec<usize>), IoError> {
        let (bytes, dims) = self.raw(name, Dtype::I64, shape)?;
        let values = bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                i64::from_le_bytes(b)
            })
            .collect();
        Ok((values, dims))
    }
}

/// `tensors` encoded as safetensors bytes; `path` names the file in errors.
pub fn encode_tensors(
    path: &Path,
    tensors: &BTreeMap<String, HostTensor>,
) -> Result<Vec<u8>, IoError> {
    let bytes: Vec<Vec<u8>> = tensors.values().map(HostTensor::to_le_bytes).collect();
    let encode_error = |name: &str, reason: String| IoError::Encode {
        path: path.to_path_buf(),
        name: name.to_string(),
        reason,
    };
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, t), b)| {
            TensorView::new(t.dtype(), t.shape().to_vec(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| encode_error(name, e.to_string()))
        })
        .collect::<Result<Vec<_>, IoError>>()?;
    ::safetensors::serialize(views, &None).map_err(|e| encode_error("(all)", e.to_string()))
}

/// One f32 tensor named `name` encoded as safetensors bytes; `path` names the file in errors.
pub fn encode_f32(
    path: &Path,
    name: &str,
    shape: &[usize],
    values: &[f32],
) -> Result<Vec<u8>, IoError> {
    let tensors = BTreeMap::from([(
        name.to_string(),
        HostTensor::F32(values.to_vec(), shape.to_vec()),
    )]);
    encode_tensors(path, &tensors)
}

/// Writes `tensors` to `path` as safetensors, atomically ([`crate::write_atomic`]; the
/// folder must exist).
pub fn write_tensors(path: &Path, tensors: &BTreeMap<String, HostTensor>) -> Result<(), IoError> {
    write_atomic(path, &encode_tensors(path, tensors)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file built by hand from the format's definition.
    fn by_hand(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn p() -> &'static Path {
        Path::new("in.safetensors")
    }

    #[test]
    fn reads_a_hand_built_file() {
        let mut data = Vec::new();
        for v in [1.5f32, -2.0, 0.25, 8.0] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        data.extend_from_slice(&7i64.to_le_bytes());
        let header = r#"{"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"n":{"dtype":"I64","shape":[],"data_offsets":[16,24]}}"#;
        let f = TensorFile::from_bytes(p(), by_hand(header, &data)).unwrap();
        assert_eq!(f.names(), ["n", "x"]);
        let (x, shape) = f.f32("x", &[Some(2), None]).unwrap();
        assert_eq!((x, shape), (vec![1.5, -2.0, 0.25, 8.0], vec![2, 2]));
        assert_eq!(f.i64("n", &[]).unwrap().0, [7]);
        let raw = f.raw_array("n").unwrap();
        assert_eq!((raw.dtype, raw.shape.len()), (ElementType::I64, 0));
        assert_eq!(raw.data, 7i64.to_le_bytes());
    }

    #[test]
    fn errors_name_the_file_the_tensor_and_the_expectation() {
        let mut data = 1.0f32.to_le_bytes().to_vec();
        data.extend_from_slice(&f32::NAN.to_le_bytes());
        let header = r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let f = TensorFile::from_bytes(p(), by_hand(header, &data)).unwrap();
        let msg = |e: IoError| e.to_string();
        let m = msg(f.f32("y", &[None]).unwrap_err());
        assert!(
            m.contains("in.safetensors") && m.contains("`y` is missing"),
            "{m}"
        );
        let m = msg(f.i64("x", &[None]).unwrap_err());
        assert!(m.contains("dtype F32; expected I64"), "{m}");
        let m = msg(f.f32("x", &[Some(3)]).unwrap_err());
        assert!(m.contains("shape [2]; expected [3]"), "{m}");
        let m = msg(f.f32("x", &[Some(2)]).unwrap_err());
        assert!(m.contains("flat index 1") && m.contains("NaN"), "{m}");
        assert!(f.f32_with("x", &[Some(2)], true).unwrap().0[1].is_nan());
    }

    #[test]
    fn a_shape_larger_than_the_data_is_refused_when_opened() {
        // 1e12 elements claimed, 4 bytes present.
        let header = r#"{"x":{"dtype":"F32","shape":[1000000000000],"data_offsets":[0,4]}}"#;
        let e = TensorFile::from_bytes(p(), by_hand(header, &[0; 4])).unwrap_err();
        assert!(matches!(e, IoError::Safetensors { .. }), "{e}");
        let e = TensorFile::from_bytes(p(), vec![0xff; 8]).unwrap_err();
        assert!(e.to_string().contains("in.safetensors"), "{e}");
    }

    #[test]
    fn written_tensors_have_the_format_layout() {
        let mut t = BTreeMap::new();
        t.insert("a".to_string(), HostTensor::F32(vec![1.0, 2.0], vec![2]));
        let bytes = encode_tensors(p(), &t).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        assert!(header.contains(r#""a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#));
        let data = &bytes[8 + n..];
        assert_eq!(data, [1.0f32.to_le_bytes(), 2.0f32.to_le_bytes()].concat());
        let bad: BTreeMap<_, _> = [("b".to_string(), HostTensor::F32(vec![1.0], vec![2]))].into();
        let e = encode_tensors(p(), &bad).unwrap_err();
        assert!(e.to_string().contains("`b`"), "{e}");
    }
}
