//! NumPy `.npy` reader and writer (format versions 1.0, 2.0 and 3.0).
//!
//! Layout (numpy `lib.format`): the magic `\x93NUMPY`, a major and a minor version byte, the
//! header length (u16 little-endian in 1.0, u32 in 2.0/3.0), then an ASCII Python dict literal
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded with spaces and a final
//! `\n`, then the raw data. Only C-order arrays are accepted; Fortran order is refused with an
//! error rather than silently transposed.

use std::path::Path;

use crate::IoError;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The element types read (little-endian or byte-sized), from `.npy` or `.safetensors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// `<f4`
    F32,
    /// `<f8`
    F64,
    /// `|b1`
    Bool,
    /// `|u1`
    U8,
    /// `|i1`
    I8,
    /// `<i2`
    I16,
    /// `<u2`
    U16,
    /// `<i4`
    I32,
    /// `<u4`
    U32,
    /// `<i8`
    I64,
    /// `<u8`
    U64,
}

impl ElementType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElementType::Bool | ElementType::U8 | ElementType::I8 => 1,
            ElementType::I16 | ElementType::U16 => 2,
            ElementType::F32 | ElementType::I32 | ElementType::U32 => 4,
            ElementType::F64 | ElementType::I64 | ElementType::U64 => 8,
        }
    }

    fn parse(descr: &str) -> Result<Self, String> {
        // split after the first character (not byte: the header may hold any UTF-8)
        let cut = descr.chars().next().map_or(0, char::len_utf8);
        let (order, kind) = descr.split_at(cut);
        let dtype = match kind {
            "f4" => ElementType::F32,
            "f8" => ElementType::F64,
            "b1" => ElementType::Bool,
            "u1" => ElementType::U8,
            "i1" => ElementType::I8,
            "i2" => ElementType::I16,
            "u2" => ElementType::U16,
            "i4" => ElementType::I32,
            "u4" => ElementType::U32,
            "i8" => ElementType::I64,
            "u8" => ElementType::U64,
            _ => return Err(format!("unsupported dtype '{descr}'")),
        };
        match order {
            "<" => Ok(dtype),
            "|" | "=" if dtype.size() == 1 => Ok(dtype),
            ">" if dtype.size() == 1 => Ok(dtype),
            _ => Err(format!(
                "unsupported byte order in dtype '{descr}' (expected little-endian '<')"
            )),
        }
    }
}

/// A parsed array (from `.npy` or `.safetensors`): element type, shape and raw little-endian bytes.
#[derive(Debug, Clone)]
pub struct RawArray {
    /// Element type.
    pub dtype: ElementType,
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// `product(shape) * dtype.size()` bytes, C order.
    pub data: Vec<u8>,
}

/// Parses `.npy` bytes; `path` only names the file in errors.
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<RawArray, IoError> {
    let header = parse_npy_header(path, bytes, bytes.len())?;
    Ok(RawArray {
        dtype: header.dtype,
        shape: header.shape,
        data: bytes[header.data_start..].to_vec(),
    })
}

/// What a `.npy` header says: element type, shape and where the data starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: ElementType,
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Byte offset of the data; the file is exactly `data_start + count * dtype.size()` bytes.
    pub data_start: usize,
}

/// Parses the header of a `.npy` file of `file_len` bytes whose first bytes are `prefix`
/// (the whole header when the file holds it: `prefix` may stop anywhere after it). Checks
/// that the data size matches the shape exactly, with the errors of [`parse_npy`].
pub fn parse_npy_header(path: &Path, prefix: &[u8], file_len: usize) -> Result<NpyHeader, IoError> {
    let err = |reason: String| IoError::Npy {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = prefix;
    if file_len < 10 || bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(err("missing the \\x93NUMPY magic".into()));
    }
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if file_len < 12 || bytes.len() < 12 {
                return Err(err("truncated header".into()));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(err(format!("unsupported format version {v}.{}", bytes[7]))),
    };
    let data_start = header_start + header_len;
    if file_len < data_start || bytes.len() < data_start {
        return Err(err(format!(
            "header announces {header_len} bytes but the file has only {}",
            file_len - header_start
        )));
    }
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| err("header is not UTF-8 text".into()))?;
    let dict = HeaderParser::new(header)
        .parse_dict()
        .map_err(|e| err(format!("cannot parse header {header:?}: {e}")))?;
    let descr = dict
        .descr
        .ok_or_else(|| err("header has no 'descr'".into()))?;
    let dtype = ElementType::parse(&descr).map_err(err)?;
    let fortran = dict
        .fortran_order
        .ok_or_else(|| err("header has no 'fortran_order'".into()))?;
    let shape = dict
        .shape
        .ok_or_else(|| err("header has no 'shape'".into()))?;
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &s| acc.checked_mul(s))
        .ok_or_else(|| err(format!("shape {shape:?} overflows")))?;
    if fortran && shape.iter().filter(|&&s| s > 1).count() > 1 {
        return Err(err(
            "fortran_order is True: only C-order arrays are supported (save with np.ascontiguousarray)"
                .into(),
        ));
    }
    let nbytes = count
        .checked_mul(dtype.size())
        .ok_or_else(|| err(format!("shape {shape:?} overflows")))?;
    let available = file_len - data_start;
    if available < nbytes {
        return Err(err(format!(
            "shape {shape:?} of '{descr}' needs {nbytes} data bytes, file has {available} (truncated)"
        )));
    }
    if available > nbytes {
        return Err(err(format!(
            "shape {shape:?} of '{descr}' needs {nbytes} data bytes, file has {available} (trailing bytes)"
        )));
    }
    Ok(NpyHeader {
        dtype,
        shape,
        data_start,
    })
}

/// Reads and parses a `.npy` file.
pub fn read_npy(path: &Path) -> Result<RawArray, IoError> {
    let bytes = crate::read_regular_file(path)?;
    parse_npy(path, &bytes)
}

/// Encodes a C-order `.npy` (version 1.0) with the given `descr` (e.g. `<f4`), shape and data.
/// The header is padded so the data starts at a multiple of 64 bytes, as numpy does.
pub fn encode_npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    header.push_str(&" ".repeat(pad));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[derive(Default)]
struct HeaderDict {
    descr: Option<String>,
    fortran_order: Option<bool>,
    shape: Option<Vec<usize>>,
}

/// A recursive-descent parser for the small Python dict literal of a `.npy` header.
struct HeaderParser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> HeaderParser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            pos: 0,
        }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.text.len() && self.text[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.text.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.peek() {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            other => Err(format!(
                "expected '{}' at byte {}, found {:?}",
                c as char,
                self.pos,
                other.map(|b| b as char)
            )),
        }
    }

    fn parse_string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("expected a string at byte {}", self.pos)),
        };
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.text.len() && self.text[self.pos] != quote {
            self.pos += 1;
        }
        if self.pos >= self.text.len() {
            return Err("unterminated string".into());
        }
        let s = String::from_utf8_lossy(&self.text[start..self.pos]).into_owned();
        self.pos += 1;
        Ok(s)
    }

    fn parse_word(&mut self) -> String {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.text.len() && self.text[self.pos].is_ascii_alphanumeric() {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.text[start..self.pos]).into_owned()
    }

    fn parse_bool(&mut self) -> Result<bool, String> {
        match self.parse_word().as_str() {
            "True" => Ok(true),
            "False" => Ok(false),
            w => Err(format!("expected True or False, found {w:?}")),
        }
    }

    fn parse_shape(&mut self) -> Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            if self.peek() == Some(b')') {
                self.pos += 1;
                return Ok(dims);
            }
            let word = self.parse_word();
            // Python 2 era files may write long integers as `3L`.
            let digits = word.trim_end_matches('L');
            let dim = digits
                .parse::<usize>()
                .map_err(|_| format!("expected a non-negative integer in shape, found {word:?}"))?;
            dims.push(dim);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {}
                other => {
                    return Err(format!(
                        "expected ',' or ')' in shape, found {:?}",
                        other.map(|b| b as char)
                    ))
                }
            }
        }
    }

    fn parse_dict(&mut self) -> Result<HeaderDict, String> {
        let mut dict = HeaderDict::default();
        self.expect(b'{')?;
        loop {
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(dict);
            }
            let key = self.parse_string()?;
            self.expect(b':')?;
            match key.as_str() {
                "descr" => dict.descr = Some(self.parse_string()?),
                "fortran_order" => dict.fortran_order = Some(self.parse_bool()?),
                "shape" => dict.shape = Some(self.parse_shape()?),
                other => return Err(format!("unexpected key {other:?}")),
            }
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                other => {
                    return Err(format!(
                        "expected ',' or '}}', found {:?}",
                        other.map(|b| b as char)
                    ))
                }
            }
        }
    }
}
