//! Aligning a folder of images from a landmarks CSV (what `visage align` runs), with the rules
//! that keep it from losing data:
//!
//! - every image path in the CSV is relative to the images folder and stays inside it (no root,
//!   no drive prefix, no `..`), so the output `out/<path>` stays inside `out` too;
//! - an output never replaces an input image (the same file reached through another folder or a
//!   symbolic link included), and a symbolic link inside `out` that leads elsewhere is refused;
//! - two records that map to one output (a repeated line, or `a.bmp` and `a.png`, which both
//!   become `a.png`) are an error naming both lines;
//! - an output that already exists (an earlier run) is replaced only when asked
//!   ([`AlignOptions::overwrite`]), and each output is written to a temporary file and renamed.
//!
//! All of this is checked for every record before the first image is written.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use crate::alignment::{align, AlignTemplate};
use crate::error::{DataError, Result};
use crate::read::{read_regular_text, MAX_TEXT_BYTES};
use crate::sample::read_image;

/// One line of a landmarks CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct LandmarkRecord {
    /// 1-based line number in the CSV.
    pub line: usize,
    /// Image path relative to the images folder.
    pub path: PathBuf,
    /// Left eye, right eye, nose tip, left and right mouth corners, as (x, y) pixels.
    pub landmarks: [[f64; 2]; 5],
}

/// One image to align: where it is read from and where its crop goes.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignJob {
    /// The record it comes from.
    pub record: LandmarkRecord,
    /// The input image.
    pub source: PathBuf,
    /// The output file (inside the output folder).
    pub output: PathBuf,
}

/// How to align a folder.
#[derive(Debug, Clone, Copy)]
pub struct AlignOptions {
    /// Output template and size.
    pub template: AlignTemplate,
    /// Replace outputs that already exist (never an input image).
    pub overwrite: bool,
}

/// What [`align_folder`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignSummary {
    /// Images aligned and written.
    pub aligned: usize,
    /// The output folder.
    pub out: PathBuf,
    /// Output (height, width).
    pub image_size: (usize, usize),
}

/// Reads a landmarks CSV: one line per image, `path,x1,y1,...,x5,y5`; blank lines and lines
/// starting with `#` are skipped, and a first line whose second field is not a number is a
/// header. A file that is not a regular file, or larger than [`MAX_TEXT_BYTES`], is refused.
pub fn read_landmarks(csv: &Path) -> Result<Vec<LandmarkRecord>> {
    let text = read_regular_text(csv, MAX_TEXT_BYTES)?;
    let mut records = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(|f| f.trim()).collect();
        if n == 0 && fields.get(1).is_none_or(|f| f.parse::<f64>().is_err()) {
            continue; // header line: its fields are names, not numbers
        }
        let numbers: Option<Vec<f64>> = fields
            .iter()
            .skip(1)
            .map(|f| f.parse::<f64>().ok().filter(|x| x.is_finite()))
            .collect();
        match numbers {
            Some(v) if fields.len() == 11 && !fields[0].is_empty() => {
                let mut landmarks = [[0.0; 2]; 5];
                for (k, point) in landmarks.iter_mut().enumerate() {
                    *point = [v[2 * k], v[2 * k + 1]];
                }
                records.push(LandmarkRecord {
                    line: n + 1,
                    path: PathBuf::from(fields[0]),
                    landmarks,
                });
            }
            _ => {
                return Err(DataError::format(
                    csv,
                    format!(
                        "line {}: expected a path and 10 finite numbers separated by commas, found {} fields: {line:?}",
                        n + 1,
                        fields.len()
                    ),
                ))
            }
        }
    }
    if records.is_empty() {
        return Err(DataError::format(csv, "no landmark line"));
    }
    Ok(records)
}

/// `path` without `.` components, if it is relative and never leaves its base (no root, no
/// prefix, no `..`, at least one name).
fn contained(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The output name of an input: png, jpg and jpeg keep theirs, anything else becomes `.png`.
fn output_name(rel: &Path) -> PathBuf {
    let keep = matches!(
        rel.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("png" | "jpg" | "jpeg")
    );
    let mut out = rel.to_path_buf();
    if !keep {
        out.set_extension("png");
    }
    out
}

/// `path` with every existing ancestor resolved (symbolic links followed): the file it names
/// once its missing folders are created.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let mut missing = Vec::new();
    let mut existing = path;
    loop {
        if existing.symlink_metadata().is_ok() {
            let mut resolved = existing.canonicalize()?;
            for name in missing.iter().rev() {
                resolved.push(name);
            }
            return Ok(resolved);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                existing = parent;
            }
            _ => return Ok(path.to_path_buf()),
        }
    }
}

/// Checks every record and maps it to its output, before anything is written: see the module
/// documentation for the rules. `csv` only names the landmarks file in errors. Creates `out`.
pub fn plan_alignment(
    images: &Path,
    csv: &Path,
    records: &[LandmarkRecord],
    out: &Path,
    overwrite: bool,
) -> Result<Vec<AlignJob>> {
    std::fs::create_dir_all(out).map_err(|e| DataError::io(out, e))?;
    let out_root = out.canonicalize().map_err(|e| DataError::io(out, e))?;
    let at = |line: usize, what: String| DataError::format(csv, format!("line {line}: {what}"));

    // Inputs: inside the images folder, present, and known by their real path.
    let mut sources: HashMap<PathBuf, usize> = HashMap::new();
    let mut planned = Vec::with_capacity(records.len());
    for r in records {
        let rel = contained(&r.path).ok_or_else(|| {
            at(
                r.line,
                format!(
                    "image path {:?} must be relative to the images folder and stay inside it (no leading `/`, no drive, no `..`)",
                    r.path
                ),
            )
        })?;
        let source = images.join(&rel);
        let real = source.canonicalize().map_err(|e| {
            at(
                r.line,
                format!("image {} cannot be opened: {e}", source.display()),
            )
        })?;
        sources.entry(real).or_insert(r.line);
        planned.push((r, rel, source));
    }

    // Outputs: distinct, inside `out`, never an input, new unless overwriting.
    let mut outputs: HashMap<PathBuf, usize> = HashMap::new();
    let mut jobs = Vec::with_capacity(records.len());
    for (r, rel, source) in planned {
        let name = output_name(&rel);
        if let Some(first) = outputs.insert(name.clone(), r.line) {
            return Err(at(
                r.line,
                format!(
                    "its output {} is also line {first}'s output (a repeated image, or two names that differ only in an extension that becomes .png)",
                    name.display()
                ),
            ));
        }
        let output = out_root.join(&name);
        let real = resolve(&output).map_err(|e| DataError::io(&output, e))?;
        if !real.starts_with(&out_root) {
            return Err(at(
                r.line,
                format!(
                    "its output {} leads outside the output folder (to {}) through a symbolic link",
                    output.display(),
                    real.display()
                ),
            ));
        }
        if let Some(input_line) = sources.get(&real) {
            return Err(at(
                r.line,
                format!(
                    "its output {} is the input image of line {input_line}: choose an output folder apart from the images",
                    output.display()
                ),
            ));
        }
        if let Ok(meta) = output.symlink_metadata() {
            if !meta.is_file() {
                return Err(at(
                    r.line,
                    format!(
                        "its output {} exists and is not a regular file",
                        output.display()
                    ),
                ));
            }
            if !overwrite {
                return Err(at(
                    r.line,
                    format!(
                        "its output {} exists already (an earlier run?); pass --overwrite to replace outputs",
                        output.display()
                    ),
                ));
            }
        }
        jobs.push(AlignJob {
            record: r.clone(),
            source,
            output,
        });
    }
    Ok(jobs)
}

/// Aligns every image of a landmarks CSV to `options.template` and writes the crops under
/// `out`, keeping each image's relative path (see the module documentation for what is
/// refused). Images are decoded, aligned and written in parallel.
pub fn align_folder(
    images: &Path,
    csv: &Path,
    out: &Path,
    options: AlignOptions,
) -> Result<AlignSummary> {
    let records = read_landmarks(csv)?;
    let jobs = plan_alignment(images, csv, &records, out, options.overwrite)?;
    let out_root = out.canonicalize().map_err(|e| DataError::io(out, e))?;
    let created: HashSet<PathBuf> = jobs
        .iter()
        .filter_map(|j| j.output.parent().map(Path::to_path_buf))
        .collect();
    for dir in &created {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        let real = dir.canonicalize().map_err(|e| DataError::io(dir, e))?;
        if !real.starts_with(&out_root) {
            return Err(DataError::format(
                dir,
                format!(
                    "leads outside the output folder {} (to {})",
                    out_root.display(),
                    real.display()
                ),
            ));
        }
    }
    jobs.par_iter().try_for_each(|job| -> Result<()> {
        let src = read_image(&job.source, 0)?;
        let aligned = align(&src, &job.record.landmarks, options.template)
            .map_err(|e| DataError::format(csv, format!("line {}: {e}", job.record.line)))?;
        if !options.overwrite && job.output.symlink_metadata().is_ok() {
            return Err(DataError::format(
                &job.output,
                "appeared while aligning (another process?); not replaced",
            ));
        }
        aligned.save(&job.output)
    })?;
    Ok(AlignSummary {
        aligned: jobs.len(),
        out: out.to_path_buf(),
        image_size: options.template.size(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relative_paths_that_stay_inside_are_contained() {
        assert_eq!(
            contained(Path::new("./a/b.jpg")),
            Some(PathBuf::from("a/b.jpg"))
        );
        assert_eq!(contained(Path::new("/etc/passwd")), None);
        assert_eq!(contained(Path::new("a/../../b.jpg")), None);
        assert_eq!(contained(Path::new("a/../b.jpg")), None);
        assert_eq!(contained(Path::new(".")), None);
        assert_eq!(contained(Path::new("")), None);
    }

    #[test]
    fn output_names_keep_png_and_jpeg_and_turn_the_rest_into_png() {
        assert_eq!(output_name(Path::new("a/b.JPG")), PathBuf::from("a/b.JPG"));
        assert_eq!(output_name(Path::new("a/b.bmp")), PathBuf::from("a/b.png"));
        assert_eq!(output_name(Path::new("a/b")), PathBuf::from("a/b.png"));
    }
}
