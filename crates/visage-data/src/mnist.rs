//! MNIST IDX files (big-endian; images magic 0x00000803, labels magic 0x00000801), plain or
//! gzip-compressed (detected by the gzip magic, whatever the file name).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::read::{read_regular, MAX_IDX_BYTES};
use crate::sample::ImageSample;
use crate::source::SampleSource;

/// Magic of an IDX file of u8 images (3 dimensions).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an IDX file of u8 labels (1 dimension).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Reads the IDX file `path` (a regular file of at most [`MAX_IDX_BYTES`]), gunzipping it when
/// it starts with the gzip magic 1f 8b (see [`gunzip_idx`]).
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = read_regular(path, MAX_IDX_BYTES)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        gunzip_idx(&raw, path)
    } else {
        Ok(raw)
    }
}

/// Bytes per element of an IDX type code (the magic's third byte), `None` for unknown codes.
fn idx_element_size(code: u8) -> Option<u64> {
    match code {
        0x08 | 0x09 => Some(1),
        0x0B => Some(2),
        0x0C | 0x0D => Some(4),
        0x0E => Some(8),
        _ => None,
    }
}

/// Reads from `r` into `out` until it holds `n` bytes or the stream ends, growing `out` in
/// steps of at most 1 MiB reserved fallibly (running out of memory is an error, not an abort).
fn read_up_to(r: &mut impl Read, out: &mut Vec<u8>, n: u64, path: &Path) -> Result<()> {
    while (out.len() as u64) < n {
        let want = (n - out.len() as u64).min(1 << 20) as usize;
        out.try_reserve(want).map_err(|_| {
            DataError::format(
                path,
                format!(
                    "cannot allocate memory for the {n} decompressed bytes the header announces"
                ),
            )
        })?;
        let start = out.len();
        out.resize(start + want, 0);
        let got = loop {
            match r.read(&mut out[start..]) {
                Ok(g) => break g,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    out.truncate(start);
                    return Err(DataError::format(path, format!("corrupt gzip stream: {e}")));
                }
            }
        };
        out.truncate(start + got);
        if got == 0 {
            break;
        }
    }
    Ok(())
}

/// Decompresses a gzip'd IDX file (one or more gzip members), never past what the format
/// needs: the IDX header is decompressed first, and the rest is read only up to the size that
/// header announces (itself at most [`MAX_IDX_BYTES`]); a stream that decompresses to more is
/// an error, so a small file cannot expand into unbounded memory. A header with an unknown type
/// code, or a stream shorter than its header, is returned as is for the parser to report.
pub fn gunzip_idx(raw: &[u8], path: &Path) -> Result<Vec<u8>> {
    let mut dec = flate2::read::MultiGzDecoder::new(raw);
    let mut out = Vec::new();
    read_up_to(&mut dec, &mut out, 4, path)?;
    if out.len() < 4 {
        return Ok(out);
    }
    let Some(element) = idx_element_size(out[2]) else {
        return Ok(out);
    };
    let ndims = out[3] as u64;
    let header = 4 + 4 * ndims;
    read_up_to(&mut dec, &mut out, header, path)?;
    if (out.len() as u64) < header {
        return Ok(out);
    }
    let mut total = Some(element);
    for d in out[4..header as usize].chunks_exact(4) {
        let d = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as u64;
        total = total.and_then(|t| t.checked_mul(d));
    }
    let total = total
        .and_then(|t| t.checked_add(header))
        .filter(|&t| t <= MAX_IDX_BYTES)
        .ok_or_else(|| {
            DataError::format(
                path,
                format!("the gzip'd IDX header announces more than the {MAX_IDX_BYTES}-byte limit"),
            )
        })?;
    read_up_to(&mut dec, &mut out, total + 1, path)?;
    if out.len() as u64 > total {
        return Err(DataError::format(
            path,
            format!("the gzip stream decompresses past the {total} bytes its IDX header announces"),
        ));
    }
    Ok(out)
}

fn be_u32(bytes: &[u8], offset: usize, path: &Path, field: &str) -> Result<u32> {
    bytes
        .get(offset..offset + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| {
            DataError::format(
                path,
                format!(
                    "truncated IDX header: no {field} at byte {offset} (file has {} bytes)",
                    bytes.len()
                ),
            )
        })
}

/// IDX u8 images: `(pixels, count, rows, cols)`.
pub fn parse_idx_images(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, usize, usize, usize)> {
    let magic = be_u32(bytes, 0, path, "magic")?;
    if magic != IDX_IMAGES_MAGIC {
        return Err(DataError::format(
            path,
            format!("IDX images magic is {magic:#010x}, expected {IDX_IMAGES_MAGIC:#010x}"),
        ));
    }
    let count = be_u32(bytes, 4, path, "image count")? as usize;
    let rows = be_u32(bytes, 8, path, "rows")? as usize;
    let cols = be_u32(bytes, 12, path, "cols")? as usize;
    if rows == 0 || cols == 0 {
        return Err(DataError::format(
            path,
            format!("header says images of {rows}x{cols} pixels: an image needs at least one row and one column"),
        ));
    }
    let need = count as u128 * rows as u128 * cols as u128;
    let have = bytes.len() as u128 - 16;
    if need != have {
        return Err(DataError::format(
            path,
            format!("header says {count} images of {rows}x{cols} = {need} bytes after the 16-byte header, the file has {have}"),
        ));
    }
    Ok((bytes[16..].to_vec(), count, rows, cols))
}

/// IDX u8 labels.
pub fn parse_idx_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let magic = be_u32(bytes, 0, path, "magic")?;
    if magic != IDX_LABELS_MAGIC {
        return Err(DataError::format(
            path,
            format!("IDX labels magic is {magic:#010x}, expected {IDX_LABELS_MAGIC:#010x}"),
        ));
    }
    let count = be_u32(bytes, 4, path, "label count")? as usize;
    if bytes.len() - 8 != count {
        return Err(DataError::format(
            path,
            format!(
                "header says {count} labels after the 8-byte header, the file has {} bytes",
                bytes.len() - 8
            ),
        ));
    }
    Ok(bytes[8..].to_vec())
}

/// An MNIST-style image set with labels; grey images are served as RGB (channel replicated).
#[derive(Debug, Clone)]
pub struct Mnist {
    /// Images file.
    pub images_path: PathBuf,
    /// `count * rows * cols` grey pixels.
    pub pixels: Vec<u8>,
    /// Labels, one per image.
    pub labels: Vec<u8>,
    /// Image rows.
    pub rows: usize,
    /// Image columns.
    pub cols: usize,
}

impl Mnist {
    /// Reads an images file and its labels file; errors when the counts differ.
    pub fn open(images: &Path, labels: &Path) -> Result<Self> {
        let (pixels, count, rows, cols) = parse_idx_images(&read_maybe_gz(images)?, images)?;
        let l = parse_idx_labels(&read_maybe_gz(labels)?, labels)?;
        if l.len() != count {
            return Err(DataError::format(
                labels,
                format!(
                    "{} labels for {count} images in {}",
                    l.len(),
                    images.display()
                ),
            ));
        }
        Ok(Self {
            images_path: images.to_path_buf(),
            pixels,
            labels: l,
            rows,
            cols,
        })
    }

    /// The images and labels files of one split (`"train"` or `"t10k"`) of an MNIST-format
    /// folder: `{split}-images-idx3-ubyte[.gz]` (or `{split}-images.idx3-ubyte`) and the
    /// matching labels file. Errors name the folder and the file that is missing.
    pub fn split_files(dir: &Path, split: &str) -> Result<(PathBuf, PathBuf)> {
        if !dir.is_dir() {
            return Err(DataError::format(
                dir,
                "not a folder (expected an MNIST-format folder with IDX files)",
            ));
        }
        let images = [
            format!("{split}-images-idx3-ubyte.gz"),
            format!("{split}-images-idx3-ubyte"),
            format!("{split}-images.idx3-ubyte"),
        ]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
        .ok_or_else(|| DataError::format(dir, format!("no {split}-images-idx3-ubyte[.gz]")))?;
        let labels = Self::labels_path_for(&images)
            .filter(|p| p.exists())
            .ok_or_else(|| DataError::format(dir, format!("no {split}-labels-idx1-ubyte[.gz]")))?;
        Ok((images, labels))
    }

    /// Opens one split (`"train"` or `"t10k"`) of an MNIST-format folder
    /// (see [`Mnist::split_files`]).
    pub fn open_split(dir: &Path, split: &str) -> Result<Self> {
        let (images, labels) = Self::split_files(dir, split)?;
        Self::open(&images, &labels)
    }

    /// The usual labels file next to an images file: `*-images-idx3-ubyte*` ->
    /// `*-labels-idx1-ubyte*`, `*-images.idx3-ubyte` -> `*-labels.idx1-ubyte`.
    pub fn labels_path_for(images: &Path) -> Option<PathBuf> {
        let name = images.file_name()?.to_str()?;
        let l = name.replace("images", "labels").replace("idx3", "idx1");
        (l != name).then(|| images.with_file_name(l))
    }
}

impl SampleSource for Mnist {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn label(&self, index: usize) -> Result<usize> {
        self.labels.get(index).map(|&l| l as usize).ok_or_else(|| {
            DataError::Invalid(format!(
                "{}: index {index} out of {}",
                self.images_path.display(),
                self.labels.len()
            ))
        })
    }

    fn get(&self, index: usize) -> Result<ImageSample> {
        let label = self.label(index)?;
        let n = self.rows * self.cols;
        let grey = &self.pixels[index * n..(index + 1) * n];
        let pixels = grey.iter().flat_map(|&g| [g, g, g]).collect();
        Ok(ImageSample {
            pixels,
            height: self.rows,
            width: self.cols,
            label,
        })
    }

    fn num_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&m| m as usize + 1)
    }
}
