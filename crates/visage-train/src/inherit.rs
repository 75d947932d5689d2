//! Config inheritance: a run config may name a base config and override parts of it, as
//! arcface_torch's `configs/base.py` is imported and amended by each of its configs.
//!
//! ```toml
//! base = "base/synth.toml"   # relative to this file's folder; before any [table]
//!
//! [head]
//! kind = "cosface"
//! scale = 16.0
//! margin = 0.2
//! ```
//!
//! The base is read (and its own `base`, if any, resolved first: chains are allowed), then
//! the child is merged into it with [`merge_tables`]:
//! - a key of the child replaces the base's value of that key;
//! - where both values are tables, they merge key by key, recursively; except that two
//!   tables naming different `kind`s (e.g. `[optim] kind = "adamw"` over an SGD base) do not
//!   merge: the child's table replaces the base's whole, so that no field of the old kind
//!   (`momentum`) is left behind;
//! - arrays are values like any other: the child's array replaces the base's.
//!
//! TOML has no null, so a child cannot remove a key of its base except by replacing the
//! whole table through a different `kind`. The `base` key itself is removed from the
//! result, which is what [`crate::TrainConfig`] then reads (unknown keys are rejected after
//! merging, as in a single file). A run directory saves the resolved config, so resuming a
//! run does not need the base.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// The top-level key that names a config's base.
pub const BASE_KEY: &str = "base";

/// The longest chain of bases followed (a config, its base, the base's base, ...).
pub const MAX_CHAIN: usize = 16;

/// The largest config file read, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// What can go wrong while resolving a config's bases.
#[derive(Debug, Error)]
pub enum InheritError {
    /// A config file (the one asked for or a base) cannot be read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why it could not be read.
        message: String,
    },
    /// A base named by a config does not exist or cannot be read.
    #[error("{child}: its base {base} cannot be read: {message}")]
    Base {
        /// The config whose `base` key names the file.
        child: String,
        /// The base as resolved against the child's folder.
        base: String,
        /// Why it could not be read.
        message: String,
    },
    /// A config file is not valid TOML.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// `base` is not a string.
    #[error("{path}: `base` must be a string, the base config's path relative to this file's folder (found {found})")]
    BadBase {
        /// The file.
        path: String,
        /// The TOML type found.
        found: String,
    },
    /// A config is (through its bases) its own base.
    #[error("config bases form a cycle: {chain}")]
    Cycle {
        /// The files, `a -> b -> a`.
        chain: String,
    },
    /// More than [`MAX_CHAIN`] files in one chain of bases.
    #[error("config bases: more than {MAX_CHAIN} files in the chain {chain}")]
    TooDeep {
        /// The files followed.
        chain: String,
    },
}

/// A config with its bases merged in.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The merged table, without the `base` key.
    pub table: toml::Table,
    /// The files read: the config asked for first, then its base, the base's base, ...
    pub files: Vec<PathBuf>,
}

impl Resolved {
    /// The files as `child.toml <- base.toml <- ...`, for messages.
    pub fn describe(&self) -> String {
        self.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" <- ")
    }
}

/// Merges `child` into `base`: see the module documentation for the rules.
pub fn merge_tables(mut base: toml::Table, child: toml::Table) -> toml::Table {
    for (key, value) in child {
        let merged = match (base.remove(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(c)) => {
                let same_kind = match (b.get("kind"), c.get("kind")) {
                    (Some(x), Some(y)) => x == y,
                    _ => true,
                };
                if same_kind {
                    toml::Value::Table(merge_tables(b, c))
                } else {
                    toml::Value::Table(c)
                }
            }
            (_, c) => c,
        };
        base.insert(key, merged);
    }
    base
}

fn chain_text(files: &[PathBuf], last: &Path) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .chain(std::iter::once(last.display().to_string()))
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Parses `text` (the contents of `path`) as a TOML table.
pub fn parse_table(path: &Path, text: &str) -> Result<toml::Table, InheritError> {
    toml::from_str::<toml::Table>(text).map_err(|e| InheritError::Syntax {
        path: path.display().to_string(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// Reads `path` and the chain of bases it names, and merges them (the base first, each
/// child over it). Every error names the file at fault (and, for a missing base, the file
/// that names it).
pub fn resolve_file(path: &Path) -> Result<Resolved, InheritError> {
    let text = read_config(path).map_err(|message| InheritError::Read {
        path: path.display().to_string(),
        message,
    })?;
    resolve_text(path, &text)
}

/// A regular file of at most [`MAX_CONFIG_BYTES`] (a named pipe is refused, not waited on).
fn read_config(path: &Path) -> Result<String, String> {
    visage_data::read::read_regular_text(path, MAX_CONFIG_BYTES).map_err(|e| e.to_string())
}

/// As [`resolve_file`], with the text of `path` already read.
pub fn resolve_text(path: &Path, text: &str) -> Result<Resolved, InheritError> {
    let read = read_config;
    let mut files = vec![path.to_path_buf()];
    // Canonical paths of the files read, for the cycle check (a file that cannot be
    // canonicalised has been read, so this only fails on a race; fall back to the path).
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut seen = vec![canonical(path)];
    let mut tables = vec![parse_table(path, text)?];
    loop {
        let current = files.last().expect("at least the first file").clone();
        let table = tables.last_mut().expect("one table per file");
        let Some(base) = table.remove(BASE_KEY) else {
            break;
        };
        let toml::Value::String(base) = base else {
            return Err(InheritError::BadBase {
                path: current.display().to_string(),
                found: base.type_str().to_string(),
            });
        };
        let folder = current.parent().unwrap_or(Path::new(""));
        let base_path = folder.join(&base);
        let key = canonical(&base_path);
        if seen.contains(&key) {
            return Err(InheritError::Cycle {
                chain: chain_text(&files, &base_path),
            });
        }
        if files.len() >= MAX_CHAIN {
            return Err(InheritError::TooDeep {
                chain: chain_text(&files, &base_path),
            });
        }
        let text = read(&base_path).map_err(|message| InheritError::Base {
            child: current.display().to_string(),
            base: base_path.display().to_string(),
            message,
        })?;
        tables.push(parse_table(&base_path, &text)?);
        files.push(base_path);
        seen.push(key);
    }
    let mut tables = tables.into_iter().rev();
    let first = tables.next().expect("one table per file");
    let table = tables.fold(first, merge_tables);
    Ok(Resolved { table, files })
}
