//! Pairs files: one pair per line, `i j same`, where `i` and `j` are 0-based rows of the
//! embedding matrix and `same` is `1`/`0` (or `true`/`false`). Fields are separated by
//! whitespace or commas; blank lines and lines starting with `#` are skipped.

use std::path::Path;

use crate::pairs::{Pair, Pairs};
use crate::EvalError;

/// Parses the text of a pairs file; `path` names the file in errors.
pub fn parse_pairs(path: &Path, text: &str) -> Result<Pairs, EvalError> {
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |reason: String| EvalError::PairsFile {
            path: path.to_path_buf(),
            line: n + 1,
            reason,
        };
        let fields: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|f| !f.is_empty())
            .collect();
        if fields.len() != 3 {
            return Err(err(format!(
                "expected 3 fields `i j same`, found {} in {line:?}",
                fields.len()
            )));
        }
        let row = |f: &str, name: &str| {
            f.parse::<usize>()
                .map_err(|_| err(format!("{name} = {f:?} is not a non-negative row index")))
        };
        let first = row(fields[0], "i")?;
        let second = row(fields[1], "j")?;
        let same = match fields[2].to_ascii_lowercase().as_str() {
            "1" | "true" => true,
            "0" | "false" => false,
            other => {
                return Err(err(format!(
                    "same = {other:?}: expected 1, 0, true or false"
                )))
            }
        };
        pairs.push(Pair {
            first,
            second,
            same,
        });
    }
    Ok(Pairs(pairs))
}

/// Reads a pairs file.
pub fn read_pairs_file(path: impl AsRef<Path>) -> Result<Pairs, EvalError> {
    let path = path.as_ref();
    let bytes = super::read_regular_file(path)?;
    let text = String::from_utf8(bytes).map_err(|e| EvalError::PairsFile {
        path: path.to_path_buf(),
        line: 0,
        reason: format!("not UTF-8 text ({e})"),
    })?;
    parse_pairs(path, &text)
}
