//! InsightFace `.bin` verification packs (lfw.bin, cfp_fp.bin, agedb_30.bin, calfw.bin,
//! cplfw.bin): a pickled tuple `(bins, issame)`, where `bins` holds 2N encoded images (Python 2
//! `str`/bytes, or numpy uint8 arrays of the encoded bytes) and `issame` N bools (a list, or a
//! numpy bool array). Pair `i` is `(bins[2i], bins[2i + 1])`.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::Digest;

use crate::error::{DataError, Result};
use crate::pairs::VerificationSet;
use crate::pickle::{parse_pickle, Value};
use crate::sample::decode_image;

/// A `.bin` pack: encoded images and flags, with the file's size and SHA-256 (two different
/// lfw.bin and cfp_fp.bin files circulate: report both beside any score).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinPack {
    /// The file.
    pub path: PathBuf,
    /// 2N encoded images (JPEG or PNG bytes), in pair order.
    pub images: Vec<Vec<u8>>,
    /// N genuine flags.
    pub issame: Vec<bool>,
    /// File size in bytes.
    pub file_size: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Lowercase hex SHA-256 of a file, streamed; a non-regular file (FIFO, device, folder) is
/// refused before it is opened.
pub fn sha256_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let (mut f, _) = crate::read::open_regular(path, u64::MAX)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn is_numpy_reconstruct(v: &Value) -> bool {
    matches!(v, Value::Global(m, n) if (m == "numpy.core.multiarray" || m == "numpy._core.multiarray") && n == "_reconstruct")
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.clone()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// The dtype code (`u1`, `b1`, ...) and raw bytes of a pickled 1-D numpy array.
fn numpy_array(v: &Value, path: &Path, what: &str) -> Result<(String, Vec<u8>)> {
    let bad = |m: String| DataError::format(path, format!("{what}: {m}"));
    let Value::Object {
        callable, state, ..
    } = v
    else {
        return Err(bad(format!(
            "found {}, expected bytes or a numpy array",
            v.kind()
        )));
    };
    if !is_numpy_reconstruct(callable) {
        return Err(bad(format!(
            "found an object made by {}, expected numpy's _reconstruct",
            callable.kind()
        )));
    }
    let Some(Value::Tuple(st)) = state.as_deref() else {
        return Err(bad("numpy array without a BUILD state tuple".into()));
    };
    let [_, Value::Tuple(shape), dtype, fortran, data] = st.as_slice() else {
        return Err(bad(format!(
            "numpy state has {} fields, expected 5 (version, shape, dtype, fortran, data)",
            st.len()
        )));
    };
    let code = match dtype {
        Value::Object { callable, args, .. } if matches!(&**callable, Value::Global(m, n) if m == "numpy" && n == "dtype") => match &**args {
            Value::Tuple(a) => a.first().and_then(text),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| bad(format!("numpy dtype is {}, expected numpy.dtype(...)", dtype.kind())))?;
    if !matches!(fortran, Value::Bool(_) | Value::Int(_)) {
        return Err(bad(format!("numpy fortran flag is {}", fortran.kind())));
    }
    let Value::Bytes(raw) = data else {
        return Err(bad(format!(
            "numpy data is {}, expected raw bytes",
            data.kind()
        )));
    };
    let mut count: u64 = 1;
    for d in shape {
        match d {
            Value::Int(n) if *n >= 0 => count = count.saturating_mul(*n as u64),
            other => {
                return Err(bad(format!(
                    "numpy shape entry {}, expected a non-negative int",
                    other.kind()
                )))
            }
        }
    }
    let code = code.trim_start_matches(['|', '<', '=']).to_string();
    if count != raw.len() as u64 {
        return Err(bad(format!(
            "numpy array of {count} elements holds {} bytes (dtype {code})",
            raw.len()
        )));
    }
    Ok((code, raw.clone()))
}

impl BinPack {
    /// Reads and parses the pack at `path` (a regular file of at most
    /// [`crate::read::MAX_BIN_BYTES`]).
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = crate::read::read_regular(path, crate::read::MAX_BIN_BYTES)?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses pack `bytes`; `path` names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let v = parse_pickle(bytes, path)?;
        let bad = |m: String| DataError::format(path, m);
        let Value::Tuple(top) = v else {
            return Err(bad(format!(
                "the pickle holds a {}, expected a tuple (bins, issame)",
                v.kind()
            )));
        };
        let [bins, issame] = top.as_slice() else {
            return Err(bad(format!(
                "the pickle holds a tuple of {} items, expected 2 (bins, issame)",
                top.len()
            )));
        };
        let Value::List(bins) = bins else {
            return Err(bad(format!(
                "bins is a {}, expected a list of encoded images",
                bins.kind()
            )));
        };
        let images = bins
            .iter()
            .enumerate()
            .map(|(i, b)| match b {
                Value::Bytes(x) => Ok(x.clone()),
                other => {
                    let (code, raw) = numpy_array(other, path, &format!("bins[{i}]"))?;
                    if code != "u1" {
                        return Err(bad(format!(
                            "bins[{i}]: numpy dtype {code}, expected uint8 (u1)"
                        )));
                    }
                    Ok(raw)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let issame = match issame {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, x)| match x {
                    Value::Bool(b) => Ok(*b),
                    Value::Int(0) => Ok(false),
                    Value::Int(1) => Ok(true),
                    other => Err(bad(format!(
                        "issame[{i}] is {}, expected a bool",
                        other.kind()
                    ))),
                })
                .collect::<Result<Vec<bool>>>()?,
            other => {
                let (code, raw) = numpy_array(other, path, "issame")?;
                if code != "b1" && code != "u1" {
                    return Err(bad(format!(
                        "issame: numpy dtype {code}, expected bool (b1)"
                    )));
                }
                raw.iter()
                    .enumerate()
                    .map(|(i, &b)| match b {
                        0 => Ok(false),
                        1 => Ok(true),
                        _ => Err(bad(format!("issame[{i}] is {b}, expected 0 or 1"))),
                    })
                    .collect::<Result<Vec<bool>>>()?
            }
        };
        if images.len() != 2 * issame.len() {
            return Err(bad(format!(
                "{} images for {} pairs, expected 2 per pair",
                images.len(),
                issame.len()
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            images,
            issame,
            file_size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        })
    }

    /// Number of pairs.
    pub fn pairs(&self) -> usize {
        self.issame.len()
    }

    /// Decodes every image in parallel into a [`VerificationSet`] (labels are 0: a pack holds
    /// no identities).
    pub fn decode(&self) -> Result<VerificationSet> {
        let samples = self
            .images
            .par_iter()
            .enumerate()
            .map(|(i, b)| {
                decode_image(
                    b,
                    0,
                    &self.path,
                    &format!("bins[{i}] (pair {}, image {})", i / 2, i % 2),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(VerificationSet {
            samples,
            issame: self.issame.clone(),
        })
    }
}
