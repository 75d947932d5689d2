//! PNG plots of a verification run (plotters, bitmap backend):
//! - [`plot_roc`]: TAR against FAR on a logarithmic FAR axis, with the EER point;
//! - [`plot_score_histograms`]: genuine and impostor cosine-score densities.
//!
//! [`histogram_path`] names the histogram beside the ROC plot: `roc.png` -> `roc_hist.png`.
//! Files are drawn to a temporary PNG beside the target and renamed into place.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use visage_eval::roc::RocCurve;

use crate::ReportError;

const SIZE: (u32, u32) = (900, 650);
const GENUINE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const IMPOSTOR: RGBColor = RGBColor(0xd6, 0x27, 0x28);

/// The histogram PNG written beside a ROC PNG: `dir/name.png` -> `dir/name_hist.png`.
pub fn histogram_path(roc_path: &Path) -> PathBuf {
    let stem = roc_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "roc".into());
    roc_path.with_file_name(format!("{stem}_hist.png"))
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Draws with `draw` to a temporary file beside `path`, then renames it onto `path`.
pub(crate) fn draw_atomic(
    path: &Path,
    draw: impl FnOnce(&Path) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<(), ReportError> {
    visage_io::write_atomic_by_path(path, draw).map_err(|e| match e {
        visage_io::ByPathError::Produce(e) => plot_err(path, e),
        visage_io::ByPathError::File(e) => e.into(),
    })
}

/// Writes the ROC curve as a PNG: FAR on a log axis from the decade below `1 / impostors` to
/// 1, TAR linear in `[0, 1]`; the points with FAR = 0 cannot be shown on a log axis and are
/// left out. `title` heads the plot.
pub fn plot_roc(path: impl AsRef<Path>, roc: &RocCurve, title: &str) -> Result<(), ReportError> {
    let path = path.as_ref();
    let min_far = 1.0 / roc.impostor as f64;
    let lo = 10f64.powf(min_far.log10().floor()).min(0.1);
    let points: Vec<(f64, f64)> = roc
        .fpr
        .iter()
        .zip(&roc.tpr)
        .filter(|(&f, _)| f > 0.0)
        .map(|(&f, &t)| (f, t))
        .collect();
    let eer = roc.eer();
    let auc = roc.auc();
    draw_atomic(path, |tmp| {
        let root = BitMapBackend::new(tmp, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 26))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(70)
            .build_cartesian_2d((lo..1f64).log_scale(), 0f64..1.0f64)?;
        chart
            .configure_mesh()
            .x_desc("False accept rate (FAR, log scale)")
            .y_desc("True accept rate (TAR)")
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .axis_desc_style(("sans-serif", 20))
            .label_style(("sans-serif", 16))
            .draw()?;
        chart
            .draw_series(LineSeries::new(points, GENUINE.stroke_width(3)))?
            .label(format!("ROC (AUC = {auc:.4})"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], GENUINE.stroke_width(3)));
        if eer > 0.0 {
            chart
                .draw_series(std::iter::once(Circle::new(
                    (eer.max(lo), 1.0 - eer),
                    6,
                    IMPOSTOR.filled(),
                )))?
                .label(format!("EER = {:.4} %", eer * 100.0))
                .legend(|(x, y)| Circle::new((x + 12, y), 5, IMPOSTOR.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 18))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    })
}

/// Densities of `values` in `bins` equal bins over `[lo, hi]` (each histogram integrates to 1).
fn density(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u64; bins];
    for &v in values {
        let b = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let total = values.len().max(1) as f64;
    counts.iter().map(|&c| c as f64 / (total * width)).collect()
}

/// Writes genuine and impostor score histograms (densities, 100 bins over the range of all
/// scores) as a PNG. `title` heads the plot.
pub fn plot_score_histograms(
    path: impl AsRef<Path>,
    genuine: &[f64],
    impostor: &[f64],
    title: &str,
) -> Result<(), ReportError> {
    let path = path.as_ref();
    const BINS: usize = 100;
    let all = genuine.iter().chain(impostor);
    let mut lo = all.clone().copied().fold(f64::INFINITY, f64::min);
    let mut hi = all.copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (-1.0, 1.0);
    }
    if hi - lo < 1e-6 {
        (lo, hi) = (lo - 0.05, hi + 0.05);
    }
    let width = (hi - lo) / BINS as f64;
    let dg = density(genuine, lo, hi, BINS);
    let di = density(impostor, lo, hi, BINS);
    let top = dg.iter().chain(&di).copied().fold(0.0, f64::max).max(1e-12) * 1.08;
    draw_atomic(path, |tmp| {
        let root = BitMapBackend::new(tmp, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 26))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(70)
            .build_cartesian_2d(lo..hi, 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc("Cosine similarity")
            .y_desc("Density")
            .axis_desc_style(("sans-serif", 20))
            .label_style(("sans-serif", 16))
            .draw()?;
        for (dens, color, name, n) in [
            (&di, IMPOSTOR, "Impostor pairs", impostor.len()),
            (&dg, GENUINE, "Genuine pairs", genuine.len()),
        ] {
            chart.draw_series(dens.iter().enumerate().map(|(b, &d)| {
                let x0 = lo + b as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, d)], color.mix(0.35).filled())
            }))?;
            let outline = dens.iter().enumerate().flat_map(|(b, &d)| {
                let x0 = lo + b as f64 * width;
                [(x0, d), (x0 + width, d)]
            });
            chart
                .draw_series(LineSeries::new(outline, color.stroke_width(2)))?
                .label(format!("{name} (n = {n})"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 24, y + 6)], color.mix(0.6).filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 18))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    })
}
