//! The parity report: which backends ran (and why the others did not), one row per
//! quantity and backend pair, and how long each case took; printed as a table and written
//! as JSON (temporary file, then rename).

use std::path::Path;

use serde::Serialize;

use super::diff::Diff;
use super::tolerance::{Quantity, Tolerance};
use crate::backend::BackendKind;
use crate::ParityError;

/// Whether a backend took part.
#[derive(Debug, Clone, Serialize)]
pub struct BackendStatus {
    /// The backend.
    pub backend: BackendKind,
    /// `ready` or `skipped`.
    pub status: &'static str,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl BackendStatus {
    /// A backend that runs here.
    pub fn ready(backend: BackendKind) -> Self {
        BackendStatus {
            backend,
            status: "ready",
            reason: None,
        }
    }

    /// A backend that does not, and why.
    pub fn skipped(backend: BackendKind, reason: String) -> Self {
        BackendStatus {
            backend,
            status: "skipped",
            reason: Some(reason),
        }
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        match &self.reason {
            Some(r) => format!("skipped: {r}"),
            None => "ready".into(),
        }
    }
}

/// One quantity compared between the reference and another backend.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `head <label>`, `backbone` or `train`.
    pub case: String,
    /// What was compared (`logits`, `parameter gradients`, ...).
    pub quantity: String,
    /// Its tolerance class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Quantity>,
    /// The reference backend.
    pub reference: BackendKind,
    /// The backend compared with it.
    pub other: BackendKind,
    /// Largest absolute difference.
    pub max_abs_diff: Option<f64>,
    /// Largest difference relative to the reference's largest magnitude.
    pub max_rel_diff: Option<f64>,
    /// The reference's largest magnitude.
    pub scale: Option<f64>,
    /// How many tensors the quantity holds (every parameter gradient, say).
    pub tensors: usize,
    /// The tensor with the largest relative difference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst: Option<String>,
    /// The tolerance on `max_rel_diff` and its reason.
    pub tolerance: Option<Tolerance>,
    /// Within tolerance.
    pub pass: bool,
    /// Why nothing could be compared (a backend failed, a tensor is missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Row {
    /// A compared quantity.
    #[allow(clippy::too_many_arguments)]
    pub fn compared(
        case: &str,
        quantity: &str,
        kind: Quantity,
        reference: BackendKind,
        other: BackendKind,
        diff: Diff,
        worst: String,
        tensors: usize,
        tolerance: Tolerance,
    ) -> Row {
        Row {
            case: case.to_string(),
            quantity: quantity.to_string(),
            kind: Some(kind),
            reference,
            other,
            max_abs_diff: Some(diff.max_abs),
            max_rel_diff: Some(diff.max_rel),
            scale: Some(diff.scale),
            tensors,
            worst: (tensors > 1).then_some(worst),
            pass: diff.within(tolerance.max_rel),
            tolerance: Some(tolerance),
            error: None,
        }
    }

    /// A quantity that could not be compared: a failure.
    pub fn error(
        case: &str,
        quantity: &str,
        reference: BackendKind,
        other: BackendKind,
        error: String,
    ) -> Row {
        Row {
            case: case.to_string(),
            quantity: quantity.to_string(),
            kind: None,
            reference,
            other,
            max_abs_diff: None,
            max_rel_diff: None,
            scale: None,
            tensors: 0,
            worst: None,
            tolerance: None,
            pass: false,
            error: Some(error),
        }
    }
}

/// How long one case took on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// The case.
    pub case: String,
    /// The backend.
    pub backend: BackendKind,
    /// Wall time, seconds (the first case on a GPU backend includes its start-up and
    /// shader compilation).
    pub seconds: f64,
    /// Whether it succeeded.
    pub ok: bool,
}

/// Everything `visage parity` found.
#[derive(Debug, Clone, Serialize)]
pub struct ParityReport {
    /// The config compared.
    pub config: String,
    /// The backend every other is compared with.
    pub reference: BackendKind,
    /// Batch size of every case.
    pub batch_size: usize,
    /// Training steps compared (0: none).
    pub steps: u64,
    /// Every backend asked for.
    pub backends: Vec<BackendStatus>,
    /// One row per quantity and backend pair.
    pub rows: Vec<Row>,
    /// Wall time per case and backend.
    pub timings: Vec<Timing>,
}

fn sci(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2e}"))
}

impl ParityReport {
    /// What failed: breaches, errors, fewer than two backends, and skipped backends that
    /// are in `require`.
    pub fn failures(&self, require: &[BackendKind]) -> Vec<String> {
        let mut out: Vec<String> = self
            .rows
            .iter()
            .filter(|r| !r.pass)
            .map(|r| {
                let what = format!("{} {} ({} vs {})", r.case, r.quantity, r.reference, r.other);
                match (&r.error, r.max_rel_diff, r.tolerance) {
                    (Some(e), _, _) => format!("{what}: {e}"),
                    (None, Some(d), Some(t)) => {
                        format!("{what}: relative difference {d:.2e} > {:.0e}", t.max_rel)
                    }
                    _ => what,
                }
            })
            .collect();
        let ready = self.backends.iter().filter(|b| b.reason.is_none()).count();
        if ready < 2 {
            out.push(format!(
                "only {ready} backend could run, nothing was compared"
            ));
        }
        for b in self.backends.iter().filter(|b| b.reason.is_some()) {
            if require.contains(&b.backend) {
                out.push(format!(
                    "{} is required but was {}",
                    b.backend,
                    b.describe()
                ));
            }
        }
        out
    }

    /// The report as a text table: the backends, one line per row, and the reasons of the
    /// tolerances used.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        // Writing to a String cannot fail.
        macro_rules! line {
            ($($t:tt)*) => { let _ = writeln!(out, $($t)*); };
        }
        line!(
            "parity of {} (batch {}, {} training steps), reference {}",
            self.config,
            self.batch_size,
            self.steps,
            self.reference
        );
        for b in &self.backends {
            line!("  {:<8} {}", b.backend.name(), b.describe());
        }
        let w = self
            .rows
            .iter()
            .map(|r| r.case.len() + r.quantity.len() + 3)
            .max()
            .unwrap_or(10)
            .max(10);
        line!(
            "{:<w$}  {:<16}  {:>9}  {:>9}  {:>7}  pass",
            "quantity",
            "pair",
            "max abs",
            "max rel",
            "tol"
        );
        for r in &self.rows {
            let pair = format!("{} vs {}", r.reference, r.other);
            let name = format!("{}: {}", r.case, r.quantity);
            line!(
                "{name:<w$}  {pair:<16}  {:>9}  {:>9}  {:>7}  {}",
                sci(r.max_abs_diff),
                sci(r.max_rel_diff),
                r.tolerance
                    .map_or("-".into(), |t| format!("{:.0e}", t.max_rel)),
                match (&r.error, r.pass) {
                    (Some(e), _) => format!("ERROR {e}"),
                    (None, true) => "ok".into(),
                    (None, false) => format!(
                        "FAIL{}",
                        r.worst
                            .as_ref()
                            .map_or(String::new(), |w| format!(" (worst: {w})"))
                    ),
                }
            );
        }
        let mut seen: Vec<&'static str> = Vec::new();
        for t in self.rows.iter().filter_map(|r| r.tolerance) {
            if !seen.contains(&t.reason) {
                seen.push(t.reason);
                line!("  tol {:.0e}: {}", t.max_rel, t.reason);
            }
        }
        out
    }

    /// Writes the report as JSON ([`visage_io::write_atomic`], creating the folder).
    pub fn write(&self, path: &Path) -> Result<(), ParityError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| ParityError::Report {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        visage_io::create_parent_dir(path)?;
        visage_io::write_atomic(path, text.as_bytes())?;
        Ok(())
    }
}
