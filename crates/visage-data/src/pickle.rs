//! A minimal Python pickle reader: just the opcodes that `.bin` verification packs use
//! (protocol 2 as written by Python 2, plus what Python 3 writes for bytes and numpy arrays at
//! protocols 2 to 4). It builds plain [`Value`]s and never executes anything: a `GLOBAL` is
//! kept as a name, `REDUCE` and `BUILD` record their arguments (except `_codecs.encode`, which
//! Python 3 uses to pickle bytes at protocol 2, and is evaluated for latin-1).

use std::path::Path;

use crate::error::{DataError, Result};

/// A value reconstructed from a pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// `bytes` (Python 2 `str`).
    Bytes(Vec<u8>),
    /// A unicode string.
    Str(String),
    /// A list.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A dict, as key/value pairs in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A global reference `module.name` (not resolved).
    Global(String, String),
    /// `callable(*args)` with an optional `BUILD` state, not evaluated.
    Object {
        /// The callable (usually a `Global`).
        callable: Box<Value>,
        /// The argument tuple.
        args: Box<Value>,
        /// The state given by `BUILD`, if any.
        state: Option<Box<Value>>,
    },
}

impl Value {
    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Bytes(b) => format!("bytes[{}]", b.len()),
            Value::Str(_) => "str".into(),
            Value::List(l) => format!("list[{}]", l.len()),
            Value::Tuple(t) => format!("tuple[{}]", t.len()),
            Value::Dict(d) => format!("dict[{}]", d.len()),
            Value::Global(m, n) => format!("global {m}.{n}"),
            Value::Object { callable, .. } => format!("object from {}", callable.kind()),
        }
    }
}

enum Item {
    Mark,
    Val(Value),
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    path: &'a Path,
    stack: Vec<Item>,
    memo: std::collections::HashMap<u64, Value>,
}

impl Machine<'_> {
    fn err(&self, at: usize, what: impl std::fmt::Display) -> DataError {
        DataError::format(self.path, format!("pickle offset {at}: {what}"))
    }

    fn take(&mut self, n: usize, at: usize, op: &str) -> Result<&[u8]> {
        if self.data.len() - self.pos < n {
            return Err(self.err(
                at,
                format!(
                    "truncated: {op} needs {n} bytes, {} remain",
                    self.data.len() - self.pos
                ),
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, at: usize, op: &str) -> Result<u8> {
        Ok(self.take(1, at, op)?[0])
    }

    fn u32(&mut self, at: usize, op: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4, at, op)?.try_into().unwrap(),
        ))
    }

    fn u64(&mut self, at: usize, op: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8, at, op)?.try_into().unwrap(),
        ))
    }

    fn line(&mut self, at: usize, op: &str) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err(at, format!("truncated: {op} argument has no newline")))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn push(&mut self, v: Value) {
        self.stack.push(Item::Val(v));
    }

    fn pop(&mut self, at: usize, op: &str) -> Result<Value> {
        match self.stack.pop() {
            Some(Item::Val(v)) => Ok(v),
            Some(Item::Mark) => {
                Err(self.err(at, format!("{op} found a MARK where it expected a value")))
            }
            None => Err(self.err(at, format!("{op} on an empty stack"))),
        }
    }

    fn pop_to_mark(&mut self, at: usize, op: &str) -> Result<Vec<Value>> {
        let m = self
            .stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or_else(|| self.err(at, format!("{op} without a MARK")))?;
        let items = self.stack.split_off(m + 1);
        self.stack.pop();
        Ok(items
            .into_iter()
            .map(|i| {
                if let Item::Val(v) = i {
                    v
                } else {
                    unreachable!("marks above the last one")
                }
            })
            .collect())
    }

    fn top_mut(&mut self, at: usize, op: &str) -> Result<&mut Value> {
        match self.stack.last_mut() {
            Some(Item::Val(v)) => Ok(v),
            _ => Err(DataError::format(
                self.path,
                format!("pickle offset {at}: {op} needs a value on the stack"),
            )),
        }
    }

    fn memo_put(&mut self, key: u64, at: usize, op: &str) -> Result<()> {
        let v = match self.stack.last() {
            Some(Item::Val(v)) => v.clone(),
            _ => return Err(self.err(at, format!("{op} needs a value on the stack"))),
        };
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u64, at: usize, op: &str) -> Result<()> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| self.err(at, format!("{op} of memo key {key}, never stored")))?;
        self.push(v);
        Ok(())
    }

    fn extend_list(&mut self, items: Vec<Value>, at: usize, op: &str) -> Result<()> {
        match self.top_mut(at, op)? {
            Value::List(l) => {
                l.extend(items);
                Ok(())
            }
            other => {
                let k = other.kind();
                Err(self.err(at, format!("{op} onto a {k}, expected a list")))
            }
        }
    }

    fn run(mut self) -> Result<Value> {
        loop {
            let at = self.pos;
            let op = self.u8(at, "opcode")?;
            match op {
                0x80 => {
                    let v = self.u8(at, "PROTO")?;
                    if v > 5 {
                        return Err(
                            self.err(at, format!("pickle protocol {v} is not supported (0 to 5)"))
                        );
                    }
                }
                0x95 => {
                    self.u64(at, "FRAME")?;
                }
                b'.' => {
                    let v = self.pop(at, "STOP")?;
                    return Ok(v);
                }
                b'(' => self.stack.push(Item::Mark),
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'I' => {
                    let s = self.line(at, "INT")?;
                    let v = match s.as_str() {
                        "01" => Value::Bool(true),
                        "00" => Value::Bool(false),
                        t => Value::Int(t.trim().parse().map_err(|_| {
                            self.err(at, format!("INT argument {t:?} is not an integer"))
                        })?),
                    };
                    self.push(v);
                }
                b'J' => {
                    let v = self.u32(at, "BININT")? as i32;
                    self.push(Value::Int(v as i64));
                }
                b'K' => {
                    let v = self.u8(at, "BININT1")?;
                    self.push(Value::Int(v as i64));
                }
                b'M' => {
                    let b = self.take(2, at, "BININT2")?;
                    let v = u16::from_le_bytes([b[0], b[1]]);
                    self.push(Value::Int(v as i64));
                }
                0x8a => {
                    let n = self.u8(at, "LONG1")? as usize;
                    if n > 8 {
                        return Err(
                            self.err(at, format!("LONG1 of {n} bytes does not fit 64 bits"))
                        );
                    }
                    let b = self.take(n, at, "LONG1")?.to_vec();
                    let mut v: i64 = 0;
                    for (i, &x) in b.iter().enumerate() {
                        v |= (x as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(Value::Int(v));
                }
                b'G' => {
                    let b: [u8; 8] = self.take(8, at, "BINFLOAT")?.try_into().unwrap();
                    self.push(Value::Float(f64::from_be_bytes(b)));
                }
                b'T' | b'B' => {
                    let name = if op == b'T' { "BINSTRING" } else { "BINBYTES" };
                    let n = self.u32(at, name)? as usize;
                    let b = self.take(n, at, name)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                b'U' | b'C' => {
                    let name = if op == b'U' {
                        "SHORT_BINSTRING"
                    } else {
                        "SHORT_BINBYTES"
                    };
                    let n = self.u8(at, name)? as usize;
                    let b = self.take(n, at, name)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                0x8e => {
                    let n = self.u64(at, "BINBYTES8")?;
                    let n = usize::try_from(n)
                        .map_err(|_| self.err(at, "BINBYTES8 length overflows"))?;
                    let b = self.take(n, at, "BINBYTES8")?.to_vec();
                    self.push(Value::Bytes(b));
                }
                b'X' | 0x8c => {
                    let name = if op == b'X' {
                        "BINUNICODE"
                    } else {
                        "SHORT_BINUNICODE"
                    };
                    let n = if op == b'X' {
                        self.u32(at, name)? as usize
                    } else {
                        self.u8(at, name)? as usize
                    };
                    let b = self.take(n, at, name)?.to_vec();
                    let s = String::from_utf8(b)
                        .map_err(|_| self.err(at, format!("{name} is not UTF-8")))?;
                    self.push(Value::Str(s));
                }
                b']' => self.push(Value::List(Vec::new())),
                b')' => self.push(Value::Tuple(Vec::new())),
                b'}' => self.push(Value::Dict(Vec::new())),
                b'a' => {
                    let v = self.pop(at, "APPEND")?;
                    self.extend_list(vec![v], at, "APPEND")?;
                }
                b'e' => {
                    let items = self.pop_to_mark(at, "APPENDS")?;
                    self.extend_list(items, at, "APPENDS")?;
                }
                b'l' => {
                    let items = self.pop_to_mark(at, "LIST")?;
                    self.push(Value::List(items));
                }
                b't' => {
                    let items = self.pop_to_mark(at, "TUPLE")?;
                    self.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop(at, "TUPLEn")?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(items));
                }
                b's' | b'u' => {
                    let pairs = if op == b's' {
                        let v = self.pop(at, "SETITEM")?;
                        let k = self.pop(at, "SETITEM")?;
                        vec![(k, v)]
                    } else {
                        let items = self.pop_to_mark(at, "SETITEMS")?;
                        if items.len() % 2 != 0 {
                            return Err(self.err(at, "SETITEMS with an odd number of items"));
                        }
                        let mut it = items.into_iter();
                        let mut p = Vec::new();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            p.push((k, v));
                        }
                        p
                    };
                    match self.top_mut(at, "SETITEM")? {
                        Value::Dict(d) => d.extend(pairs),
                        other => {
                            let k = other.kind();
                            return Err(
                                self.err(at, format!("SETITEM onto a {k}, expected a dict"))
                            );
                        }
                    }
                }
                b'c' => {
                    let m = self.line(at, "GLOBAL")?;
                    let n = self.line(at, "GLOBAL")?;
                    self.push(Value::Global(m, n));
                }
                0x93 => {
                    let n = self.pop(at, "STACK_GLOBAL")?;
                    let m = self.pop(at, "STACK_GLOBAL")?;
                    match (m, n) {
                        (Value::Str(m), Value::Str(n)) => self.push(Value::Global(m, n)),
                        (m, n) => {
                            return Err(self.err(
                                at,
                                format!(
                                    "STACK_GLOBAL of {} and {}, expected two str",
                                    m.kind(),
                                    n.kind()
                                ),
                            ))
                        }
                    }
                }
                b'R' => {
                    let args = self.pop(at, "REDUCE")?;
                    let callable = self.pop(at, "REDUCE")?;
                    let v = reduce(callable, args).map_err(|m| self.err(at, m))?;
                    self.push(v);
                }
                b'b' => {
                    let state = self.pop(at, "BUILD")?;
                    match self.top_mut(at, "BUILD")? {
                        Value::Object { state: s, .. } => *s = Some(Box::new(state)),
                        other => {
                            let k = other.kind();
                            return Err(self.err(
                                at,
                                format!("BUILD on a {k}, expected an object made by REDUCE"),
                            ));
                        }
                    }
                }
                b'q' => {
                    let k = self.u8(at, "BINPUT")? as u64;
                    self.memo_put(k, at, "BINPUT")?;
                }
                b'r' => {
                    let k = self.u32(at, "LONG_BINPUT")? as u64;
                    self.memo_put(k, at, "LONG_BINPUT")?;
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k, at, "MEMOIZE")?;
                }
                b'h' => {
                    let k = self.u8(at, "BINGET")? as u64;
                    self.memo_get(k, at, "BINGET")?;
                }
                b'j' => {
                    let k = self.u32(at, "LONG_BINGET")? as u64;
                    self.memo_get(k, at, "LONG_BINGET")?;
                }
                b'0' => {
                    self.stack
                        .pop()
                        .ok_or_else(|| self.err(at, "POP on an empty stack"))?;
                }
                other => {
                    return Err(self.err(
                        at,
                        format!(
                            "unsupported pickle opcode {other:#04x} ({:?})",
                            other as char
                        ),
                    ))
                }
            }
        }
    }
}

/// `REDUCE`: evaluates `_codecs.encode(str, 'latin1')` (Python 3's protocol-2 bytes), keeps
/// anything else as an [`Value::Object`].
fn reduce(callable: Value, args: Value) -> std::result::Result<Value, String> {
    if let Value::Global(m, n) = &callable {
        if m == "_codecs" && n == "encode" {
            return match &args {
                Value::Tuple(a) => match a.as_slice() {
                    [Value::Str(s), Value::Str(enc)] if enc == "latin1" || enc == "latin-1" => s
                        .chars()
                        .map(|c| {
                            u8::try_from(c as u32)
                                .map_err(|_| format!("_codecs.encode: {c:?} is not latin-1"))
                        })
                        .collect::<std::result::Result<Vec<u8>, String>>()
                        .map(Value::Bytes),
                    [Value::Str(_)] => Err("_codecs.encode without an encoding".into()),
                    _ => Err(format!(
                        "_codecs.encode with arguments {}, expected (str, 'latin1')",
                        args.kind()
                    )),
                },
                _ => Err(format!(
                    "REDUCE arguments are a {}, expected a tuple",
                    args.kind()
                )),
            };
        }
    }
    Ok(Value::Object {
        callable: Box::new(callable),
        args: Box::new(args),
        state: None,
    })
}

/// Parses a pickle; `path` names the file in errors (which give the byte offset).
pub fn parse_pickle(data: &[u8], path: &Path) -> Result<Value> {
    Machine {
        data,
        pos: 0,
        path,
        stack: Vec::new(),
        memo: Default::default(),
    }
    .run()
}
