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

/// Deepest nesting of containers a pickle may build (`.bin` packs need 5 levels); deeper
/// input is refused instead of overflowing the stack when the value is cloned or dropped.
pub const MAX_DEPTH: usize = 100;
/// Values a pickle may materialise beyond 8x its own size, in bytes (memo references copy
/// values, so a few hundred bytes could otherwise build gigabytes).
pub const EXTRA_BUDGET: u64 = 64 << 20;
/// Cost of one value node against the budget, in bytes.
const NODE_COST: u64 = 48;

/// Nesting depth and materialised size of a value on the stack or in the memo.
#[derive(Debug, Clone, Copy)]
struct Meta {
    depth: usize,
    cost: u64,
}

impl Meta {
    fn leaf(bytes: usize) -> Self {
        Self {
            depth: 1,
            cost: NODE_COST + bytes as u64,
        }
    }
}

enum Item {
    Mark,
    Val(Value, Meta),
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    path: &'a Path,
    stack: Vec<Item>,
    memo: std::collections::HashMap<u64, (Value, Meta)>,
    /// Bytes materialised so far (new values and copies), against `budget`.
    spent: u64,
    budget: u64,
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

    /// Counts `cost` materialised bytes against the budget.
    fn charge(&mut self, cost: u64, at: usize) -> Result<()> {
        self.spent = self.spent.saturating_add(cost);
        if self.spent > self.budget {
            return Err(self.err(
                at,
                format!(
                    "the pickle builds more than {} bytes of values from {} bytes of file (memo copies multiply it): refused",
                    self.budget,
                    self.data.len()
                ),
            ));
        }
        Ok(())
    }

    /// The meta of a container holding values of `children` metas, checked against
    /// [`MAX_DEPTH`] (the container node itself is charged by the caller).
    fn parent(&self, children: impl Iterator<Item = Meta>, at: usize, op: &str) -> Result<Meta> {
        let mut m = Meta::leaf(0);
        for c in children {
            m.depth = m.depth.max(c.depth + 1);
            m.cost += c.cost;
        }
        self.check_depth(m, at, op)
    }

    fn check_depth(&self, m: Meta, at: usize, op: &str) -> Result<Meta> {
        if m.depth > MAX_DEPTH {
            return Err(self.err(
                at,
                format!(
                    "{op} nests values {} levels deep, more than the {MAX_DEPTH} allowed",
                    m.depth
                ),
            ));
        }
        Ok(m)
    }

    /// Pushes a new leaf value holding `bytes` bytes of payload.
    fn push_leaf(&mut self, v: Value, bytes: usize, at: usize) -> Result<()> {
        let m = Meta::leaf(bytes);
        self.charge(m.cost, at)?;
        self.stack.push(Item::Val(v, m));
        Ok(())
    }

    /// Pushes a new container built from moved children (only its own node is charged).
    fn push_node(&mut self, v: Value, m: Meta, at: usize) -> Result<()> {
        self.charge(NODE_COST, at)?;
        self.stack.push(Item::Val(v, m));
        Ok(())
    }

    fn pop(&mut self, at: usize, op: &str) -> Result<(Value, Meta)> {
        match self.stack.pop() {
            Some(Item::Val(v, m)) => Ok((v, m)),
            Some(Item::Mark) => {
                Err(self.err(at, format!("{op} found a MARK where it expected a value")))
            }
            None => Err(self.err(at, format!("{op} on an empty stack"))),
        }
    }

    fn pop_to_mark(&mut self, at: usize, op: &str) -> Result<(Vec<Value>, Vec<Meta>)> {
        let m = self
            .stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or_else(|| self.err(at, format!("{op} without a MARK")))?;
        let items = self.stack.split_off(m + 1);
        self.stack.pop();
        let mut values = Vec::with_capacity(items.len());
        let mut metas = Vec::with_capacity(items.len());
        for i in items {
            if let Item::Val(v, meta) = i {
                values.push(v);
                metas.push(meta);
            }
        }
        Ok((values, metas))
    }

    fn top_mut(&mut self, at: usize, op: &str) -> Result<(&mut Value, &mut Meta)> {
        match self.stack.last_mut() {
            Some(Item::Val(v, m)) => Ok((v, m)),
            _ => Err(DataError::format(
                self.path,
                format!("pickle offset {at}: {op} needs a value on the stack"),
            )),
        }
    }

    /// Adds moved children of `metas` to the top container's meta.
    fn grow_top(&mut self, metas: &[Meta], at: usize, op: &str) -> Result<()> {
        let (_, top) = self.top_mut(at, op)?;
        let mut m = *top;
        for c in metas {
            m.depth = m.depth.max(c.depth + 1);
            m.cost += c.cost;
        }
        let m = self.check_depth(m, at, op)?;
        *self.top_mut(at, op)?.1 = m;
        Ok(())
    }

    fn memo_put(&mut self, key: u64, at: usize, op: &str) -> Result<()> {
        let m = match self.stack.last() {
            Some(Item::Val(_, m)) => *m,
            _ => return Err(self.err(at, format!("{op} needs a value on the stack"))),
        };
        self.charge(m.cost, at)?;
        let Some(Item::Val(v, _)) = self.stack.last() else {
            unreachable!("checked above")
        };
        let v = v.clone();
        self.memo.insert(key, (v, m));
        Ok(())
    }

    fn memo_get(&mut self, key: u64, at: usize, op: &str) -> Result<()> {
        let m = self
            .memo
            .get(&key)
            .map(|x| x.1)
            .ok_or_else(|| self.err(at, format!("{op} of memo key {key}, never stored")))?;
        self.charge(m.cost, at)?;
        let v = self.memo[&key].0.clone();
        self.stack.push(Item::Val(v, m));
        Ok(())
    }

    fn extend_list(
        &mut self,
        items: Vec<Value>,
        metas: &[Meta],
        at: usize,
        op: &str,
    ) -> Result<()> {
        self.grow_top(metas, at, op)?;
        match self.top_mut(at, op)?.0 {
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
                    let (v, _) = self.pop(at, "STOP")?;
                    return Ok(v);
                }
                b'(' => self.stack.push(Item::Mark),
                b'N' => self.push_leaf(Value::None, 0, at)?,
                0x88 => self.push_leaf(Value::Bool(true), 0, at)?,
                0x89 => self.push_leaf(Value::Bool(false), 0, at)?,
                b'I' => {
                    let s = self.line(at, "INT")?;
                    let v = match s.as_str() {
                        "01" => Value::Bool(true),
                        "00" => Value::Bool(false),
                        t => Value::Int(t.trim().parse().map_err(|_| {
                            self.err(at, format!("INT argument {t:?} is not an integer"))
                        })?),
                    };
                    self.push_leaf(v, 0, at)?;
                }
                b'J' => {
                    let v = self.u32(at, "BININT")? as i32;
                    self.push_leaf(Value::Int(v as i64), 0, at)?;
                }
                b'K' => {
                    let v = self.u8(at, "BININT1")?;
                    self.push_leaf(Value::Int(v as i64), 0, at)?;
                }
                b'M' => {
                    let b = self.take(2, at, "BININT2")?;
                    let v = u16::from_le_bytes([b[0], b[1]]);
                    self.push_leaf(Value::Int(v as i64), 0, at)?;
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
                    self.push_leaf(Value::Int(v), 0, at)?;
                }
                b'G' => {
                    let b: [u8; 8] = self.take(8, at, "BINFLOAT")?.try_into().unwrap();
                    self.push_leaf(Value::Float(f64::from_be_bytes(b)), 0, at)?;
                }
                b'T' | b'B' => {
                    let name = if op == b'T' { "BINSTRING" } else { "BINBYTES" };
                    let n = self.u32(at, name)? as usize;
                    let b = self.take(n, at, name)?.to_vec();
                    self.push_leaf(Value::Bytes(b), n, at)?;
                }
                b'U' | b'C' => {
                    let name = if op == b'U' {
                        "SHORT_BINSTRING"
                    } else {
                        "SHORT_BINBYTES"
                    };
                    let n = self.u8(at, name)? as usize;
                    let b = self.take(n, at, name)?.to_vec();
                    self.push_leaf(Value::Bytes(b), n, at)?;
                }
                0x8e => {
                    let n = self.u64(at, "BINBYTES8")?;
                    let n = usize::try_from(n)
                        .map_err(|_| self.err(at, "BINBYTES8 length overflows"))?;
                    let b = self.take(n, at, "BINBYTES8")?.to_vec();
                    self.push_leaf(Value::Bytes(b), n, at)?;
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
                    self.push_leaf(Value::Str(s), n, at)?;
                }
                b']' => self.push_leaf(Value::List(Vec::new()), 0, at)?,
                b')' => self.push_leaf(Value::Tuple(Vec::new()), 0, at)?,
                b'}' => self.push_leaf(Value::Dict(Vec::new()), 0, at)?,
                b'a' => {
                    let (v, m) = self.pop(at, "APPEND")?;
                    self.extend_list(vec![v], &[m], at, "APPEND")?;
                }
                b'e' => {
                    let (items, metas) = self.pop_to_mark(at, "APPENDS")?;
                    self.extend_list(items, &metas, at, "APPENDS")?;
                }
                b'l' | b't' => {
                    let name = if op == b'l' { "LIST" } else { "TUPLE" };
                    let (items, metas) = self.pop_to_mark(at, name)?;
                    let m = self.parent(metas.into_iter(), at, name)?;
                    let v = if op == b'l' {
                        Value::List(items)
                    } else {
                        Value::Tuple(items)
                    };
                    self.push_node(v, m, at)?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    let mut metas = Vec::with_capacity(n);
                    for _ in 0..n {
                        let (v, m) = self.pop(at, "TUPLEn")?;
                        items.push(v);
                        metas.push(m);
                    }
                    items.reverse();
                    let m = self.parent(metas.into_iter(), at, "TUPLEn")?;
                    self.push_node(Value::Tuple(items), m, at)?;
                }
                b's' | b'u' => {
                    let (pairs, metas) = if op == b's' {
                        let (v, mv) = self.pop(at, "SETITEM")?;
                        let (k, mk) = self.pop(at, "SETITEM")?;
                        (vec![(k, v)], vec![mk, mv])
                    } else {
                        let (items, metas) = self.pop_to_mark(at, "SETITEMS")?;
                        if items.len() % 2 != 0 {
                            return Err(self.err(at, "SETITEMS with an odd number of items"));
                        }
                        let mut it = items.into_iter();
                        let mut p = Vec::new();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            p.push((k, v));
                        }
                        (p, metas)
                    };
                    self.grow_top(&metas, at, "SETITEM")?;
                    match self.top_mut(at, "SETITEM")?.0 {
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
                    let len = m.len() + n.len();
                    self.push_leaf(Value::Global(m, n), len, at)?;
                }
                0x93 => {
                    let (n, _) = self.pop(at, "STACK_GLOBAL")?;
                    let (m, _) = self.pop(at, "STACK_GLOBAL")?;
                    match (m, n) {
                        (Value::Str(m), Value::Str(n)) => {
                            let len = m.len() + n.len();
                            self.push_leaf(Value::Global(m, n), len, at)?
                        }
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
                    let (args, ma) = self.pop(at, "REDUCE")?;
                    let (callable, mc) = self.pop(at, "REDUCE")?;
                    let v = reduce(callable, args).map_err(|m| self.err(at, m))?;
                    if let Value::Bytes(b) = &v {
                        let n = b.len();
                        self.push_leaf(v, n, at)?;
                    } else {
                        let m = self.parent([mc, ma].into_iter(), at, "REDUCE")?;
                        self.push_node(v, m, at)?;
                    }
                }
                b'b' => {
                    let (state, ms) = self.pop(at, "BUILD")?;
                    self.grow_top(&[ms], at, "BUILD")?;
                    match self.top_mut(at, "BUILD")?.0 {
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
///
/// Nesting deeper than [`MAX_DEPTH`] and values larger in total than 8x the input plus
/// [`EXTRA_BUDGET`] bytes (counting every copy a memo reference makes) are errors, so no input
/// overflows the stack or grows memory without bound.
pub fn parse_pickle(data: &[u8], path: &Path) -> Result<Value> {
    Machine {
        data,
        pos: 0,
        path,
        stack: Vec::new(),
        memo: Default::default(),
        spent: 0,
        budget: (data.len() as u64)
            .saturating_mul(8)
            .saturating_add(EXTRA_BUDGET),
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut p = vec![0x80, 2];
        p.extend(std::iter::repeat_n(b']', 100_000));
        p.extend(std::iter::repeat_n(b'a', 99_999));
        p.push(b'.');
        let e = parse_pickle(&p, Path::new("deep.bin"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("levels deep, more than the 100 allowed"), "{e}");
        // Depth 100 itself is fine.
        let mut p = vec![0x80, 2];
        p.extend(std::iter::repeat_n(b']', 100));
        p.extend(std::iter::repeat_n(b'a', 99));
        p.push(b'.');
        assert!(parse_pickle(&p, Path::new("ok.bin")).is_ok());
    }

    #[test]
    fn memo_copies_cannot_grow_memory_without_bound() {
        // x = [b'0' * 200]; then 60 times: x = [x, x] through the memo.
        let mut p = vec![0x80, 2, b']', b'U', 200];
        p.extend(std::iter::repeat_n(b'0', 200));
        p.extend([b'a', b'q', 0]);
        for _ in 0..60 {
            p.extend([b']', b'h', 0, b'a', b'h', 0, b'a', b'q', 0, b'0']);
            p.extend([b'h', 0]);
        }
        p.push(b'.');
        let e = parse_pickle(&p, Path::new("bomb.bin"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("refused"), "{e}");
    }
}
