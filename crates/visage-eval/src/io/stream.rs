//! Reading an embedding matrix in row chunks, so that scoring can start before the whole file
//! is read (`visage identify` streams its distractors through [`crate::identification::identify_stream`]).
//!
//! A `.npy` file is opened, its header parsed and its size checked against the shape (the
//! errors of [`super::read_embeddings`]), then [`EmbeddingReader::read_rows`] reads the next
//! rows straight into the caller's `f32` buffer (f32 data: no intermediate byte buffer; f64
//! data is converted chunk by chunk); [`EmbeddingReader::read_rows_at`] reads chosen rows
//! back. A `.safetensors` file is read whole when opened (its
//! header does not say where the data of one tensor is without parsing it all) and handed out
//! from memory.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::npy::{parse_npy_header, ElementType};
use super::{embedding_shape, regular_file_metadata, FileFormat, EMBEDDINGS_KEY};
use crate::{Embeddings, EvalError};

/// An embedding matrix `[rows, dim]` read in row chunks.
#[derive(Debug)]
pub struct EmbeddingReader {
    path: PathBuf,
    rows: usize,
    dim: usize,
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// A `.npy` file positioned at the next unread row.
    File {
        file: File,
        dtype: ElementType,
        data_start: u64,
        next_row: usize,
    },
    /// A matrix already in memory (`.safetensors`, or [`EmbeddingReader::from_embeddings`]).
    Memory {
        embeddings: Embeddings,
        next_row: usize,
    },
}

impl EmbeddingReader {
    /// Opens an embedding matrix (`.npy`: header only; `.safetensors`: key `embeddings`, read
    /// whole). Errors as [`super::read_embeddings`] would on a bad header, shape or size.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, EvalError> {
        Self::open_key(path, EMBEDDINGS_KEY)
    }

    /// Like [`EmbeddingReader::open`]; `key` selects the safetensors tensor.
    pub fn open_key(path: impl AsRef<Path>, key: &str) -> Result<Self, EvalError> {
        let path = path.as_ref();
        match FileFormat::of(path)? {
            FileFormat::Safetensors => {
                let embeddings = super::read_embeddings_key(path, key)?;
                Ok(Self {
                    path: path.to_path_buf(),
                    rows: embeddings.rows,
                    dim: embeddings.dim,
                    source: Source::Memory {
                        embeddings,
                        next_row: 0,
                    },
                })
            }
            FileFormat::Npy => Self::open_npy(path),
        }
    }

    /// Wraps a matrix already in memory.
    pub fn from_embeddings(embeddings: Embeddings) -> Self {
        Self {
            path: PathBuf::from("<memory>"),
            rows: embeddings.rows,
            dim: embeddings.dim,
            source: Source::Memory {
                embeddings,
                next_row: 0,
            },
        }
    }

    fn open_npy(path: &Path) -> Result<Self, EvalError> {
        let meta = regular_file_metadata(path)?;
        let file_len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
        let mut file = File::open(path).map_err(|e| EvalError::io(path, e))?;
        // The fixed part (magic, version, header length), then the announced header.
        let mut prefix = Vec::new();
        read_up_to(&mut file, &mut prefix, 12.min(file_len)).map_err(|e| EvalError::io(path, e))?;
        let header_end = match prefix.get(6) {
            Some(1) if prefix.len() >= 10 => {
                10 + u16::from_le_bytes([prefix[8], prefix[9]]) as usize
            }
            Some(2 | 3) if prefix.len() >= 12 => {
                12 + u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]) as usize
            }
            _ => prefix.len(),
        };
        let want = header_end.min(file_len);
        if want > prefix.len() {
            let more = want - prefix.len();
            read_up_to(&mut file, &mut prefix, more).map_err(|e| EvalError::io(path, e))?;
        }
        let header = parse_npy_header(path, &prefix, file_len)?;
        let (rows, dim) = embedding_shape(path, header.dtype, &header.shape)?;
        if prefix.len() != header.data_start {
            // The header was read exactly; anything else is a short read.
            return Err(EvalError::npy(path, "could not read the whole header"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            rows,
            dim,
            source: Source::File {
                file,
                dtype: header.dtype,
                data_start: header.data_start as u64,
                next_row: 0,
            },
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The file read (`<memory>` for [`EmbeddingReader::from_embeddings`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole matrix if it is already in memory (then nothing needs reading).
    pub fn in_memory(&self) -> Option<&Embeddings> {
        match &self.source {
            Source::Memory { embeddings, .. } => Some(embeddings),
            Source::File { .. } => None,
        }
    }

    /// Reads the next `out.len() / dim` rows into `out` (whose length must be a multiple of
    /// `dim`, and at most the rows left). An I/O error (the file shrank, a read failed) is
    /// returned as [`EvalError::Io`].
    pub fn read_rows(&mut self, out: &mut [f32]) -> Result<(), EvalError> {
        let dim = self.dim.max(1);
        assert_eq!(out.len() % dim, 0, "read_rows: whole rows only");
        let n = out.len() / dim;
        match &mut self.source {
            Source::Memory {
                embeddings,
                next_row,
            } => {
                assert!(*next_row + n <= self.rows, "read_rows past the last row");
                let start = *next_row * self.dim;
                out.copy_from_slice(&embeddings.data[start..start + out.len()]);
                *next_row += n;
                Ok(())
            }
            Source::File {
                file,
                dtype,
                next_row,
                ..
            } => {
                assert!(*next_row + n <= self.rows, "read_rows past the last row");
                let io = |e| EvalError::io(&self.path, e);
                match dtype {
                    ElementType::F32 => {
                        // SAFETY: `out` is an initialised `[f32]`; viewing its storage as
                        // bytes is sound (same memory, `u8` has no alignment), and every bit
                        // pattern written through it is a valid f32.
                        let bytes = unsafe {
                            std::slice::from_raw_parts_mut(
                                out.as_mut_ptr().cast::<u8>(),
                                std::mem::size_of_val(out),
                            )
                        };
                        file.read_exact(bytes).map_err(io)?;
                        #[cfg(target_endian = "big")]
                        for v in out.iter_mut() {
                            *v = f32::from_bits(u32::from_le(v.to_bits()));
                        }
                    }
                    _ => {
                        // f64 (embedding_shape admits only f32 and f64): converted in pieces.
                        let mut buf = vec![0u8; 8 * dim * 1024.min(n.max(1))];
                        for piece in out.chunks_mut(dim * 1024) {
                            let bytes = &mut buf[..8 * piece.len()];
                            file.read_exact(bytes).map_err(io)?;
                            for (v, c) in piece.iter_mut().zip(bytes.chunks_exact(8)) {
                                *v = f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32;
                            }
                        }
                    }
                }
                *next_row += n;
                Ok(())
            }
        }
    }

    /// Goes back to the first row.
    pub fn rewind(&mut self) -> Result<(), EvalError> {
        use std::io::{Seek, SeekFrom};
        match &mut self.source {
            Source::Memory { next_row, .. } => *next_row = 0,
            Source::File {
                file,
                data_start,
                next_row,
                ..
            } => {
                file.seek(SeekFrom::Start(*data_start))
                    .map_err(|e| EvalError::io(&self.path, e))?;
                *next_row = 0;
            }
        }
        Ok(())
    }

    /// Reads rows `ids` (increasing, each `< rows`) into one `[ids.len(), dim]` buffer, then
    /// goes back to the first row.
    pub fn read_rows_at(&mut self, ids: &[u32]) -> Result<Vec<f32>, EvalError> {
        use std::io::{Seek, SeekFrom};
        let dim = self.dim;
        let mut out = vec![0f32; ids.len() * dim];
        let mut k = 0;
        while k < ids.len() {
            // a run of consecutive rows is one read
            let mut end = k + 1;
            while end < ids.len() && ids[end] == ids[end - 1] + 1 {
                end += 1;
            }
            let first = ids[k] as usize;
            assert!(
                first + (end - k) <= self.rows,
                "read_rows_at past the last row"
            );
            if let Source::File {
                file,
                dtype,
                data_start,
                next_row,
            } = &mut self.source
            {
                let offset = *data_start + (first * dim * dtype.size()) as u64;
                file.seek(SeekFrom::Start(offset))
                    .map_err(|e| EvalError::io(&self.path, e))?;
                *next_row = first;
            } else if let Source::Memory { next_row, .. } = &mut self.source {
                *next_row = first;
            }
            self.read_rows(&mut out[k * dim..end * dim])?;
            k = end;
        }
        self.rewind()?;
        Ok(out)
    }

    /// Reads every remaining row into one matrix.
    pub fn read_all(mut self) -> Result<Embeddings, EvalError> {
        if let Source::Memory {
            embeddings,
            next_row: 0,
        } = self.source
        {
            return Ok(embeddings);
        }
        let rows = match &self.source {
            Source::Memory { next_row, .. } | Source::File { next_row, .. } => {
                self.rows - *next_row
            }
        };
        let mut data = zeroed_f32(&self.path, rows * self.dim)?;
        self.read_rows(&mut data)?;
        Embeddings::new(rows, self.dim, data)
    }
}

/// Reads up to `n` more bytes (fewer only at the end of the file) onto `buf`.
fn read_up_to(file: &mut File, buf: &mut Vec<u8>, n: usize) -> std::io::Result<()> {
    file.take(n as u64).read_to_end(buf).map(|_| ())
}

/// A zeroed `Vec<f32>` of `len` values, allocated fallibly (an out-of-memory error names
/// `path`). The zeroed allocation is lazy for large sizes: pages are touched only when written.
pub(crate) fn zeroed_f32(path: &Path, len: usize) -> Result<Vec<f32>, EvalError> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let oom = || {
        EvalError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!("cannot allocate {len} f32 values to read the file"),
            ),
        )
    };
    let layout = std::alloc::Layout::array::<f32>(len).map_err(|_| oom())?;
    // SAFETY: the layout has a non-zero size; on success the block holds `len` zeroed f32
    // values (all-zero bits are 0.0) allocated by the global allocator with the layout of a
    // `Vec<f32>` of capacity `len`, so `Vec::from_raw_parts` takes ownership soundly.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout).cast::<f32>();
        if ptr.is_null() {
            return Err(oom());
        }
        Ok(Vec::from_raw_parts(ptr, len, len))
    }
}
