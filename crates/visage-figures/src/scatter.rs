//! One run's figure: three panels and a class legend under a title that says the loss, its
//! settings and the test accuracy.
//!
//! - 2-D: training features as the backbone outputs them, with each class weight's direction
//!   as a line from the origin (and center-loss centres as crosses); test features, placed
//!   around the unit circle for heads that decide by angle (direction exact, radius 0.8 to
//!   1.2 by norm); the angle histogram.
//! - 3-D: test features on the unit sphere in two orthographic views (the hemispheres facing
//!   +z and -z), class directions as ringed markers; the angle histogram.
//!
//! The angle histogram shows, over the test images, the angle between each feature and its own
//! class weight, and the angle to the nearest other class weight: the gap between the two is
//! the margin the loss opened.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::feature_space::RunFeatures;
use crate::lines::tick;
use crate::style::{class_color, Figure, AXIS_SIZE, CAPTION_SIZE, FONT, LEGEND_SIZE, TICK_SIZE};

const TITLE_H: u32 = 92;
const LEGEND_H: u32 = 52;
const PANEL_W: u32 = 620;
const PANEL_H: u32 = 620;
const BINS: usize = 90;

/// A run's figure.
#[derive(Debug, Clone, Copy)]
pub struct RunFigure<'a> {
    /// The run.
    pub run: &'a RunFeatures,
}

fn norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt()
}

fn unit(v: &[f32]) -> Vec<f64> {
    let n = norm(v).max(1e-12);
    v.iter().map(|&x| x as f64 / n).collect()
}

/// The `q` quantile of the row norms of `points` `[N, dim]` (at least 1e-12).
pub fn norm_quantile(points: &[f32], dim: usize, q: f64) -> f64 {
    let mut n: Vec<f64> = points
        .chunks(dim.max(1))
        .map(norm)
        .filter(|v| v.is_finite())
        .collect();
    if n.is_empty() {
        return 1.0;
    }
    n.sort_by(|a, b| a.total_cmp(b));
    n[((n.len() - 1) as f64 * q).round() as usize].max(1e-12)
}

/// Half-width of a square view holding all but the farthest 0.5 % of the 2-D points.
pub fn view_radius(points: &[f32]) -> f64 {
    let mut r: Vec<f64> = points
        .chunks(2)
        .map(|p| (p[0].abs().max(p[1].abs())) as f64)
        .filter(|v| v.is_finite())
        .collect();
    if r.is_empty() {
        return 1.0;
    }
    r.sort_by(|a, b| a.total_cmp(b));
    let q = r[((r.len() - 1) as f64 * 0.995).round() as usize];
    (q * 1.08).max(1e-3)
}

/// The angle (degrees) between each feature and its own class weight, and between it and the
/// nearest other class weight.
///
/// # Shapes
/// - `features` `[N, d]` and `weights` `[C, d]`, row-major; `labels` `[N]`.
pub fn target_and_nearest_angles(
    features: &[f32],
    labels: &[usize],
    weights: &[f32],
    dim: usize,
) -> (Vec<f64>, Vec<f64>) {
    let w: Vec<Vec<f64>> = weights.chunks(dim).map(unit).collect();
    let mut own = Vec::with_capacity(labels.len());
    let mut other = Vec::with_capacity(labels.len());
    for (x, &y) in features.chunks(dim).zip(labels) {
        let x = unit(x);
        let angle = |wj: &Vec<f64>| {
            let c: f64 = x.iter().zip(wj).map(|(a, b)| a * b).sum();
            c.clamp(-1.0, 1.0).acos().to_degrees()
        };
        if let Some(wy) = w.get(y) {
            own.push(angle(wy));
        }
        let nearest = w
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != y)
            .map(|(_, wj)| angle(wj))
            .fold(f64::INFINITY, f64::min);
        if nearest.is_finite() {
            other.push(nearest);
        }
    }
    (own, other)
}

/// Densities (per degree) of `values` in [`BINS`] bins over `[0, 180]`.
pub fn angle_density(values: &[f64]) -> Vec<f64> {
    let width = 180.0 / BINS as f64;
    let mut counts = vec![0usize; BINS];
    for &v in values {
        counts[((v / width).floor().max(0.0) as usize).min(BINS - 1)] += 1;
    }
    let total = values.len().max(1) as f64;
    counts.iter().map(|&c| c as f64 / (total * width)).collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn square_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    r: f64,
    desc: (&str, &str),
) -> Result<Chart<'a, DB>, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, CAPTION_SIZE))
        .margin(12)
        .x_label_area_size(52)
        .y_label_area_size(68)
        .build_cartesian_2d(-r..r, -r..r)?;
    chart
        .configure_mesh()
        .x_desc(desc.0)
        .y_desc(desc.1)
        .axis_desc_style((FONT, AXIS_SIZE))
        .label_style((FONT, TICK_SIZE))
        .x_labels(5)
        .y_labels(5)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    Ok(chart)
}

fn draw_points<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    points: impl Iterator<Item = ((f64, f64), usize)>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    chart.draw_series(
        points.map(|(p, class)| Circle::new(p, 2, class_color(class).mix(0.55).filled())),
    )?;
    Ok(())
}

/// Lines from the origin along each class weight to the edge of a `[-r, r]^2` view.
fn draw_directions<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    weights: &[f32],
    r: f64,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    for (j, w) in weights.chunks(2).enumerate() {
        let (x, y) = (w[0] as f64, w[1] as f64);
        let m = x.abs().max(y.abs());
        if m <= 0.0 || !m.is_finite() {
            continue;
        }
        let end = (x / m * r, y / m * r);
        chart.draw_series(LineSeries::new(
            vec![(0.0, 0.0), end],
            BLACK.mix(0.6).stroke_width(4),
        ))?;
        chart.draw_series(LineSeries::new(
            vec![(0.0, 0.0), end],
            class_color(j).stroke_width(2),
        ))?;
    }
    Ok(())
}

fn draw_centres<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    centres: &[f32],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    chart.draw_series(
        centres
            .chunks(2)
            .map(|c| Cross::new((c[0] as f64, c[1] as f64), 9, BLACK.stroke_width(4))),
    )?;
    Ok(())
}

fn unit_circle<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let circle: Vec<(f64, f64)> = (0..=360)
        .map(|d| {
            let t = (d as f64).to_radians();
            (t.cos(), t.sin())
        })
        .collect();
    chart.draw_series(LineSeries::new(circle, BLACK.mix(0.4).stroke_width(2)))?;
    Ok(())
}

impl RunFigure<'_> {
    /// The title's two lines: the loss and settings, then accuracy and training.
    pub fn title(&self) -> (String, String) {
        let r = self.run;
        let acc = r
            .test_accuracy
            .map_or("n/a".to_string(), |a| format!("{:.1} %", 100.0 * a));
        (
            r.label.clone(),
            format!(
                "test accuracy {acc} ({} test images)  ·  {}",
                r.test_labels.len(),
                r.training
            ),
        )
    }

    fn panel_2d<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        test: bool,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let r = self.run;
        let (features, labels) = if test {
            (&r.test, &r.test_labels)
        } else {
            (&r.train, &r.train_labels)
        };
        let on_circle = test && r.angular;
        let radius = if on_circle {
            1.25
        } else {
            view_radius(features)
        };
        let caption = match (test, on_circle) {
            (false, _) => format!("train features ({})", labels.len()),
            (true, false) => format!("test features ({})", labels.len()),
            (true, true) => format!("test directions x/‖x‖ ({})", labels.len()),
        };
        let mut chart = square_chart(area, &caption, radius, ("feature 1", "feature 2"))?;
        if on_circle {
            unit_circle(&mut chart)?;
        }
        // On the circle, each point keeps its direction exactly; its radius 0.8 + 0.4 t, with
        // t its norm over the 99.5th percentile norm (at most 1), spreads the ring so that
        // the classes and the gaps between them stay visible.
        let top = norm_quantile(features, 2, 0.995);
        let points = features
            .chunks(2)
            .zip(labels.iter().copied())
            .map(|(p, c)| {
                if on_circle {
                    let u = unit(p);
                    let r = 0.8 + 0.4 * (norm(p) / top).min(1.0);
                    ((r * u[0], r * u[1]), c)
                } else {
                    ((p[0] as f64, p[1] as f64), c)
                }
            });
        draw_points(&mut chart, points)?;
        if let Some(w) = &r.weights {
            draw_directions(&mut chart, w, radius)?;
        }
        if let (Some(c), false) = (&r.centres, on_circle) {
            draw_centres(&mut chart, c)?;
        }
        Ok(())
    }

    fn panel_sphere<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        from_top: bool,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let r = self.run;
        // Seen from +z: (x, y) of the points with z >= 0; from -z: (-x, y) of those with z < 0.
        let view = |v: &[f64]| -> Option<(f64, f64)> {
            match (from_top, v[2] >= 0.0) {
                (true, true) => Some((v[0], v[1])),
                (false, false) => Some((-v[0], v[1])),
                _ => None,
            }
        };
        let caption = if from_top {
            "test features / ‖x‖, seen from +z"
        } else {
            "test features / ‖x‖, seen from −z"
        };
        let desc = if from_top { ("x", "y") } else { ("−x", "y") };
        let mut chart = square_chart(area, caption, 1.12, desc)?;
        unit_circle(&mut chart)?;
        let points = r
            .test
            .chunks(3)
            .zip(r.test_labels.iter().copied())
            .filter_map(|(p, c)| view(&unit(p)).map(|q| (q, c)));
        draw_points(&mut chart, points)?;
        if let Some(w) = &r.weights {
            for (j, wj) in w.chunks(3).enumerate() {
                if let Some(q) = view(&unit(wj)) {
                    chart.draw_series(std::iter::once(Circle::new(
                        q,
                        11,
                        BLACK.stroke_width(5),
                    )))?;
                    chart.draw_series(std::iter::once(Circle::new(
                        q,
                        8,
                        class_color(j).filled(),
                    )))?;
                }
            }
        }
        Ok(())
    }

    fn panel_angles<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let r = self.run;
        let Some(w) = &r.weights else {
            return Ok(());
        };
        let (own, other) = target_and_nearest_angles(&r.test, &r.test_labels, w, r.dim);
        let d_own = angle_density(&own);
        let d_other = angle_density(&other);
        let top = d_own
            .iter()
            .chain(&d_other)
            .copied()
            .fold(0.0, f64::max)
            .max(1e-6)
            * 1.12;
        let mut chart = ChartBuilder::on(area)
            .caption("angles of the test features", (FONT, CAPTION_SIZE))
            .margin(12)
            .x_label_area_size(52)
            .y_label_area_size(88)
            .build_cartesian_2d(0f64..180f64, 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc("angle to a class weight (degrees)")
            .y_desc("density (per degree)")
            .axis_desc_style((FONT, AXIS_SIZE))
            .label_style((FONT, TICK_SIZE))
            .y_label_formatter(&|v| format!("{v:.3}"))
            .x_label_formatter(&tick)
            .x_labels(7)
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .draw()?;
        let width = 180.0 / BINS as f64;
        let own_color = RGBColor(0x1f, 0x77, 0xb4);
        let other_color = RGBColor(0xd6, 0x27, 0x28);
        for (dens, color, label) in [
            (
                &d_own,
                own_color,
                format!("own class (mean {:.1}°)", mean(&own)),
            ),
            (
                &d_other,
                other_color,
                format!("nearest other (mean {:.1}°)", mean(&other)),
            ),
        ] {
            chart.draw_series(dens.iter().enumerate().map(|(b, &d)| {
                let x0 = b as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, d)], color.mix(0.35).filled())
            }))?;
            let outline: Vec<(f64, f64)> = dens
                .iter()
                .enumerate()
                .flat_map(|(b, &d)| [(b as f64 * width, d), ((b + 1) as f64 * width, d)])
                .collect();
            chart
                .draw_series(LineSeries::new(outline, color.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 7), (x + 24, y + 7)], color.mix(0.6).filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, LEGEND_SIZE))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.5))
            .draw()?;
        Ok(())
    }

    fn legend<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let names = &self.run.class_names;
        let (w, h) = area.dim_in_pixel();
        let slot = (w as i32 - 40) / names.len().max(1) as i32;
        let y = h as i32 / 2;
        let font = TextStyle::from((FONT, LEGEND_SIZE).into_font())
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (c, name) in names.iter().enumerate() {
            let x = 20 + c as i32 * slot;
            area.draw(&Rectangle::new(
                [(x, y - 9), (x + 18, y + 9)],
                class_color(c).filled(),
            ))?;
            area.draw(&Text::new(name.clone(), (x + 24, y), font.clone()))?;
        }
        Ok(())
    }
}

impl Figure for RunFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (3 * PANEL_W, TITLE_H + PANEL_H + LEGEND_H)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let (title, rest) = root.split_vertically(TITLE_H);
        let (line1, line2) = self.title();
        let (w, _) = title.dim_in_pixel();
        let center = |size: u32| {
            TextStyle::from((FONT, size).into_font())
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center))
        };
        title.draw(&Text::new(
            line1,
            (w as i32 / 2, 30),
            center(crate::style::TITLE_SIZE),
        ))?;
        title.draw(&Text::new(line2, (w as i32 / 2, 72), center(AXIS_SIZE + 2)))?;
        let (panels, legend) = rest.split_vertically(PANEL_H);
        let cells = panels.split_evenly((1, 3));
        if self.run.dim == 3 {
            self.panel_sphere(&cells[0], true)?;
            self.panel_sphere(&cells[1], false)?;
        } else {
            self.panel_2d(&cells[0], false)?;
            self.panel_2d(&cells[1], true)?;
        }
        self.panel_angles(&cells[2])?;
        self.legend(&legend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles_to_own_and_nearest_other_class() {
        // Weights along +x, +y, -x; a feature at 30 degrees of class 0: 30 to its own, 60 to +y.
        let w = [1.0f32, 0.0, 0.0, 2.0, -3.0, 0.0];
        let s = 30f32.to_radians();
        let x = [4.0 * s.cos(), 4.0 * s.sin(), 0.0, -1.0];
        let (own, other) = target_and_nearest_angles(&x, &[0, 1], &w, 2);
        assert!((own[0] - 30.0).abs() < 1e-4 && (other[0] - 60.0).abs() < 1e-4);
        // (0, -1) of class 1 (+y): 180 to its own, 90 to +x and -x.
        assert!((own[1] - 180.0).abs() < 1e-4 && (other[1] - 90.0).abs() < 1e-4);
    }

    #[test]
    fn densities_integrate_to_one() {
        let d = angle_density(&[0.0, 1.0, 45.0, 179.9, 180.0]);
        let width = 180.0 / BINS as f64;
        assert!((d.iter().sum::<f64>() * width - 1.0).abs() < 1e-12);
        assert!((d[0] - 2.0 / (5.0 * width)).abs() < 1e-12);
        assert!((d[BINS - 1] - 2.0 / (5.0 * width)).abs() < 1e-12);
    }

    #[test]
    fn view_radius_ignores_the_farthest_half_percent() {
        let mut p: Vec<f32> = (0..1000).flat_map(|i| [i as f32 / 1000.0, 0.0]).collect();
        p.extend([1e6, 0.0]);
        let r = view_radius(&p);
        assert!(r > 1.0 && r < 1.1, "{r}");
    }
}
