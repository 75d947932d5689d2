//! Whole-file reads with a stated limit: the one way this crate reads a file into memory.
//!
//! A path that names a named pipe, a socket, a device or a directory is refused before it is
//! opened (opening a FIFO for reading blocks until a writer appears, and reading it never
//! ends), and a file larger than the caller's limit is refused before any byte is allocated.
//! The read itself is bounded too, so a file that grows while it is read cannot grow memory
//! past the limit.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{DataError, Result};

/// Limit of text side files: `.idx` indexes, `pairs.txt`, landmark lists (1 GiB).
pub const MAX_TEXT_BYTES: u64 = 1 << 30;
/// Limit of one encoded image file (256 MiB).
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;
/// Limit of a `.bin` verification pack (8 GiB).
pub const MAX_BIN_BYTES: u64 = 8 << 30;
/// Limit of an IDX file, compressed or not, and of its decompressed content (4 GiB).
pub const MAX_IDX_BYTES: u64 = 4 << 30;
/// Limit of a RecordIO `property` file (`num_classes,height,width`: 4 KiB).
pub const MAX_PROPERTY_BYTES: u64 = 4 << 10;

/// What kind of filesystem object `meta` describes, for error messages.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    "not a regular file"
}

/// Checks that `path` (after following symbolic links) is a regular file and returns its
/// length; a directory, FIFO, socket or device is a [`DataError::Format`] naming it.
pub fn regular_file_len(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if !meta.is_file() {
        return Err(DataError::format(
            path,
            format!(
                "is {}, expected a regular file (refused: reading it could block forever)",
                kind_of(&meta)
            ),
        ));
    }
    Ok(meta.len())
}

/// Opens `path` for reading after checking that it is a regular file of at most `limit` bytes;
/// returns the file and its length.
pub fn open_regular(path: &Path, limit: u64) -> Result<(File, u64)> {
    let len = regular_file_len(path)?;
    if len > limit {
        return Err(DataError::format(
            path,
            format!(
                "file of {len} bytes is larger than the {limit}-byte limit for this kind of file"
            ),
        ));
    }
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    Ok((file, len))
}

/// Reads the whole regular file `path`, refusing non-regular files and files over `limit`
/// bytes (checked from the metadata before allocating). At most the size the metadata gave is
/// read: a file that grows while it is read (or a pseudo-file that reports size 0 and streams)
/// is an error, not an unbounded read; the buffer is reserved fallibly, so a file larger than
/// the memory left is an error, not an allocation abort.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let (file, len) = open_regular(path, limit)?;
    let mut out = Vec::new();
    out.try_reserve_exact(len as usize).map_err(|_| {
        DataError::format(
            path,
            format!("cannot allocate {len} bytes to read the file: not enough memory"),
        )
    })?;
    file.take(len.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| DataError::io(path, e))?;
    if out.len() as u64 > len {
        return Err(DataError::format(
            path,
            format!("file holds more than the {len} bytes its metadata gave when it was opened (it grew while it was read)"),
        ));
    }
    Ok(out)
}

/// [`read_regular`] for UTF-8 text; invalid UTF-8 is an error giving the byte offset.
pub fn read_regular_text(path: &Path, limit: u64) -> Result<String> {
    let bytes = read_regular(path, limit)?;
    String::from_utf8(bytes).map_err(|e| {
        DataError::format(
            path,
            format!("not UTF-8 text at byte {}", e.utf8_error().valid_up_to()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_directories_and_files_over_the_limit() {
        let d = std::env::temp_dir().join(format!("visage-read-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let e = read_regular(&d, 10).unwrap_err().to_string();
        assert!(e.contains("is a directory, expected a regular file"), "{e}");
        let f = d.join("f");
        std::fs::write(&f, b"0123456789x").unwrap();
        let e = read_regular(&f, 10).unwrap_err().to_string();
        assert!(
            e.contains("11 bytes is larger than the 10-byte limit"),
            "{e}"
        );
        assert_eq!(read_regular(&f, 11).unwrap(), b"0123456789x");
        std::fs::write(&f, b"\xff").unwrap();
        assert!(read_regular_text(&f, 11)
            .unwrap_err()
            .to_string()
            .contains("not UTF-8 text at byte 0"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_named_pipe_without_blocking() {
        let d = std::env::temp_dir().join(format!("visage-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("pipe");
        let ok = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            let e = read_regular(&p, 1 << 20).unwrap_err().to_string();
            assert!(e.contains("named pipe"), "{e}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
