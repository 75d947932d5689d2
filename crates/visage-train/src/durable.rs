//! Writes that lose nothing: whole files through a temporary sibling renamed into place, lines
//! appended whole or not at all, and content hashes to verify what is read back.
//!
//! Every file the trainer writes goes through here, so one test hook,
//! [`inject_write_fault`], makes any of them fail after a given number of bytes (a full disk,
//! or a kill in the middle of a write) on the calling thread.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::TrainError;

thread_local! {
    /// Bytes the calling thread may still write before an injected fault; `None`: no fault.
    static WRITE_BUDGET: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Test support: after `bytes` more bytes written through this module on the calling thread,
/// every write fails as a full disk does (the bytes up to the limit are written, the rest are
/// not). `None` lifts the fault. Counting is per thread, so parallel tests do not interfere.
pub fn inject_write_fault(bytes: Option<u64>) {
    WRITE_BUDGET.with(|b| b.set(bytes));
}

/// Writes `bytes` to `file`, honouring an injected fault: the bytes up to the budget are
/// written, then the write fails as a full disk does.
fn write_budgeted(file: &mut File, bytes: &[u8]) -> std::io::Result<()> {
    let allowed = WRITE_BUDGET.with(|b| match b.get() {
        None => bytes.len(),
        Some(left) => {
            let n = (left as usize).min(bytes.len());
            b.set(Some(left - n as u64));
            n
        }
    });
    file.write_all(&bytes[..allowed])?;
    if allowed < bytes.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "no space left on device (injected fault)",
        ));
    }
    Ok(())
}

/// [`write_budgeted`] with the error naming `path`.
fn write_counted(file: &mut File, path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    write_budgeted(file, bytes).map_err(|e| TrainError::io(path, e))
}

/// A fresh temporary sibling for a whole-file write: `.NAME.tmp-PID-N`
/// ([`visage_io::temporary_sibling`]).
pub fn temporary_sibling(path: &Path) -> PathBuf {
    visage_io::temporary_sibling(path)
}

/// Writes `bytes` as the new content of `path`: into a temporary sibling, flushed to disk, then
/// renamed over `path`. A failure at any point leaves `path` as it was and removes the
/// temporary file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    visage_io::write_atomic_with(path, |f| write_budgeted(f, bytes)).map_err(|e| {
        let (path, source) = e.into_path_and_io();
        TrainError::io(&path, source)
    })
}

/// Writes `bytes` to a new file `path` (inside a folder that is itself renamed into place
/// later, so no temporary name is needed), flushed to disk.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let mut f = File::create(path).map_err(|e| TrainError::io(path, e))?;
    write_counted(&mut f, path, bytes)?;
    f.sync_all().map_err(|e| TrainError::io(path, e))
}

/// Appends `line` and a newline to `path` (created if missing) in one write; if the write
/// fails, the file is cut back to its previous length, so it only ever holds whole lines.
pub fn append_line(path: &Path, line: &str) -> Result<(), TrainError> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TrainError::io(path, e))?;
    let before = f.metadata().map_err(|e| TrainError::io(path, e))?.len();
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    if let Err(e) = write_counted(&mut f, path, &bytes)
        .and_then(|()| f.flush().map_err(|e| TrainError::io(path, e)))
    {
        let _ = f.set_len(before);
        return Err(e);
    }
    Ok(())
}

/// SHA-256 of `bytes`, as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("visage-durable-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn sha256_of_known_strings() {
        // FIPS 180-2 examples.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_failed_whole_file_write_keeps_the_old_content() {
        let d = scratch("file");
        let p = d.join("report.json");
        write_file(&p, b"old content").unwrap();
        for budget in [0, 1, 5, 10] {
            inject_write_fault(Some(budget));
            assert!(write_file(&p, b"new content, longer").is_err());
            inject_write_fault(None);
            assert_eq!(std::fs::read(&p).unwrap(), b"old content");
            assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "temporary left");
        }
        write_file(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn a_failed_append_leaves_whole_lines_only() {
        let d = scratch("lines");
        let p = d.join("metrics.jsonl");
        append_line(&p, "{\"step\":1}").unwrap();
        for budget in [0, 1, 7] {
            inject_write_fault(Some(budget));
            assert!(append_line(&p, "{\"step\":2,\"loss\":0.5}").is_err());
            inject_write_fault(None);
            assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"step\":1}\n");
        }
        append_line(&p, "{\"step\":2}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"step\":1}\n{\"step\":2}\n"
        );
    }
}
