//! The layout of a Burn record: which enum variants, sequence lengths, optional parts and
//! tensor shapes it holds, path by path, read without loading it into a module.
//!
//! Burn's `Module::load_record` panics when a record's enum variant or `Vec` length differs
//! from the module's, and silently takes other tensor shapes. Comparing the layout of the
//! record read from a file with the layout of the module's own record first makes a wrong file
//! an error naming the first differing path, with no panic to catch (and so no process-wide
//! panic hook to swap).
//!
//! The layout is read by serialising a record item (`Record::Item<S>`, which Burn derives
//! `Serialize` for) into a [`serde::Serializer`] that keeps only structure: tensor values are
//! never visited, parameter ids and other strings or numbers are ignored.

use std::fmt;

use serde::ser::{self, Serialize};

/// One structural fact of a record at a dotted path (`convs.0.conv.weight`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutEntry {
    /// Dotted path of struct fields and sequence indices from the record's root.
    pub path: String,
    /// What is there: `tensor [32, 1, 5, 5] F32`, `variant LeNetPP`, `4 items`, `none`, `some`.
    pub what: String,
}

/// The layout of a serialisable record item, in serialisation (module) order.
///
/// # Errors
/// A message when the item cannot be walked (a custom `Serialize` that fails).
pub fn layout_of<T: Serialize + ?Sized>(item: &T) -> Result<Vec<LayoutEntry>, String> {
    let mut c = Collector::default();
    item.serialize(&mut c).map_err(|e| e.0)?;
    Ok(c.entries)
}

/// The first difference between a record's layout and the layout a module expects, as a
/// sentence naming the path: `None` when they agree (then loading the record cannot trip
/// Burn's loader and gives the module's shapes).
pub fn first_difference(record: &[LayoutEntry], expected: &[LayoutEntry]) -> Option<String> {
    let name = |p: &str| {
        if p.is_empty() {
            "the record's root".to_string()
        } else {
            format!("`{p}`")
        }
    };
    for (i, e) in expected.iter().enumerate() {
        match record.get(i) {
            None => {
                return Some(format!(
                    "the record ends where {} should hold {}",
                    name(&e.path),
                    e.what
                ))
            }
            Some(r) if r != e => {
                return Some(if r.path == e.path {
                    format!(
                        "{} holds {} where {} was expected",
                        name(&r.path),
                        r.what,
                        e.what
                    )
                } else {
                    format!(
                        "the record has {} at {} where {} should hold {}",
                        r.what,
                        name(&r.path),
                        name(&e.path),
                        e.what
                    )
                })
            }
            Some(_) => {}
        }
    }
    record.get(expected.len()).map(|r| {
        format!(
            "the record holds more than expected: {} at {}",
            r.what,
            name(&r.path)
        )
    })
}

/// A walk that cannot go on.
#[derive(Debug)]
pub struct LayoutError(String);

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LayoutError {}

impl ser::Error for LayoutError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        LayoutError(msg.to_string())
    }
}

#[derive(Default)]
struct Collector {
    path: Vec<String>,
    entries: Vec<LayoutEntry>,
}

impl Collector {
    fn push(&mut self, what: String) {
        self.entries.push(LayoutEntry {
            path: self.path.join("."),
            what,
        });
    }
}

/// How the fields of a struct being walked are treated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Each field or element under its own path component.
    Plain,
    /// Burn's `ParamSerde { id, param }`: the id is skipped, the param stays at this path.
    Param,
    /// Burn's `TensorData { bytes, shape, dtype }`: one entry with shape and dtype.
    Tensor,
}

struct Compound<'a> {
    c: &'a mut Collector,
    index: usize,
    kind: Kind,
    shape: Option<Vec<usize>>,
    dtype: Option<String>,
}

impl<'a> Compound<'a> {
    fn new(c: &'a mut Collector, kind: Kind) -> Self {
        Compound {
            c,
            index: 0,
            kind,
            shape: None,
            dtype: None,
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), LayoutError> {
        self.c.path.push(self.index.to_string());
        self.index += 1;
        let r = value.serialize(&mut *self.c);
        self.c.path.pop();
        r
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), LayoutError> {
        match (self.kind, key) {
            (Kind::Param, "id") => Ok(()),
            (Kind::Param, "param") => value.serialize(&mut *self.c),
            // the values themselves are never visited
            (Kind::Tensor, "bytes") => Ok(()),
            (Kind::Tensor, "shape") => {
                let mut dims = Dims::default();
                value.serialize(&mut dims)?;
                self.shape = Some(dims.0);
                Ok(())
            }
            (Kind::Tensor, "dtype") => {
                let mut c = Collector::default();
                value.serialize(&mut c)?;
                self.dtype = Some(
                    c.entries
                        .first()
                        .map(|e| e.what.trim_start_matches("variant ").to_string())
                        .unwrap_or_else(|| "?".into()),
                );
                Ok(())
            }
            (Kind::Tensor, _) => Ok(()),
            _ => {
                self.c.path.push(key.to_string());
                let r = value.serialize(&mut *self.c);
                self.c.path.pop();
                r
            }
        }
    }

    fn finish(self) -> Result<(), LayoutError> {
        if self.kind == Kind::Tensor {
            let shape = self.shape.unwrap_or_default();
            let dtype = self.dtype.unwrap_or_else(|| "?".into());
            self.c.push(format!("tensor {shape:?} {dtype}"));
        }
        Ok(())
    }
}

macro_rules! ignore {
    ($($name:ident: $t:ty),*) => {
        $(fn $name(self, _v: $t) -> Result<(), LayoutError> { Ok(()) })*
    };
}

impl<'a> ser::Serializer for &'a mut Collector {
    type Ok = ();
    type Error = LayoutError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    ignore!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_f32: f32, serialize_f64: f64, serialize_char: char,
        serialize_str: &str, serialize_bytes: &[u8]);

    fn serialize_none(self) -> Result<(), LayoutError> {
        self.push("none".into());
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), LayoutError> {
        self.push("some".into());
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), LayoutError> {
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), LayoutError> {
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), LayoutError> {
        self.push(format!("variant {variant}"));
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), LayoutError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), LayoutError> {
        self.push(format!("variant {variant}"));
        value.serialize(self)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, LayoutError> {
        match len {
            Some(n) => self.push(format!("{n} items")),
            None => self.push("a sequence".into()),
        }
        Ok(Compound::new(self, Kind::Plain))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, LayoutError> {
        self.push(format!("{len} items"));
        Ok(Compound::new(self, Kind::Plain))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, LayoutError> {
        self.serialize_tuple(len)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, LayoutError> {
        self.push(format!("variant {variant}"));
        Ok(Compound::new(self, Kind::Plain))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>, LayoutError> {
        self.serialize_seq(len)
    }

    fn serialize_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, LayoutError> {
        let kind = match name {
            "ParamSerde" => Kind::Param,
            "TensorData" => Kind::Tensor,
            _ => Kind::Plain,
        };
        Ok(Compound::new(self, kind))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, LayoutError> {
        self.push(format!("variant {variant}"));
        Ok(Compound::new(self, Kind::Plain))
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = LayoutError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), LayoutError> {
        self.element(value)
    }
    fn end(self) -> Result<(), LayoutError> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = LayoutError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), LayoutError> {
        self.element(value)
    }
    fn end(self) -> Result<(), LayoutError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = LayoutError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), LayoutError> {
        self.element(value)
    }
    fn end(self) -> Result<(), LayoutError> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = LayoutError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), LayoutError> {
        self.element(value)
    }
    fn end(self) -> Result<(), LayoutError> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = LayoutError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, _key: &T) -> Result<(), LayoutError> {
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), LayoutError> {
        self.element(value)
    }
    fn end(self) -> Result<(), LayoutError> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = LayoutError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), LayoutError> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), LayoutError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = LayoutError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), LayoutError> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), LayoutError> {
        self.finish()
    }
}

/// Collects the integers of a tensor's shape (a sequence of `usize`).
#[derive(Default)]
struct Dims(Vec<usize>);

fn not_a_shape() -> LayoutError {
    LayoutError("a tensor shape that is not a list of integers".into())
}

macro_rules! refuse {
    ($($name:ident: $t:ty),*) => {
        $(fn $name(self, _v: $t) -> Result<(), LayoutError> { Err(not_a_shape()) })*
    };
}

impl ser::Serializer for &mut Dims {
    type Ok = ();
    type Error = LayoutError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = ser::Impossible<(), LayoutError>;
    type SerializeTupleVariant = ser::Impossible<(), LayoutError>;
    type SerializeMap = ser::Impossible<(), LayoutError>;
    type SerializeStruct = ser::Impossible<(), LayoutError>;
    type SerializeStructVariant = ser::Impossible<(), LayoutError>;

    fn serialize_u64(self, v: u64) -> Result<(), LayoutError> {
        self.0.push(usize::try_from(v).map_err(|_| not_a_shape())?);
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), LayoutError> {
        self.serialize_u64(v as u64)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self, LayoutError> {
        Ok(self)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self, LayoutError> {
        Ok(self)
    }
    refuse!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char, serialize_str: &str, serialize_bytes: &[u8]);
    fn serialize_none(self) -> Result<(), LayoutError> {
        Err(not_a_shape())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _v: &T) -> Result<(), LayoutError> {
        Err(not_a_shape())
    }
    fn serialize_unit(self) -> Result<(), LayoutError> {
        Err(not_a_shape())
    }
    fn serialize_unit_struct(self, _n: &'static str) -> Result<(), LayoutError> {
        Err(not_a_shape())
    }
    fn serialize_unit_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
    ) -> Result<(), LayoutError> {
        Err(not_a_shape())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _n: &'static str,
        v: &T,
    ) -> Result<(), LayoutError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _value: &T,
    ) -> Result<(), LayoutError> {
        Err(not_a_shape())
    }
    fn serialize_tuple_struct(
        self,
        _n: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeTupleStruct, LayoutError> {
        Err(not_a_shape())
    }
    fn serialize_tuple_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeTupleVariant, LayoutError> {
        Err(not_a_shape())
    }
    fn serialize_map(self, _l: Option<usize>) -> Result<Self::SerializeMap, LayoutError> {
        Err(not_a_shape())
    }
    fn serialize_struct(
        self,
        _n: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeStruct, LayoutError> {
        Err(not_a_shape())
    }
    fn serialize_struct_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeStructVariant, LayoutError> {
        Err(not_a_shape())
    }
}

impl ser::SerializeSeq for &mut Dims {
    type Ok = ();
    type Error = LayoutError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), LayoutError> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), LayoutError> {
        Ok(())
    }
}

impl ser::SerializeTuple for &mut Dims {
    type Ok = ();
    type Error = LayoutError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), LayoutError> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), LayoutError> {
        Ok(())
    }
}
