//! Line charts: named series of points drawn on a captioned chart with a legend, the building
//! block of the analytic figures.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::style::{AXIS_SIZE, CAPTION_SIZE, FONT, LEGEND_SIZE, TICK_SIZE};

/// One curve of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text (empty: no legend entry).
    pub label: String,
    /// The points `(x, y)`, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Dashed instead of solid.
    pub dashed: bool,
}

/// Axes, ranges and legend place of a line chart.
#[derive(Debug, Clone)]
pub struct Axes {
    /// Caption above the chart.
    pub caption: String,
    /// X range.
    pub x: (f64, f64),
    /// Y range.
    pub y: (f64, f64),
    /// X axis description.
    pub x_desc: String,
    /// Y axis description.
    pub y_desc: String,
    /// Where the legend goes.
    pub legend: SeriesLabelPosition,
    /// Whether to draw the legend.
    pub legend_shown: bool,
}

/// Splits `points` into runs that stay inside `y` (the parts outside are left out), so that a
/// curve leaving the chart is cut at its edge instead of drawn over the margins.
pub fn clip_to(points: &[(f64, f64)], y: (f64, f64)) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for &(px, py) in points {
        if py.is_finite() && py >= y.0 && py <= y.1 {
            run.push((px, py));
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// A tick label without trailing zeros: `20`, `0.5`, `-1.5`, `0.125`.
pub fn tick(v: &f64) -> String {
    let text = format!("{v:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// Draws `series` on `area` with `axes`; `extra` draws more (shading, markers) on the chart
/// before the curves.
pub fn line_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    axes: &Axes,
    series: &[Series],
    extra: impl FnOnce(
        &mut ChartContext<DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    ) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&axes.caption, (FONT, CAPTION_SIZE))
        .margin(14)
        .margin_right(30)
        .x_label_area_size(58)
        .y_label_area_size(74)
        .build_cartesian_2d(axes.x.0..axes.x.1, axes.y.0..axes.y.1)?;
    chart
        .configure_mesh()
        .x_desc(axes.x_desc.as_str())
        .y_desc(axes.y_desc.as_str())
        .axis_desc_style((FONT, AXIS_SIZE))
        .label_style((FONT, TICK_SIZE))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    extra(&mut chart)?;
    let mut labelled = false;
    for s in series {
        let style = s.color.stroke_width(3);
        for (i, run) in clip_to(&s.points, axes.y).into_iter().enumerate() {
            let legend = i == 0 && !s.label.is_empty();
            let color = s.color;
            let dashed = s.dashed;
            let anno = if s.dashed {
                chart.draw_series(DashedLineSeries::new(run, 10, 7, style))?
            } else {
                chart.draw_series(LineSeries::new(run, style))?
            };
            if legend {
                labelled = true;
                anno.label(s.label.as_str()).legend(move |(x, y)| {
                    let st = color.stroke_width(3);
                    if dashed {
                        PathElement::new(vec![(x, y), (x + 12, y)], st)
                    } else {
                        PathElement::new(vec![(x, y), (x + 26, y)], st)
                    }
                });
            }
        }
    }
    if labelled && axes.legend_shown {
        chart
            .configure_series_labels()
            .position(axes.legend.clone())
            .label_font((FONT, LEGEND_SIZE))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.5))
            .draw()?;
    }
    Ok(())
}
