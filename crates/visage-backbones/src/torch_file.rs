//! A reader of `torch.save` state dicts that trusts no size in the file.
//!
//! Two layouts are read:
//! - the zip archive of PyTorch >= 1.6 (`<name>/data.pkl`, one stored, uncompressed entry per
//!   storage under `<name>/data/<key>`, zip64 records accepted; every entry's CRC-32 is
//!   checked, so flipped bytes are an error rather than different weights);
//! - the legacy stream of PyTorch 0.4 - 1.5 (the magic number, protocol and sys-info pickles,
//!   the object pickle, the list of storage keys, then per storage an 8-byte element count and
//!   the raw bytes).
//!
//! The object pickle runs on a small pickle machine (protocols 2 to 5, the opcodes
//! `torch.save` emits) that builds dicts, lists, tuples and the tensors of
//! `torch._utils._rebuild_tensor_v2` / `_rebuild_parameter`; nested dicts are flattened with
//! dotted keys. Every length, count, shape, stride and offset is checked against the bytes
//! actually present before anything is allocated, so that a truncated, bit-flipped or hostile
//! file gives a [`BackboneError`] naming the file and, where there is one, the tensor - never
//! a panic, an allocation abort, zero-filled weights or a hang.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use crate::error::BackboneError;

/// The element types of PyTorch storages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorchDtype {
    /// `FloatStorage`
    F32,
    /// `DoubleStorage`
    F64,
    /// `HalfStorage`
    F16,
    /// `BFloat16Storage`
    BF16,
    /// `LongStorage`
    I64,
    /// `IntStorage`
    I32,
    /// `ShortStorage`
    I16,
    /// `CharStorage`
    I8,
    /// `ByteStorage`
    U8,
    /// `BoolStorage`
    Bool,
}

impl TorchDtype {
    fn from_storage_name(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => TorchDtype::F32,
            "DoubleStorage" => TorchDtype::F64,
            "HalfStorage" => TorchDtype::F16,
            "BFloat16Storage" => TorchDtype::BF16,
            "LongStorage" => TorchDtype::I64,
            "IntStorage" => TorchDtype::I32,
            "ShortStorage" => TorchDtype::I16,
            "CharStorage" => TorchDtype::I8,
            "ByteStorage" => TorchDtype::U8,
            "BoolStorage" => TorchDtype::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            TorchDtype::F64 | TorchDtype::I64 => 8,
            TorchDtype::F32 | TorchDtype::I32 => 4,
            TorchDtype::F16 | TorchDtype::BF16 | TorchDtype::I16 => 2,
            TorchDtype::I8 | TorchDtype::U8 | TorchDtype::Bool => 1,
        }
    }

    /// Whether the type is a floating-point one (converted to f32 on reading).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            TorchDtype::F32 | TorchDtype::F64 | TorchDtype::F16 | TorchDtype::BF16
        )
    }
}

/// One tensor of a state dict: its shape, its dtype and, for float dtypes, its values as f32
/// in C order (integer and bool tensors are checked against their storage but not copied).
#[derive(Debug, Clone)]
pub struct TorchTensor {
    /// Element type of the storage.
    pub dtype: TorchDtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values converted to f32, C order (`None` for integer and bool tensors).
    pub values: Option<Vec<f32>>,
}

/// Nesting deeper than this in the state dict (dicts in dicts) is refused.
const MAX_DEPTH: usize = 32;
/// Dict entries visited while flattening (shared sub-dicts count once per visit).
const MAX_VISITS: usize = 4_000_000;
/// Tensor rank limit.
const MAX_RANK: usize = 32;

fn bad(path: &Path, message: impl Into<String>) -> BackboneError {
    BackboneError::ReadWeights {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn corrupt(path: &Path, key: &str, message: impl Into<String>) -> BackboneError {
    BackboneError::CorruptTensor {
        path: path.to_path_buf(),
        key: key.to_string(),
        message: message.into(),
    }
}

// ------------------------------------------------------------------------------------------
// zip

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The CRC-32 (IEEE, as zip records it) of `data`.
fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// The stored entries of a zip archive: name -> byte range of the data in `bytes`.
fn zip_entries(
    path: &Path,
    bytes: &[u8],
) -> Result<HashMap<String, (usize, usize)>, BackboneError> {
    let zerr = |m: &str| bad(path, format!("PyTorch zip archive: {m}"));
    if bytes.len() < 22 {
        return Err(zerr("too short for an end-of-central-directory record"));
    }
    let lowest = bytes.len().saturating_sub(22 + 65_535);
    let eocd = (lowest..=bytes.len() - 22)
        .rev()
        .find(|&i| u32_at(bytes, i) == Some(0x0605_4b50))
        .ok_or_else(|| zerr("no end-of-central-directory record (truncated file?)"))?;
    let mut count = u16_at(bytes, eocd + 10).unwrap_or(0) as u64;
    let mut cd_size = u32_at(bytes, eocd + 12).unwrap_or(0) as u64;
    let mut cd_offset = u32_at(bytes, eocd + 16).unwrap_or(0) as u64;
    if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        // zip64: the locator sits just before the end record
        let loc = eocd
            .checked_sub(20)
            .filter(|&l| u32_at(bytes, l) == Some(0x0706_4b50))
            .ok_or_else(|| zerr("zip64 sizes without a zip64 locator"))?;
        let rec = u64_at(bytes, loc + 8).ok_or_else(|| zerr("bad zip64 locator"))?;
        let rec = usize::try_from(rec).map_err(|_| zerr("zip64 record offset out of range"))?;
        if u32_at(bytes, rec) != Some(0x0606_4b50) {
            return Err(zerr("zip64 end record not found where the locator points"));
        }
        count = u64_at(bytes, rec + 32).ok_or_else(|| zerr("truncated zip64 record"))?;
        cd_size = u64_at(bytes, rec + 40).ok_or_else(|| zerr("truncated zip64 record"))?;
        cd_offset = u64_at(bytes, rec + 48).ok_or_else(|| zerr("truncated zip64 record"))?;
    }
    let cd_start = usize::try_from(cd_offset).map_err(|_| zerr("central directory offset"))?;
    let cd_len = usize::try_from(cd_size).map_err(|_| zerr("central directory size"))?;
    let cd_end = cd_start
        .checked_add(cd_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| zerr("central directory lies past the end of the file (truncated?)"))?;
    // each central entry is at least 46 bytes
    if count > (cd_len / 46) as u64 {
        return Err(zerr(&format!(
            "{count} entries announced in a {cd_len}-byte central directory"
        )));
    }
    let mut entries = HashMap::new();
    let mut at = cd_start;
    for _ in 0..count {
        let field = |off: usize| at.checked_add(off);
        if u32_at(bytes, at) != Some(0x0201_4b50) || at + 46 > cd_end {
            return Err(zerr("corrupt central directory entry"));
        }
        let method = u16_at(bytes, field(10).unwrap_or(usize::MAX)).unwrap_or(u16::MAX);
        let crc = u32_at(bytes, at + 16).unwrap_or(0);
        let mut csize = u32_at(bytes, at + 20).unwrap_or(0) as u64;
        let mut usize_ = u32_at(bytes, at + 24).unwrap_or(0) as u64;
        let name_len = u16_at(bytes, at + 28).unwrap_or(0) as usize;
        let extra_len = u16_at(bytes, at + 30).unwrap_or(0) as usize;
        let comment_len = u16_at(bytes, at + 32).unwrap_or(0) as usize;
        let mut local = u32_at(bytes, at + 42).unwrap_or(0) as u64;
        let name_end = at + 46 + name_len;
        let extra_end = name_end + extra_len;
        let next = extra_end + comment_len;
        if next > cd_end {
            return Err(zerr("central directory entry runs past the directory"));
        }
        let name = String::from_utf8_lossy(&bytes[at + 46..name_end]).into_owned();
        // zip64 extra field: the 0xFFFFFFFF values, in order
        let mut e = name_end;
        while e + 4 <= extra_end {
            let id = u16_at(bytes, e).unwrap_or(0);
            let len = u16_at(bytes, e + 2).unwrap_or(0) as usize;
            let body = e + 4;
            if body + len > extra_end {
                break;
            }
            if id == 0x0001 {
                let mut p = body;
                let mut take = |v: &mut u64| {
                    if *v == 0xFFFF_FFFF && p + 8 <= body + len {
                        *v = u64_at(bytes, p).unwrap_or(*v);
                        p += 8;
                    }
                };
                take(&mut usize_);
                take(&mut csize);
                take(&mut local);
            }
            e = body + len;
        }
        if method != 0 {
            return Err(zerr(&format!(
                "entry `{name}` is compressed (method {method}); torch.save stores entries \
                 uncompressed"
            )));
        }
        if csize != usize_ {
            return Err(zerr(&format!(
                "entry `{name}`: stored sizes disagree ({csize} vs {usize_})"
            )));
        }
        let local = usize::try_from(local).map_err(|_| zerr("local header offset"))?;
        if u32_at(bytes, local) != Some(0x0403_4b50) {
            return Err(zerr(&format!(
                "entry `{name}`: no local header at offset {local} (truncated or corrupt file)"
            )));
        }
        let lname = u16_at(bytes, local + 26).unwrap_or(0) as usize;
        let lextra = u16_at(bytes, local + 28).unwrap_or(0) as usize;
        let start = local + 30 + lname + lextra;
        let size = usize::try_from(csize).map_err(|_| zerr("entry size"))?;
        let end = start
            .checked_add(size)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| {
                zerr(&format!(
                    "entry `{name}` needs {size} bytes from offset {start}, the file has {} \
                     (truncated?)",
                    bytes.len()
                ))
            })?;
        let actual = crc32(&bytes[start..end]);
        if actual != crc {
            return Err(zerr(&format!(
                "entry `{name}`: CRC-32 {actual:08x} differs from the recorded {crc:08x} \
                 (corrupt file)"
            )));
        }
        entries.insert(name, (start, end));
        at = next;
    }
    Ok(entries)
}

// ------------------------------------------------------------------------------------------
// pickle

#[derive(Debug)]
struct StorageRef {
    dtype: TorchDtype,
    key: String,
    numel: u64,
}

#[derive(Debug)]
struct TensorRef {
    storage: Rc<StorageRef>,
    offset: u64,
    size: Vec<u64>,
    stride: Vec<u64>,
}

#[derive(Debug, Clone)]
enum Value {
    None,
    Bool,
    Int(i64),
    Float,
    Str(Rc<str>),
    Bytes,
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Global(Rc<(String, String)>),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
    Other,
}

impl Drop for Value {
    /// Dismantles nested containers with a work list instead of recursion: a hostile pickle
    /// can nest lists a million deep in a few megabytes, which a recursive drop would turn
    /// into a stack overflow.
    fn drop(&mut self) {
        let mut work: Vec<Value> = Vec::new();
        take_children(self, &mut work);
        while let Some(mut v) = work.pop() {
            take_children(&mut v, &mut work);
        }
    }
}

/// Moves the children of `v` into `work` when `v` is the last owner of its container.
fn take_children(v: &mut Value, work: &mut Vec<Value>) {
    match v {
        Value::List(l) if Rc::strong_count(l) == 1 => {
            if let Ok(mut items) = l.try_borrow_mut() {
                work.append(&mut items);
            }
        }
        Value::Tuple(t) => {
            if let Some(items) = Rc::get_mut(t) {
                work.append(items);
            }
        }
        Value::Dict(d) if Rc::strong_count(d) == 1 => {
            if let Ok(mut items) = d.try_borrow_mut() {
                for (k, v) in items.drain(..) {
                    work.push(k);
                    work.push(v);
                }
            }
        }
        _ => {}
    }
}

struct Machine<'a> {
    path: &'a Path,
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    storages: Vec<Rc<StorageRef>>,
}

impl<'a> Machine<'a> {
    fn new(path: &'a Path, data: &'a [u8], pos: usize) -> Self {
        Machine {
            path,
            data,
            pos,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            storages: Vec::new(),
        }
    }

    fn err(&self, m: impl std::fmt::Display) -> BackboneError {
        bad(self.path, format!("pickle at byte {}: {m}", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BackboneError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                self.err(format!(
                    "needs {n} more bytes, {} are left (truncated?)",
                    self.data.len() - self.pos
                ))
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, BackboneError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, BackboneError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, BackboneError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, BackboneError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn len_u64(&mut self, n: u64) -> Result<usize, BackboneError> {
        usize::try_from(n).map_err(|_| self.err(format!("length {n} is out of range")))
    }
    fn line(&mut self) -> Result<String, BackboneError> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .take(4096)
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err("unterminated line"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }
    fn pop(&mut self) -> Result<Value, BackboneError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(self.err("pop across a mark"));
        }
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }
    fn top(&mut self) -> Result<&mut Value, BackboneError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(self.err("no object above the mark"));
        }
        let pos = self.pos;
        self.stack
            .last_mut()
            .ok_or_else(|| bad(self.path, format!("pickle at byte {pos}: stack underflow")))
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>, BackboneError> {
        let m = self.marks.pop().ok_or_else(|| self.err("no mark"))?;
        if m > self.stack.len() {
            return Err(self.err("mark above the stack"));
        }
        Ok(self.stack.split_off(m))
    }
    fn string(&mut self, n: usize) -> Result<Value, BackboneError> {
        let b = self.take(n)?;
        Ok(Value::Str(Rc::from(String::from_utf8_lossy(b).as_ref())))
    }
    fn int_from_le(&self, b: &[u8]) -> Result<Value, BackboneError> {
        if b.is_empty() {
            return Ok(Value::Int(0));
        }
        if b.len() > 8 {
            // a long beyond i64: torch never writes one in a state dict
            return Ok(Value::Other);
        }
        let neg = b[b.len() - 1] & 0x80 != 0;
        let mut buf = [if neg { 0xFF } else { 0 }; 8];
        buf[..b.len()].copy_from_slice(b);
        Ok(Value::Int(i64::from_le_bytes(buf)))
    }

    fn setitems(&mut self, target: &Value, items: Vec<Value>) -> Result<(), BackboneError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.err("odd number of dict items"));
        }
        match target {
            Value::Dict(d) => {
                let mut d = d.borrow_mut();
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                Ok(())
            }
            Value::Other => Ok(()),
            _ => Err(self.err("SETITEM(S) on something that is not a dict")),
        }
    }

    fn append(&mut self, target: &Value, items: Vec<Value>) -> Result<(), BackboneError> {
        match target {
            Value::List(l) => {
                l.borrow_mut().extend(items);
                Ok(())
            }
            Value::Other => Ok(()),
            _ => Err(self.err("APPEND(S) on something that is not a list")),
        }
    }

    fn persistent_load(&mut self, pid: Value) -> Result<Value, BackboneError> {
        let Value::Tuple(t) = &pid else {
            return Err(self.err("persistent id is not a tuple"));
        };
        match (t.first(), t.get(1), t.get(2), t.get(4)) {
            (Some(Value::Str(tag)), Some(kind), Some(Value::Str(key)), Some(Value::Int(numel)))
                if &**tag == "storage" =>
            {
                let name = match kind {
                    Value::Global(g) => g.1.clone(),
                    Value::Str(s) => s.to_string(),
                    _ => return Err(self.err("storage type is neither a class nor a name")),
                };
                let dtype = TorchDtype::from_storage_name(&name)
                    .ok_or_else(|| self.err(format!("unsupported storage type `{name}`")))?;
                let numel = u64::try_from(*numel)
                    .map_err(|_| self.err(format!("storage `{key}` has {numel} elements")))?;
                let s = Rc::new(StorageRef {
                    dtype,
                    key: key.to_string(),
                    numel,
                });
                self.storages.push(s.clone());
                Ok(Value::Storage(s))
            }
            _ => Err(self.err("persistent id is not ('storage', type, key, location, numel)")),
        }
    }

    fn ints(v: &Value) -> Option<Vec<u64>> {
        match v {
            Value::Tuple(t) => t
                .iter()
                .map(|x| match x {
                    Value::Int(i) => u64::try_from(*i).ok(),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    fn call(&mut self, callable: Value, args: Value) -> Result<Value, BackboneError> {
        let Value::Global(g) = &callable else {
            return Ok(Value::Other);
        };
        let empty = Vec::new();
        let args: &Vec<Value> = match &args {
            Value::Tuple(t) => t.as_ref(),
            _ => &empty,
        };
        Ok(match (g.0.as_str(), g.1.as_str()) {
            ("collections", "OrderedDict") | ("builtins", "dict") | ("__builtin__", "dict") => {
                Value::Dict(Rc::new(RefCell::new(Vec::new())))
            }
            ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
                let storage = match args.first() {
                    Some(Value::Storage(s)) => s.clone(),
                    _ => return Err(self.err("_rebuild_tensor without a storage")),
                };
                let offset = match args.get(1) {
                    Some(Value::Int(o)) if *o >= 0 => *o as u64,
                    _ => return Err(self.err("_rebuild_tensor: bad storage offset")),
                };
                let size = args.get(2).and_then(Self::ints);
                let stride = args.get(3).and_then(Self::ints);
                match (size, stride) {
                    (Some(size), Some(stride)) => Value::Tensor(Rc::new(TensorRef {
                        storage,
                        offset,
                        size,
                        stride,
                    })),
                    _ => return Err(self.err("_rebuild_tensor: size/stride are not int tuples")),
                }
            }
            ("torch._utils", "_rebuild_parameter")
            | ("torch._utils", "_rebuild_parameter_with_state")
            | ("torch.nn.parameter", "Parameter") => match args.first() {
                Some(Value::Tensor(t)) => Value::Tensor(t.clone()),
                _ => Value::Other,
            },
            _ => Value::Other,
        })
    }

    /// Runs one pickle from the current position to its STOP; returns the object.
    fn run(&mut self) -> Result<Value, BackboneError> {
        self.stack.clear();
        self.marks.clear();
        self.memo.clear();
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?;
                }
                0x95 => {
                    self.u64()?;
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'}' => self
                    .stack
                    .push(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
                b']' => self
                    .stack
                    .push(Value::List(Rc::new(RefCell::new(Vec::new())))),
                b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()))),
                0x8f => self
                    .stack
                    .push(Value::List(Rc::new(RefCell::new(Vec::new())))),
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool),
                0x89 => self.stack.push(Value::Bool),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(v as i64))
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v as i64))
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(v as i64))
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    let v = self.int_from_le(b)?;
                    self.stack.push(v)
                }
                0x8b => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    let v = self.int_from_le(b)?;
                    self.stack.push(v)
                }
                b'G' => {
                    self.take(8)?;
                    self.stack.push(Value::Float)
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v)
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v)
                }
                0x8d => {
                    let n = self.u64()?;
                    let n = self.len_u64(n)?;
                    let v = self.string(n)?;
                    self.stack.push(v)
                }
                b'T' => {
                    let n = self.u32()? as i32;
                    let n = usize::try_from(n).map_err(|_| self.err("negative string length"))?;
                    let v = self.string(n)?;
                    self.stack.push(v)
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v)
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    self.take(n)?;
                    self.stack.push(Value::Bytes)
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    self.take(n)?;
                    self.stack.push(Value::Bytes)
                }
                0x8e => {
                    let n = self.u64()?;
                    let n = self.len_u64(n)?;
                    self.take(n)?;
                    self.stack.push(Value::Bytes)
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::new(items)))
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return Err(self.err("TUPLEn with too few items"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(Rc::new(items)))
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))))
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))))
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let d = Value::Dict(Rc::new(RefCell::new(Vec::new())));
                    self.setitems(&d, items)?;
                    self.stack.push(d)
                }
                b'a' => {
                    let v = self.pop()?;
                    let target = self.top()?.clone();
                    self.append(&target, vec![v])?
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    let target = self.top()?.clone();
                    self.append(&target, items)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let target = self.top()?.clone();
                    self.setitems(&target, vec![k, v])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let target = self.top()?.clone();
                    self.setitems(&target, items)?
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'r' => {
                    let i = self.u32()?;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    let v = self
                        .memo
                        .get(&i)
                        .cloned()
                        .ok_or_else(|| self.err("bad memo"))?;
                    self.stack.push(v)
                }
                b'j' => {
                    let i = self.u32()?;
                    let v = self
                        .memo
                        .get(&i)
                        .cloned()
                        .ok_or_else(|| self.err("bad memo"))?;
                    self.stack.push(v)
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(Rc::new((module, name))))
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (&module, &name) {
                        (Value::Str(m), Value::Str(n)) => self
                            .stack
                            .push(Value::Global(Rc::new((m.to_string(), n.to_string())))),
                        _ => return Err(self.err("STACK_GLOBAL without two strings")),
                    }
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.call(callable, args)?;
                    self.stack.push(v)
                }
                b'b' => {
                    self.pop()?; // the state: ignored (OrderedDict `_metadata`)
                    self.top()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent_load(pid)?;
                    self.stack.push(v)
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v)
                }
                other => {
                    return Err(self.err(format!("unsupported pickle opcode 0x{other:02x}")));
                }
            }
        }
    }
}

/// Flattens nested dicts into `(dotted key, tensor)` pairs, in file order.
fn collect_tensors(
    path: &Path,
    value: &Value,
    prefix: &str,
    depth: usize,
    visits: &mut usize,
    out: &mut Vec<(String, Rc<TensorRef>)>,
    index: &mut HashMap<String, usize>,
) -> Result<(), BackboneError> {
    if depth > MAX_DEPTH {
        return Err(bad(
            path,
            format!("state dict nested deeper than {MAX_DEPTH}"),
        ));
    }
    let Value::Dict(d) = value else {
        return Ok(());
    };
    let entries = d.borrow();
    for (k, v) in entries.iter() {
        *visits += 1;
        if *visits > MAX_VISITS {
            return Err(bad(path, "state dict has too many (shared) entries"));
        }
        let key = match k {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            _ => continue,
        };
        let full = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match v {
            Value::Tensor(t) => {
                if let Some(&slot) = index.get(&full) {
                    out[slot].1 = t.clone(); // a repeated key: the last one wins, as in Python
                } else {
                    index.insert(full.clone(), out.len());
                    out.push((full, t.clone()));
                }
            }
            Value::Dict(_) => collect_tensors(path, v, &full, depth + 1, visits, out, index)?,
            _ => {}
        }
    }
    Ok(())
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // subnormal: value f * 2^-24
            let v = f as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, f) => sign | 0x7fc0_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Checks a tensor against its storage bytes and converts it (float dtypes) to f32 values.
fn materialise(
    path: &Path,
    key: &str,
    t: &TensorRef,
    storage: &[u8],
    storage_name: &str,
) -> Result<TorchTensor, BackboneError> {
    let dtype = t.storage.dtype;
    let es = dtype.size() as u64;
    if t.size.len() != t.stride.len() || t.size.len() > MAX_RANK {
        return Err(corrupt(
            path,
            key,
            format!(
                "size {:?} and stride {:?} do not describe a tensor of rank <= {MAX_RANK}",
                t.size, t.stride
            ),
        ));
    }
    let declared = t
        .storage
        .numel
        .checked_mul(es)
        .ok_or_else(|| corrupt(path, key, "storage element count overflows"))?;
    if (storage.len() as u64) < declared {
        return Err(corrupt(
            path,
            key,
            format!(
                "storage `{storage_name}` holds {} bytes but declares {} {:?} elements \
                 ({declared} bytes): the file is truncated or corrupt",
                storage.len(),
                t.storage.numel,
                dtype
            ),
        ));
    }
    let numel = t
        .size
        .iter()
        .try_fold(1u64, |a, &s| a.checked_mul(s))
        .ok_or_else(|| corrupt(path, key, format!("shape {:?} overflows", t.size)))?;
    let shape: Vec<usize> = t.size.iter().map(|&s| s as usize).collect();
    if numel > 0 {
        let mut last = t.offset;
        for (&s, &st) in t.size.iter().zip(&t.stride) {
            last = (s - 1)
                .checked_mul(st)
                .and_then(|x| last.checked_add(x))
                .ok_or_else(|| corrupt(path, key, "strides overflow"))?;
        }
        if last >= t.storage.numel || numel > t.storage.numel {
            return Err(corrupt(
                path,
                key,
                format!(
                    "shape {:?} (stride {:?}, offset {}) needs elements up to {} of storage \
                     `{storage_name}`, which holds {}",
                    t.size, t.stride, t.offset, last, t.storage.numel
                ),
            ));
        }
    }
    if !dtype.is_float() {
        return Ok(TorchTensor {
            dtype,
            shape,
            values: None,
        });
    }
    let n = numel as usize;
    let read = |i: u64| -> f32 {
        let at = (i * es) as usize;
        let b = &storage[at..at + es as usize];
        match dtype {
            TorchDtype::F32 => f32::from_le_bytes(b.try_into().expect("4 bytes")),
            TorchDtype::F64 => f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            TorchDtype::F16 => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            _ => f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
        }
    };
    let mut values = Vec::with_capacity(n);
    let rank = t.size.len();
    let mut index = vec![0u64; rank];
    for _ in 0..n {
        let mut at = t.offset;
        for (i, st) in index.iter().zip(&t.stride) {
            at += i * st;
        }
        values.push(read(at));
        for d in (0..rank).rev() {
            index[d] += 1;
            if index[d] < t.size[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(TorchTensor {
        dtype,
        shape,
        values: Some(values),
    })
}

/// The elements all tensors may materialise together: twice the file's bytes plus 1 Mi.
/// Each tensor's storage is bounded by the file, but many tensors can view one storage (a
/// few bytes of pickle each), which would otherwise multiply the memory without bound; real
/// state dicts materialise each element once (tied weights twice).
struct ElementBudget {
    used: u64,
    limit: u64,
    file_len: usize,
}

impl ElementBudget {
    fn new(file_len: usize) -> Self {
        ElementBudget {
            used: 0,
            limit: 2 * file_len as u64 + (1 << 20),
            file_len,
        }
    }

    fn take(&mut self, path: &Path, key: &str, t: &TensorRef) -> Result<(), BackboneError> {
        let n = t
            .size
            .iter()
            .try_fold(1u64, |a, &s| a.checked_mul(s))
            .unwrap_or(u64::MAX);
        self.used = self.used.saturating_add(n);
        if self.used > self.limit {
            return Err(corrupt(
                path,
                key,
                format!(
                    "the tensors up to this one hold {} elements, more than twice the file's \
                     {} bytes (many views of one storage?)",
                    self.used, self.file_len
                ),
            ));
        }
        Ok(())
    }
}

/// PROTO 2, LONG1 of 10 bytes: 0x1950a86a20f9469cfc6c, the legacy format's magic number.
const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

/// Parses the bytes of a `torch.save` file (zip or legacy); `path` names it in errors.
/// Returns the tensors in file order, nested dict keys joined with dots.
pub fn parse_torch_file(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<(String, TorchTensor)>, BackboneError> {
    if bytes.starts_with(b"PK") {
        let entries = zip_entries(path, bytes)?;
        let (pkl_name, &(s, e)) = entries
            .iter()
            .filter(|(n, _)| n.ends_with("data.pkl"))
            .min_by_key(|(n, _)| n.len())
            .ok_or_else(|| bad(path, "PyTorch zip archive without a data.pkl"))?;
        let prefix = pkl_name[..pkl_name.len() - "data.pkl".len()].to_string();
        let mut m = Machine::new(path, &bytes[..e], s);
        let root = m.run()?;
        let mut found = Vec::new();
        collect_tensors(path, &root, "", 0, &mut 0, &mut found, &mut HashMap::new())?;
        let mut out = Vec::with_capacity(found.len());
        let mut budget = ElementBudget::new(bytes.len());
        for (key, t) in found {
            budget.take(path, &key, &t)?;
            let name = format!("{prefix}data/{}", t.storage.key);
            let &(s, e) = entries.get(&name).ok_or_else(|| {
                corrupt(
                    path,
                    &key,
                    format!("its storage `{name}` is missing from the archive"),
                )
            })?;
            out.push((
                key.clone(),
                materialise(path, &key, &t, &bytes[s..e], &name)?,
            ));
        }
        return Ok(out);
    }
    // legacy: magic, protocol, sys_info, object, storage keys, storages
    let mut m = Machine::new(path, bytes, 0);
    if !bytes.starts_with(LEGACY_MAGIC) {
        return Err(bad(
            path,
            "not a PyTorch file (neither a zip archive nor the legacy torch.save stream)",
        ));
    }
    m.run()?; // the magic number
    m.run()?; // protocol version
    m.run()?; // sys info
    let root = m.run()?;
    let keys = m.run()?;
    let storages: HashMap<String, Rc<StorageRef>> = m
        .storages
        .iter()
        .map(|s| (s.key.clone(), s.clone()))
        .collect();
    let Value::List(keys) = &keys else {
        return Err(bad(path, "legacy torch.save: no list of storage keys"));
    };
    let mut blobs: HashMap<String, &[u8]> = HashMap::new();
    let mut pos = m.pos;
    for k in keys.borrow().iter() {
        let Value::Str(k) = k else {
            return Err(bad(
                path,
                "legacy torch.save: a storage key is not a string",
            ));
        };
        let s = storages
            .get(&**k)
            .ok_or_else(|| bad(path, format!("legacy torch.save: unknown storage `{k}`")))?;
        let count = u64_at(bytes, pos).ok_or_else(|| {
            bad(
                path,
                format!("legacy torch.save: storage `{k}` is cut off (truncated?)"),
            )
        })?;
        let len = count
            .checked_mul(s.dtype.size() as u64)
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(|| {
                bad(
                    path,
                    format!("legacy torch.save: storage `{k}` size overflows"),
                )
            })?;
        let start = pos + 8;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| {
                bad(
                    path,
                    format!(
                    "legacy torch.save: storage `{k}` needs {len} bytes, {} are left (truncated?)",
                    bytes.len().saturating_sub(start)
                ),
                )
            })?;
        blobs.insert(k.to_string(), &bytes[start..end]);
        pos = end;
    }
    let mut found = Vec::new();
    collect_tensors(path, &root, "", 0, &mut 0, &mut found, &mut HashMap::new())?;
    let mut out = Vec::with_capacity(found.len());
    let mut budget = ElementBudget::new(bytes.len());
    for (key, t) in found {
        budget.take(path, &key, &t)?;
        let blob = blobs.get(&t.storage.key).ok_or_else(|| {
            corrupt(
                path,
                &key,
                format!("its storage `{}` is not in the file", t.storage.key),
            )
        })?;
        let name = format!("storage {}", t.storage.key);
        out.push((key.clone(), materialise(path, &key, &t, blob, &name)?));
    }
    Ok(out)
}
