//! MXNet RecordIO packs (`train.rec` + `train.idx` + `property`), as InsightFace distributes
//! MS1MV2/V3, Glint360K, CASIA-WebFace and WebFace.
//!
//! * `.idx`: text, one `<key>\t<byte offset>` line per record.
//! * `.rec`: chunks `u32 magic 0xCED7230A, u32 lrec (cflag << 29 | length), payload, zero pad
//!   to 4`. A writer splits a record at every 4-byte-aligned payload word equal to the magic
//!   and drops that word (cflag 1 first, 2 middle, 3 last); a reader re-inserts it.
//! * A logical record starts with a 24-byte `IRHeader` (`u32 flag, f32 label, u64 id, u64 id2`)
//!   followed by `flag` f32 labels when `flag > 0`, then the encoded image.
//! * InsightFace convention: record 0 has `flag > 0` and labels `(a, b)`: images are records
//!   `1 .. a`, records `a .. b` are identity records (labels = half-open image range). Packs
//!   made with im2rec have no such record: every key of the `.idx` is an image.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::image_folder::ImageFolder;
use crate::sample::{decode_image, temp_path, ImageSample};
use crate::source::SampleSource;

/// The RecordIO chunk magic.
pub const RECORDIO_MAGIC: u32 = 0xCED7_230A;
/// Size of the `IRHeader` that starts every logical record.
pub const IR_HEADER_SIZE: usize = 24;
const LENGTH_MASK: u32 = (1 << 29) - 1;

/// The `IRHeader` of a logical record, with its extra labels.
#[derive(Debug, Clone, PartialEq)]
pub struct IrHeader {
    /// 0: one label in `label`; n > 0: n labels in `labels`.
    pub flag: u32,
    /// The label when `flag == 0`.
    pub label: f32,
    /// Record id.
    pub id: u64,
    /// Second id.
    pub id2: u64,
    /// The `flag` extra labels.
    pub labels: Vec<f32>,
}

impl IrHeader {
    /// An image header with one class label (flag 0).
    pub fn image(label: usize, id: u64) -> Self {
        Self {
            flag: 0,
            label: label as f32,
            id,
            id2: 0,
            labels: Vec::new(),
        }
    }

    /// A header carrying several labels (flag = their count, `label` 0).
    pub fn with_labels(labels: Vec<f32>, id: u64) -> Self {
        Self {
            flag: labels.len() as u32,
            label: 0.0,
            id,
            id2: 0,
            labels,
        }
    }

    /// The class label as InsightFace reads it: `label` when flag is 0, else `labels[0]`.
    pub fn class_label(&self) -> f32 {
        if self.flag == 0 {
            self.label
        } else {
            self.labels[0]
        }
    }

    /// Serialises the header and its labels.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(IR_HEADER_SIZE + 4 * self.labels.len());
        b.extend_from_slice(&self.flag.to_le_bytes());
        b.extend_from_slice(&self.label.to_le_bytes());
        b.extend_from_slice(&self.id.to_le_bytes());
        b.extend_from_slice(&self.id2.to_le_bytes());
        for l in &self.labels {
            b.extend_from_slice(&l.to_le_bytes());
        }
        b
    }

    /// Parses a logical record into its header and payload; `what` names the record in errors.
    pub fn parse<'a>(record: &'a [u8], path: &Path, what: &str) -> Result<(Self, &'a [u8])> {
        if record.len() < IR_HEADER_SIZE {
            return Err(DataError::format(
                path,
                format!(
                    "{what}: {} bytes, shorter than the {IR_HEADER_SIZE}-byte IRHeader",
                    record.len()
                ),
            ));
        }
        let u32_at = |o: usize| u32::from_le_bytes(record[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(record[o..o + 8].try_into().unwrap());
        let flag = u32_at(0);
        let label = f32::from_bits(u32_at(4));
        let (id, id2) = (u64_at(8), u64_at(16));
        let end = IR_HEADER_SIZE as u64 + 4 * flag as u64;
        if end > record.len() as u64 {
            return Err(DataError::format(
                path,
                format!("{what}: IRHeader flag {flag} needs {end} bytes of header and labels, the record has {}", record.len()),
            ));
        }
        let end = end as usize;
        let labels = record[IR_HEADER_SIZE..end]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Ok((
            Self {
                flag,
                label,
                id,
                id2,
                labels,
            },
            &record[end..],
        ))
    }
}

/// A float label to a class index: finite, non-negative, integral and below 2^24 (where f32
/// stops representing every integer).
pub fn label_to_class(label: f32, path: &Path, what: &str) -> Result<usize> {
    if label.is_finite() && label >= 0.0 && label.fract() == 0.0 && label < (1u32 << 24) as f32 {
        Ok(label as usize)
    } else {
        Err(DataError::format(
            path,
            format!(
                "{what}: label {label} is not a class index (a non-negative integer below 2^24)"
            ),
        ))
    }
}

/// Splits `payload` into RecordIO chunks (header + data + padding), as MXNet's writer does.
pub fn encode_record(payload: &[u8]) -> Vec<u8> {
    let magic = RECORDIO_MAGIC.to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    let push = |out: &mut Vec<u8>, cflag: u32, data: &[u8]| {
        out.extend_from_slice(&magic);
        out.extend_from_slice(&((cflag << 29) | data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    };
    let mut start = 0;
    let mut i = 0;
    while i + 4 <= payload.len() {
        if payload[i..i + 4] == magic {
            push(&mut out, if start == 0 { 1 } else { 2 }, &payload[start..i]);
            start = i + 4;
        }
        i += 4;
    }
    push(&mut out, if start == 0 { 0 } else { 3 }, &payload[start..]);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(file, buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// The three paths of a pack, from a prefix (`train`), a `.rec` or an `.idx` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackPaths {
    /// The `.rec` file.
    pub rec: PathBuf,
    /// The `.idx` file.
    pub idx: PathBuf,
    /// The `property` file next to them.
    pub property: PathBuf,
}

impl PackPaths {
    /// Resolves `path`: `X.rec` or `X.idx` give `X.rec` + `X.idx`; a directory `D` means the
    /// prefix `D/train`; anything else is a prefix.
    pub fn resolve(path: &Path) -> Self {
        if path.is_dir() {
            return Self::resolve(&path.join("train"));
        }
        let s = path.to_string_lossy();
        let prefix = s
            .strip_suffix(".rec")
            .or_else(|| s.strip_suffix(".idx"))
            .unwrap_or(&s)
            .to_string();
        let rec = PathBuf::from(format!("{prefix}.rec"));
        let property = rec
            .parent()
            .map(|p| p.join("property"))
            .unwrap_or_else(|| PathBuf::from("property"));
        Self {
            rec,
            idx: PathBuf::from(format!("{prefix}.idx")),
            property,
        }
    }
}

/// The `property` file: `num_classes,height,width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Property {
    /// Number of classes.
    pub num_classes: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
}

/// Largest class count a `property` file may declare: labels are f32 in RecordIO, exact
/// integers only below 2^24.
pub const MAX_CLASSES: usize = 1 << 24;

impl Property {
    /// Parses `num_classes,height,width`; the class count must be at most [`MAX_CLASSES`] and
    /// the image sides at most [`crate::sample::MAX_IMAGE_SIDE`].
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let v: Vec<&str> = text.trim().split(',').map(|x| x.trim()).collect();
        let num = |i: usize, field: &str| -> Result<usize> {
            v.get(i).and_then(|x| x.parse().ok()).ok_or_else(|| {
                DataError::format(path, format!("field {i} ({field}) is not an integer: expected `num_classes,height,width`, found {:?}", text.trim()))
            })
        };
        if v.len() != 3 {
            return Err(DataError::format(
                path,
                format!(
                    "expected `num_classes,height,width`, found {:?}",
                    text.trim()
                ),
            ));
        }
        let me = Self {
            num_classes: num(0, "num_classes")?,
            height: num(1, "height")?,
            width: num(2, "width")?,
        };
        if me.num_classes > MAX_CLASSES {
            return Err(DataError::format(
                path,
                format!(
                    "field 0 (num_classes) is {}, more than the {MAX_CLASSES} classes RecordIO's f32 labels can name",
                    me.num_classes
                ),
            ));
        }
        let side = crate::sample::MAX_IMAGE_SIDE as usize;
        for (i, field, v) in [(1, "height", me.height), (2, "width", me.width)] {
            if v > side {
                return Err(DataError::format(
                    path,
                    format!("field {i} ({field}) is {v}, more than the {side}-pixel limit"),
                ));
            }
        }
        Ok(me)
    }

    /// Reads and parses the `property` file at `path` (a regular file of at most
    /// [`crate::read::MAX_PROPERTY_BYTES`]).
    pub fn read(path: &Path) -> Result<Self> {
        let text = crate::read::read_regular_text(path, crate::read::MAX_PROPERTY_BYTES)?;
        Self::parse(&text, path)
    }
}

/// Reads a text `.idx` file into `(key, offset)` pairs in file order.
/// The file must be a regular file of at most [`crate::read::MAX_TEXT_BYTES`].
pub fn read_idx(path: &Path) -> Result<Vec<(u64, u64)>> {
    let text = crate::read::read_regular_text(path, crate::read::MAX_TEXT_BYTES)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut it = line.split_whitespace();
        let parsed = match (it.next(), it.next(), it.next()) {
            (Some(k), Some(o), None) => k.parse::<u64>().ok().zip(o.parse::<u64>().ok()),
            _ => None,
        };
        let (k, o) = parsed.ok_or_else(|| {
            DataError::format(
                path,
                format!(
                    "line {}: expected `<key>\\t<offset>`, found {line:?}",
                    n + 1
                ),
            )
        })?;
        out.push((k, o));
    }
    Ok(out)
}

/// Which layout a pack follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackLayout {
    /// InsightFace: record 0 = header, images `1..first_identity`, identity records up to
    /// `end_identity`.
    InsightFace {
        /// First identity record key (`a`).
        first_identity: u64,
        /// One past the last identity record key (`b`).
        end_identity: u64,
    },
    /// im2rec: every key is an image.
    Plain,
}

/// A RecordIO pack opened for random access (thread-safe positional reads).
#[derive(Debug)]
pub struct RecordIo {
    /// Paths of the pack.
    pub paths: PackPaths,
    file: File,
    file_len: u64,
    offsets: HashMap<u64, u64>,
    /// Keys of the image records, in sample order.
    pub image_keys: Vec<u64>,
    /// Layout detected.
    pub layout: PackLayout,
    /// The `property` file, when present.
    pub property: Option<Property>,
    labels: std::sync::OnceLock<Vec<usize>>,
}

impl RecordIo {
    /// Opens a pack from a prefix, a `.rec` or an `.idx` path; validates every offset of the
    /// index against the file and detects the layout from record 0.
    pub fn open(path: &Path) -> Result<Self> {
        let paths = PackPaths::resolve(path);
        let entries = read_idx(&paths.idx)?;
        if entries.is_empty() {
            return Err(DataError::format(&paths.idx, "empty index: no record"));
        }
        let (file, file_len) = crate::read::open_regular(&paths.rec, u64::MAX)?;
        let mut offsets = HashMap::with_capacity(entries.len());
        for (n, &(k, o)) in entries.iter().enumerate() {
            if o.checked_add(8).is_none_or(|end| end > file_len) {
                return Err(DataError::format(
                    &paths.idx,
                    format!(
                        "line {}: key {k} at offset {o}, beyond the end of {} ({file_len} bytes)",
                        n + 1,
                        paths.rec.display()
                    ),
                ));
            }
            if offsets.insert(k, o).is_some() {
                return Err(DataError::format(
                    &paths.idx,
                    format!("line {}: key {k} appears twice", n + 1),
                ));
            }
        }
        // A `property` that exists but is not a regular file (a folder, a FIFO) is an error,
        // not silently ignored.
        let property = if std::fs::metadata(&paths.property).is_ok() {
            Some(Property::read(&paths.property)?)
        } else {
            None
        };
        let mut me = Self {
            paths,
            file,
            file_len,
            offsets,
            image_keys: Vec::new(),
            layout: PackLayout::Plain,
            property,
            labels: std::sync::OnceLock::new(),
        };
        let header0 = if me.offsets.contains_key(&0) {
            Some(me.read_header(0)?)
        } else {
            None
        };
        match header0 {
            Some(h) if h.flag > 0 => {
                if h.labels.len() < 2 {
                    return Err(me.err(format!(
                        "record 0: InsightFace header record with flag {} needs 2 labels (a, b)",
                        h.flag
                    )));
                }
                let what = "record 0 (InsightFace header)";
                let a = label_to_class(h.labels[0], &me.paths.rec, what)? as u64;
                let b = label_to_class(h.labels[1], &me.paths.rec, what)? as u64;
                if a < 1 || b < a {
                    return Err(me.err(format!(
                        "record 0: header labels (a={a}, b={b}) need 1 <= a <= b"
                    )));
                }
                // Stops at the first missing key: at most (index length + 1) lookups.
                for k in 1..b {
                    if !me.offsets.contains_key(&k) {
                        return Err(DataError::format(
                            &me.paths.idx,
                            format!("record 0 declares images 1..{a} and identities {a}..{b}, but key {k} is not in the index"),
                        ));
                    }
                }
                me.image_keys = (1..a).collect();
                me.layout = PackLayout::InsightFace {
                    first_identity: a,
                    end_identity: b,
                };
            }
            _ => {
                me.image_keys = entries.iter().map(|e| e.0).collect();
            }
        }
        Ok(me)
    }

    fn err(&self, what: String) -> DataError {
        DataError::format(&self.paths.rec, what)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64, key: u64) -> Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.file_len)
        {
            return Err(self.err(format!(
                "record key {key}: truncated: {} bytes needed at offset {offset}, the file ends at {}",
                buf.len(),
                self.file_len
            )));
        }
        read_exact_at(&self.file, buf, offset).map_err(|e| DataError::io(&self.paths.rec, e))
    }

    /// Reads one chunk header at `pos`: (cflag, length); a chunk whose length runs past the end
    /// of the file is an error here, before anything is allocated for it.
    fn chunk_header(&self, pos: u64, key: u64) -> Result<(u32, u32)> {
        let mut h = [0u8; 8];
        self.read_at(&mut h, pos, key)?;
        let magic = u32::from_le_bytes(h[0..4].try_into().unwrap());
        if magic != RECORDIO_MAGIC {
            return Err(self.err(format!("record key {key}: magic at offset {pos} is {magic:#010x}, expected {RECORDIO_MAGIC:#010x}")));
        }
        let lrec = u32::from_le_bytes(h[4..8].try_into().unwrap());
        let (cflag, len) = (lrec >> 29, lrec & LENGTH_MASK);
        let end = pos + 8 + len as u64;
        if end > self.file_len {
            return Err(self.err(format!(
                "record key {key}: truncated: the chunk at offset {pos} holds {len} bytes and ends at {end}, the file ends at {}",
                self.file_len
            )));
        }
        Ok((cflag, len))
    }

    /// Size of the `.rec` file in bytes (when it was opened).
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The record at the highest offset of the index and the offset where it ends (its chunks
    /// walked, padding included, capped at the file's end): bytes past it are not reachable
    /// through the index.
    pub fn end_of_records(&self) -> Result<(u64, u64)> {
        let Some((&key, &start)) = self.offsets.iter().max_by_key(|(_, &o)| o) else {
            return Ok((0, 0));
        };
        let mut pos = start;
        loop {
            let (cflag, len) = self.chunk_header(pos, key)?;
            pos += 8 + (len as u64).div_ceil(4) * 4;
            if !matches!(cflag, 1 | 2) || pos >= self.file_len {
                return Ok((key, pos.min(self.file_len)));
            }
        }
    }

    /// The byte offset of record `key`.
    pub fn offset(&self, key: u64) -> Result<u64> {
        self.offsets.get(&key).copied().ok_or_else(|| {
            DataError::format(&self.paths.idx, format!("key {key} is not in the index"))
        })
    }

    /// The logical record `key` (chunks joined, magic words re-inserted).
    pub fn read_record(&self, key: u64) -> Result<Vec<u8>> {
        let mut pos = self.offset(key)?;
        let mut out = Vec::new();
        let mut expect_first = true;
        loop {
            let (cflag, len) = self.chunk_header(pos, key)?;
            let ok = matches!((expect_first, cflag), (true, 0 | 1) | (false, 2 | 3));
            if !ok {
                let want = if expect_first {
                    "0 or 1 (record start)"
                } else {
                    "2 or 3 (continuation)"
                };
                return Err(self.err(format!(
                    "record key {key}: chunk at offset {pos} has cflag {cflag}, expected {want}"
                )));
            }
            let start = out.len();
            out.resize(start + len as usize, 0);
            self.read_at(&mut out[start..], pos + 8, key)?;
            pos += 8 + (len as u64).div_ceil(4) * 4;
            match cflag {
                1 | 2 => out.extend_from_slice(&RECORDIO_MAGIC.to_le_bytes()),
                _ => return Ok(out),
            }
            expect_first = false;
        }
    }

    /// The header of record `key` (reads only the header bytes when the record is one chunk).
    pub fn read_header(&self, key: u64) -> Result<IrHeader> {
        let pos = self.offset(key)?;
        let what = format!("record key {key}");
        let (cflag, len) = self.chunk_header(pos, key)?;
        if cflag == 0 && len as usize >= IR_HEADER_SIZE {
            let mut h = [0u8; IR_HEADER_SIZE];
            self.read_at(&mut h, pos + 8, key)?;
            let flag = u32::from_le_bytes(h[0..4].try_into().unwrap()) as u64;
            let n = (IR_HEADER_SIZE as u64 + 4 * flag).min(len as u64) as usize;
            let mut buf = vec![0u8; n];
            self.read_at(&mut buf, pos + 8, key)?;
            return Ok(IrHeader::parse(&buf, &self.paths.rec, &what)?.0);
        }
        let rec = self.read_record(key)?;
        Ok(IrHeader::parse(&rec, &self.paths.rec, &what)?.0)
    }

    /// Header and encoded image bytes of record `key`.
    pub fn read_image_record(&self, key: u64) -> Result<(IrHeader, Vec<u8>)> {
        let rec = self.read_record(key)?;
        let (h, payload) = IrHeader::parse(&rec, &self.paths.rec, &format!("record key {key}"))?;
        Ok((h, payload.to_vec()))
    }

    /// Decodes record `key` to an RGB sample labelled with its class.
    pub fn decode_key(&self, key: u64) -> Result<ImageSample> {
        if let PackLayout::InsightFace { first_identity, .. } = self.layout {
            if key == 0 || key >= first_identity {
                return Err(self.err(format!(
                    "record key {key} is an InsightFace header or identity record, not an image"
                )));
            }
        }
        let (h, payload) = self.read_image_record(key)?;
        let what = format!("record key {key}");
        let label = label_to_class(h.class_label(), &self.paths.rec, &what)?;
        if payload.is_empty() {
            return Err(self.err(format!("{what}: no image payload after the header")));
        }
        decode_image(&payload, label, &self.paths.rec, &what)
    }

    /// The identity records of an InsightFace pack: `(start, end)` image-key ranges.
    pub fn identity_ranges(&self) -> Result<Vec<(u64, u64)>> {
        let PackLayout::InsightFace {
            first_identity,
            end_identity,
        } = self.layout
        else {
            return Ok(Vec::new());
        };
        (first_identity..end_identity)
            .map(|k| {
                let h = self.read_header(k)?;
                let what = format!("identity record key {k}");
                if h.labels.len() < 2 {
                    return Err(self.err(format!(
                        "{what}: flag {} but an identity record needs labels (start, end)",
                        h.flag
                    )));
                }
                let s = label_to_class(h.labels[0], &self.paths.rec, &what)? as u64;
                let e = label_to_class(h.labels[1], &self.paths.rec, &what)? as u64;
                Ok((s, e))
            })
            .collect()
    }

    /// Class labels of every image record, in sample order (read once, in parallel, cached).
    pub fn labels(&self) -> Result<&[usize]> {
        if let Some(l) = self.labels.get() {
            return Ok(l);
        }
        let l = self
            .image_keys
            .par_iter()
            .map(|&k| {
                label_to_class(
                    self.read_header(k)?.class_label(),
                    &self.paths.rec,
                    &format!("record key {k}"),
                )
            })
            .collect::<Result<Vec<usize>>>()?;
        Ok(self.labels.get_or_init(|| l))
    }

    /// The class count of the pack and what gives it: the `property` file, the InsightFace
    /// header record 0 (its identity records), or, for an im2rec pack with neither, the
    /// largest label + 1.
    pub fn class_count(&self) -> Result<(usize, String)> {
        if let Some(p) = self.property {
            return Ok((
                p.num_classes,
                format!("the property file {}", self.paths.property.display()),
            ));
        }
        if let PackLayout::InsightFace {
            first_identity,
            end_identity,
        } = self.layout
        {
            return Ok((
                (end_identity - first_identity) as usize,
                format!("header record 0 (identity records {first_identity}..{end_identity})"),
            ));
        }
        let n = self.labels()?.iter().max().map_or(0, |m| m + 1);
        Ok((n, "the largest label + 1 (no property file)".into()))
    }

    /// Checks, before training, that every image record's label lies within the class count
    /// of [`RecordIo::class_count`]; the first record outside it is a [`DataError::Label`]
    /// naming the `.rec` file, the record key, the label and where the count came from.
    pub fn check_labels(&self) -> Result<()> {
        let labels = self.labels()?;
        let (classes, counted_by) = self.class_count()?;
        match labels.iter().position(|&l| l >= classes) {
            None => Ok(()),
            Some(i) => Err(DataError::Label {
                path: self.paths.rec.clone(),
                record: format!("record key {}", self.image_keys[i]),
                label: labels[i],
                classes,
                counted_by,
            }),
        }
    }
}

impl SampleSource for RecordIo {
    fn len(&self) -> usize {
        self.image_keys.len()
    }

    fn label(&self, index: usize) -> Result<usize> {
        if let Some(l) = self.labels.get() {
            return l
                .get(index)
                .copied()
                .ok_or_else(|| self.err(format!("sample {index} out of {}", l.len())));
        }
        let key = *self
            .image_keys
            .get(index)
            .ok_or_else(|| self.err(format!("sample {index} out of {}", self.image_keys.len())))?;
        label_to_class(
            self.read_header(key)?.class_label(),
            &self.paths.rec,
            &format!("record key {key}"),
        )
    }

    fn get(&self, index: usize) -> Result<ImageSample> {
        let key = *self
            .image_keys
            .get(index)
            .ok_or_else(|| self.err(format!("sample {index} out of {}", self.image_keys.len())))?;
        self.decode_key(key)
    }

    fn check_labels(&self) -> Result<()> {
        RecordIo::check_labels(self)
    }

    fn num_classes(&self) -> usize {
        if let Some(p) = self.property {
            return p.num_classes;
        }
        if let PackLayout::InsightFace {
            first_identity,
            end_identity,
        } = self.layout
        {
            return (end_identity - first_identity) as usize;
        }
        self.labels()
            .map(|l| l.iter().max().map_or(0, |m| m + 1))
            .unwrap_or(0)
    }
}

/// Writes RecordIO records and their index; files appear under their final names only when
/// [`RecordIoWriter::finish`] succeeds.
pub struct RecordIoWriter {
    paths: PackPaths,
    tmp_rec: PathBuf,
    /// `None` once finished (renamed into place).
    rec: Option<std::io::BufWriter<File>>,
    idx: String,
    pos: u64,
}

impl Drop for RecordIoWriter {
    /// A pack that was not finished (an error, a full disk) leaves no temporary `.rec` behind.
    fn drop(&mut self) {
        if self.rec.take().is_some() || self.tmp_rec.exists() {
            let _ = std::fs::remove_file(&self.tmp_rec);
        }
    }
}

impl RecordIoWriter {
    /// Starts a pack at `prefix` (writes `prefix.rec` and `prefix.idx`).
    pub fn create(prefix: &Path) -> Result<Self> {
        let paths = PackPaths::resolve(prefix);
        let tmp_rec = temp_path(&paths.rec);
        let f = File::create(&tmp_rec).map_err(|e| DataError::io(&tmp_rec, e))?;
        Ok(Self {
            paths,
            tmp_rec,
            rec: Some(std::io::BufWriter::new(f)),
            idx: String::new(),
            pos: 0,
        })
    }

    /// Appends logical record `key` = header + payload.
    pub fn write(&mut self, key: u64, header: &IrHeader, payload: &[u8]) -> Result<()> {
        let mut rec = header.to_bytes();
        rec.extend_from_slice(payload);
        let bytes = encode_record(&rec);
        let rec = self
            .rec
            .as_mut()
            .ok_or_else(|| DataError::Invalid("RecordIoWriter::write after finish".into()))?;
        rec.write_all(&bytes)
            .map_err(|e| DataError::io(&self.tmp_rec, e))?;
        self.idx += &format!("{key}\t{}\n", self.pos);
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Flushes and renames both files into place; returns the paths.
    /// On failure the temporary `.rec` is removed (by drop) and an earlier pack at the prefix
    /// is left as it was.
    pub fn finish(mut self) -> Result<PackPaths> {
        let mut rec = self
            .rec
            .take()
            .ok_or_else(|| DataError::Invalid("RecordIoWriter::finish called twice".into()))?;
        rec.flush().map_err(|e| DataError::io(&self.tmp_rec, e))?;
        rec.get_ref()
            .sync_all()
            .map_err(|e| DataError::io(&self.tmp_rec, e))?;
        drop(rec);
        crate::sample::write_atomic(&self.paths.idx, self.idx.as_bytes())?;
        std::fs::rename(&self.tmp_rec, &self.paths.rec)
            .map_err(|e| DataError::io(&self.paths.rec, e))?;
        Ok(self.paths.clone())
    }
}

/// Summary of a written pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackSummary {
    /// Paths written.
    pub paths: PackPaths,
    /// Image records.
    pub images: usize,
    /// Identity records (classes).
    pub identities: usize,
    /// Image size of the first image (height, width).
    pub image_size: (usize, usize),
}

/// Packs an image folder into `prefix.rec/.idx` + `property` in the InsightFace layout:
/// record 0 header `(a, b)`, image records `1..a` (flag 0, label = class, the original file
/// bytes as payload), identity records `a..b` (flag 2, labels = image key range).
/// Every image is decoded once (in parallel) to check it and its size.
pub fn pack_image_folder(folder: &ImageFolder, prefix: &Path) -> Result<PackSummary> {
    let n = folder.items.len();
    let c = folder.classes.len();
    let a = n as u64 + 1;
    let b = a + c as u64;
    if b >= 1 << 24 {
        return Err(DataError::Invalid(format!(
            "{n} images and {c} classes: keys beyond 2^24 are not exact as f32 labels"
        )));
    }
    let mut writer = RecordIoWriter::create(prefix)?;
    writer.write(0, &IrHeader::with_labels(vec![a as f32, b as f32], 0), &[])?;
    let mut size = None;
    let mut ranges = vec![(u64::MAX, 0u64); c];
    for chunk_start in (0..n).step_by(256) {
        let chunk = &folder.items[chunk_start..(chunk_start + 256).min(n)];
        let loaded = chunk
            .par_iter()
            .map(|(path, label)| {
                let bytes = crate::read::read_regular(path, crate::read::MAX_IMAGE_FILE_BYTES)?;
                let img = decode_image(&bytes, *label, path, "image")?;
                Ok((bytes, img.height, img.width))
            })
            .collect::<Result<Vec<_>>>()?;
        for (j, (bytes, h, w)) in loaded.into_iter().enumerate() {
            let i = chunk_start + j;
            let (path, label) = &folder.items[i];
            match size {
                None => size = Some((h, w)),
                Some(s) if s != (h, w) => {
                    return Err(DataError::format(
                        path,
                        format!(
                        "image is {h}x{w}, the pack's first image is {}x{}: align or resize first",
                        s.0, s.1
                    ),
                    ))
                }
                _ => {}
            }
            let key = i as u64 + 1;
            writer.write(key, &IrHeader::image(*label, key), &bytes)?;
            let r = &mut ranges[*label];
            r.0 = r.0.min(key);
            r.1 = r.1.max(key + 1);
        }
    }
    for (k, &(s, e)) in ranges.iter().enumerate() {
        let (s, e) = if s == u64::MAX { (0, 0) } else { (s, e) };
        let key = a + k as u64;
        writer.write(
            key,
            &IrHeader::with_labels(vec![s as f32, e as f32], key),
            &[],
        )?;
    }
    let paths = writer.finish()?;
    let (h, w) = size.unwrap_or((0, 0));
    crate::sample::write_atomic(&paths.property, format!("{c},{h},{w}").as_bytes())?;
    Ok(PackSummary {
        paths,
        images: n,
        identities: c,
        image_size: (h, w),
    })
}

/// Packs the image folder `from` (`root/<identity>/<image>`, class = sorted folder position)
/// into `prefix.rec/.idx` + `property` ([`pack_image_folder`]), creating `prefix`'s folder
/// first: what `visage data pack` does.
pub fn pack_folder(from: &Path, prefix: &Path) -> Result<PackSummary> {
    let folder = crate::ImageFolder::open(from)?;
    if let Some(parent) = prefix.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    }
    pack_image_folder(&folder, prefix)
}
