//! Whole-file writes that leave either the old content or the new one, and reads that never
//! block on a pipe nor abort on a huge file.
//!
//! [`write_atomic`] writes into a temporary sibling (`.NAME.tmp-PID-N`, in the target's own
//! folder so that the rename stays on one file system), flushes it to disk (`fsync`), renames
//! it over the target and, on Unix, flushes the folder so that the rename itself survives a
//! power cut. On any failure the temporary is removed and the target is as it was.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::IoError;

/// Distinguishes the temporaries of concurrent writes from one process.
static NEXT_TEMPORARY: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary sibling of `path`: `.NAME.tmp-PID-N` in the same folder (every name
/// holds `.tmp`, so leftovers are easy to find; no two calls in one process share one).
pub fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let n = NEXT_TEMPORARY.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Writes `bytes` as the new content of `path` (see the module docs). The folder must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// [`write_atomic`] with the content written by `write` into the temporary file (for a
/// writer that streams, or one that counts bytes); an error from `write` aborts the write,
/// removes the temporary and leaves `path` as it was.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), IoError> {
    let tmp = temporary_sibling(path);
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| IoError::io("creating", &tmp, e))?;
        write(&mut file).map_err(|e| IoError::io("writing", &tmp, e))?;
        file.sync_all()
            .map_err(|e| IoError::io("flushing", &tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| IoError::io("renaming onto", path, e))
    })();
    if result.is_err() {
        // A full disk must not stay full of a half-written temporary.
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    sync_parent(path);
    result
}

/// A fresh temporary sibling of `path` that keeps its extension, `.STEM.tmp-PID-N.EXT`, for
/// writers that pick the format from the file name (image encoders).
pub fn temporary_sibling_keeping_extension(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let n = NEXT_TEMPORARY.fetch_add(1, Ordering::Relaxed);
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    path.with_file_name(format!(".{stem}.tmp-{}-{n}{ext}", std::process::id()))
}

/// Why [`write_atomic_by_path`] failed: the producer's own error, or the file layer's.
#[derive(Debug)]
pub enum ByPathError<E> {
    /// `produce` failed.
    Produce(E),
    /// Flushing or renaming the temporary failed.
    File(IoError),
}

/// [`write_atomic`] for a producer that creates the file itself from a path (an image or
/// plot encoder): `produce` writes the temporary at the path it is given (same extension as
/// `path`); then the temporary is flushed to disk and renamed over `path`. On any failure the
/// temporary is removed and `path` is as it was.
pub fn write_atomic_by_path<E>(
    path: &Path,
    produce: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), ByPathError<E>> {
    let tmp = temporary_sibling_keeping_extension(path);
    if let Err(e) = produce(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ByPathError::Produce(e));
    }
    let result = File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| IoError::io("flushing", &tmp, e))
        .and_then(|()| {
            std::fs::rename(&tmp, path).map_err(|e| IoError::io("renaming onto", path, e))
        });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(ByPathError::File(e));
    }
    sync_parent(path);
    Ok(())
}

/// Flushes the folder holding `path` (the rename's directory entry); best effort, Unix only.
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    {
        let dir = parent_dir(path);
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The folder of `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates the folder that will hold `path` (and its parents), if missing.
pub fn create_parent_dir(path: &Path) -> Result<(), IoError> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir).map_err(|e| IoError::io("creating", dir, e))
}

/// The metadata of `path`, or [`IoError::NotAFile`] unless it is a regular file (a named
/// pipe would block a reader forever; a folder or a device is not a file).
pub fn regular_file_metadata(path: &Path) -> Result<std::fs::Metadata, IoError> {
    let meta = std::fs::metadata(path).map_err(|e| IoError::io("reading", path, e))?;
    if !meta.is_file() {
        return Err(IoError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(meta)
}

/// Reads a whole regular file: at most the size its metadata gives, into a buffer reserved
/// fallibly, so that a file larger than the memory available is [`IoError::TooLarge`], not
/// an allocation abort.
pub fn read_regular_file(path: &Path) -> Result<Vec<u8>, IoError> {
    let meta = regular_file_metadata(path)?;
    let too_large = || IoError::TooLarge {
        path: path.to_path_buf(),
        bytes: meta.len(),
    };
    let len = usize::try_from(meta.len()).map_err(|_| too_large())?;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(len).map_err(|_| too_large())?;
    File::open(path)
        .and_then(|f| f.take(meta.len()).read_to_end(&mut bytes))
        .map_err(|e| IoError::io("reading", path, e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("visage-io-fs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_write_replaces_the_content_and_leaves_no_temporary() {
        let d = dir("replace");
        let p = d.join("a.txt");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert_eq!(names(&d), ["a.txt"]);
    }

    #[test]
    fn a_failing_writer_leaves_the_old_content_and_no_temporary() {
        let d = dir("fail");
        let p = d.join("a.txt");
        std::fs::write(&p, b"old").unwrap();
        let e = write_atomic_with(&p, |f| {
            f.write_all(b"half")?;
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "disk full",
            ))
        })
        .unwrap_err();
        assert!(e.to_string().contains("disk full"), "{e}");
        assert_eq!(
            e.io_source().map(|s| s.kind()),
            Some(std::io::ErrorKind::StorageFull)
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(names(&d), ["a.txt"]);
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_it_unless_created() {
        let d = dir("missing");
        let p = d.join("sub").join("a.bin");
        let e = write_atomic(&p, b"x").unwrap_err();
        assert!(e.to_string().contains("sub"), "{e}");
        create_parent_dir(&p).unwrap();
        write_atomic(&p, b"x").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
    }

    #[test]
    fn temporaries_are_distinct_and_hidden_beside_the_target() {
        let p = Path::new("/x/y/model.bin");
        let (a, b) = (temporary_sibling(p), temporary_sibling(p));
        assert_ne!(a, b);
        assert_eq!(a.parent(), p.parent());
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".model.bin.tmp-"), "{name}");
    }

    #[test]
    fn a_producer_by_path_keeps_the_extension_and_its_failure_leaves_nothing() {
        let d = dir("bypath");
        let p = d.join("roc.png");
        write_atomic_by_path(&p, |tmp| {
            assert_eq!(tmp.extension().unwrap(), "png");
            std::fs::write(tmp, b"png bytes")
        })
        .unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"png bytes");
        let e = write_atomic_by_path(&p, |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err("encoder failed")
        })
        .unwrap_err();
        assert!(matches!(e, ByPathError::Produce("encoder failed")));
        assert_eq!(std::fs::read(&p).unwrap(), b"png bytes");
        assert_eq!(names(&d), ["roc.png"]);
    }

    #[test]
    fn folders_are_not_read_and_files_are_read_whole() {
        let d = dir("read");
        let e = read_regular_file(&d).unwrap_err();
        assert!(matches!(e, IoError::NotAFile { .. }), "{e}");
        assert!(e.to_string().contains("not a regular file"));
        let p = d.join("f");
        std::fs::write(&p, [1u8, 2, 3]).unwrap();
        assert_eq!(read_regular_file(&p).unwrap(), [1, 2, 3]);
        let e = read_regular_file(&d.join("absent")).unwrap_err();
        assert!(e.to_string().contains("absent"), "{e}");
    }
}
