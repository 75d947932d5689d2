//! The loss zoo's report: one row per trained loss (and the untrained baseline), written as a
//! Markdown table ([`zoo_markdown`]) and as a horizontal bar chart of the 10-fold accuracy
//! with +- one standard deviation ([`plot_zoo`], PNG or SVG by the file extension).
//!
//! The numbers come from the caller (`visage zoo` trains the losses); nothing here runs a
//! model. Files are written to a temporary file beside the target and renamed into place.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::plot::draw_atomic;
use crate::ReportError;

/// One row of the zoo: a loss and its held-out verification numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct ZooRow {
    /// The loss, as the table and the chart name it (e.g. `arcface`).
    pub loss: String,
    /// Its settings in a few words (e.g. `margin 0.3, scale 16.0`); empty for none.
    pub settings: String,
    /// Mean of the 10 fold accuracies, in [0, 1].
    pub accuracy_mean: f64,
    /// Population std of the 10 fold accuracies, in [0, 1].
    pub accuracy_std: f64,
    /// TAR at FAR = 1e-3, in [0, 1]; `None` where undefined (fewer than 1,000 impostors).
    pub tar_at_far_1e3: Option<f64>,
    /// Equal error rate, in [0, 1].
    pub eer: f64,
    /// Wall time of the training steps, seconds; `None` for the untrained baseline.
    pub train_seconds: Option<f64>,
    /// Whether this is the untrained baseline (drawn as a reference line, not a bar).
    pub baseline: bool,
    /// The step at which training stopped on a non-finite loss: the row has no numbers, the
    /// table says so, and the chart leaves it out.
    pub diverged: Option<u64>,
}

fn percent(v: f64) -> String {
    format!("{:.2} %", 100.0 * v)
}

/// Train time as the table shows it: seconds under 100 s, else minutes and seconds.
fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s < 100 {
        format!("{s} s")
    } else {
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// The rows in the order the table and the chart show them: the baseline first, then the
/// trained losses by decreasing mean accuracy (ties keep their given order), then the
/// diverged ones.
pub fn ranked(rows: &[ZooRow]) -> Vec<ZooRow> {
    let mut out: Vec<ZooRow> = rows.iter().filter(|r| r.baseline).cloned().collect();
    let mut trained: Vec<ZooRow> = rows
        .iter()
        .filter(|r| !r.baseline && r.diverged.is_none())
        .cloned()
        .collect();
    trained.sort_by(|a, b| b.accuracy_mean.total_cmp(&a.accuracy_mean));
    out.extend(trained);
    out.extend(rows.iter().filter(|r| r.diverged.is_some()).cloned());
    out
}

/// The Markdown table of `rows` ([`ranked`] order): loss, settings, 10-fold accuracy +- std,
/// TAR@FAR=1e-3, EER and train time, one line per row, ending in a newline.
pub fn zoo_markdown(rows: &[ZooRow]) -> String {
    let mut s = String::from(
        "| loss | settings | 10-fold accuracy | TAR@FAR=1e-3 | EER | train time |\n\
         |---|---|---|---|---|---|\n",
    );
    for r in ranked(rows) {
        let loss = if r.baseline {
            format!("*{}*", r.loss)
        } else {
            format!("`{}`", r.loss)
        };
        if let Some(step) = r.diverged {
            s.push_str(&format!(
                "| {loss} | {} | diverged (non-finite loss at step {step}) | - | - | {} |\n",
                r.settings.replace('|', "\\|"),
                r.train_seconds.map_or("-".into(), duration),
            ));
            continue;
        }
        s.push_str(&format!(
            "| {loss} | {} | {} +- {:.2} | {} | {} | {} |\n",
            r.settings.replace('|', "\\|"),
            percent(r.accuracy_mean),
            100.0 * r.accuracy_std,
            r.tar_at_far_1e3.map_or("undefined".into(), percent),
            percent(r.eer),
            r.train_seconds.map_or("-".into(), duration),
        ));
    }
    s
}

const BAR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const BASELINE: RGBColor = RGBColor(0xd6, 0x27, 0x28);

/// Draws the zoo as horizontal bars of 10-fold accuracy (%) with +- std error bars, one per
/// trained loss in [`ranked`] order (best on top), and the untrained baseline as a dashed
/// vertical line (its legend in a free row on top). The accuracy axis runs from 50 %
/// (chance), or lower if a bar needs it, to 100 %. Diverged rows are left out. `path` ending in `.svg` writes SVG, anything else PNG. `title` heads the chart.
pub fn plot_zoo(path: impl AsRef<Path>, rows: &[ZooRow], title: &str) -> Result<(), ReportError> {
    let path = path.as_ref();
    let ordered = ranked(rows);
    let bars: Vec<&ZooRow> = ordered
        .iter()
        .filter(|r| !r.baseline && r.diverged.is_none())
        .rev()
        .collect();
    if bars.is_empty() {
        return Err(ReportError::Empty {
            path: path.to_path_buf(),
            reason: "no trained loss to plot".into(),
        });
    }
    let baseline = ordered.iter().find(|r| r.baseline);
    let lowest = bars
        .iter()
        .map(|r| 100.0 * (r.accuracy_mean - r.accuracy_std))
        .chain(baseline.map(|b| 100.0 * b.accuracy_mean))
        .fold(50.0, f64::min);
    let lo = if lowest >= 50.0 {
        50.0
    } else {
        ((lowest - 1.0) / 5.0).floor() * 5.0
    };
    let rows_drawn = bars.len() + usize::from(baseline.is_some());
    let height = 140 + 38 * rows_drawn as u32;
    let svg = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    draw_atomic(path, |tmp| {
        if svg {
            draw_bars(
                SVGBackend::new(tmp, (900, height)),
                &bars,
                baseline,
                lo,
                title,
            )
        } else {
            draw_bars(
                BitMapBackend::new(tmp, (900, height)),
                &bars,
                baseline,
                lo,
                title,
            )
        }
    })
}

fn draw_bars<DB: DrawingBackend>(
    backend: DB,
    bars: &[&ZooRow],
    baseline: Option<&ZooRow>,
    lo: f64,
    title: &str,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let root = backend.into_drawing_area();
    root.fill(&WHITE)?;
    let n = bars.len();
    // One free row on top for the baseline's legend, so that it covers no bar.
    let top = n as f64 - 0.5 + if baseline.is_some() { 1.0 } else { 0.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(120)
        .build_cartesian_2d(lo..100f64, -0.5f64..top)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("Held-out 10-fold verification accuracy (%), bars +- 1 std")
        .y_labels(1)
        .y_label_formatter(&|_| String::new())
        .x_label_formatter(&|v| format!("{v:.0}"))
        .axis_desc_style(("sans-serif", 20))
        .label_style(("sans-serif", 18))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, r)| {
        let y = i as f64;
        Rectangle::new(
            [(lo, y - 0.35), (100.0 * r.accuracy_mean, y + 0.35)],
            BAR.mix(0.8).filled(),
        )
    }))?;
    for (i, r) in bars.iter().enumerate() {
        let y = i as f64;
        let (m, s) = (100.0 * r.accuracy_mean, 100.0 * r.accuracy_std);
        let (a, b) = ((m - s).max(lo), (m + s).min(100.0));
        let whisker = BLACK.stroke_width(2);
        chart.draw_series([
            PathElement::new(vec![(a, y), (b, y)], whisker),
            PathElement::new(vec![(a, y - 0.15), (a, y + 0.15)], whisker),
            PathElement::new(vec![(b, y - 0.15), (b, y + 0.15)], whisker),
        ])?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{m:.1}"),
            (b.min(97.0) + 0.4, y),
            ("sans-serif", 15)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        )))?;
        // The loss's name left of the axis, centred on its bar (mesh labels would fall
        // between bars).
        let (px, py) = chart.backend_coord(&(lo, y));
        root.draw(&Text::new(
            r.loss.clone(),
            (px - 10, py),
            ("sans-serif", 18)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    if let Some(b) = baseline {
        let x = 100.0 * b.accuracy_mean;
        let top = n as f64 - 0.5;
        let dashes = (0..)
            .map(|k| -0.5 + 0.25 * k as f64)
            .take_while(|y| *y < top);
        chart
            .draw_series(dashes.map(|y| {
                PathElement::new(
                    vec![(x, y), (x, (y + 0.14).min(top))],
                    BASELINE.stroke_width(2),
                )
            }))?
            .label(format!("{} ({x:.1} %)", b.loss))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BASELINE.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
