//! The analytic figures (no training):
//!
//! - `target_logits`: the target logit of each loss against `theta` in `[0, 180]` degrees,
//!   with ArcFace's fallback past `theta = 180 - m`;
//! - `decision_margins`: the two-class decision boundaries of softmax, SphereFace, CosFace and
//!   ArcFace in `(theta_1, theta_2)` space, the margin between them shaded;
//! - `adacos_probability`: AdaCos's `P(theta)` for `C = 2000` and `C = 20000` at scales 10 to
//!   64 (and the fixed AdaCos scale), and for `s = 30` with ArcFace margins 0 to 0.5.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use plotters::coord::Shift;
use plotters::prelude::*;
use visage_heads::heads::adacos_fixed_scale;
use visage_heads::HeadConfig;

use crate::curves::{adacos_probability, angle_grid, boundary_angle, TargetCurve};
use crate::lines::{line_chart, Axes, Series};
use crate::style::{class_color, save_figure, title_bar, Figure};
use crate::FigureError;

const GRID: usize = 241;

/// The ArcFace margin of the analytic figures (the paper's 0.5).
pub const ARCFACE_M: f64 = 0.5;
/// The CosFace margin of the analytic figures (the paper's 0.35).
pub const COSFACE_M: f64 = 0.35;
/// The SphereFace margin of the analytic figures (the paper's 4).
pub const SPHEREFACE_M: u32 = 4;
/// The scales of the AdaCos curves.
pub const ADACOS_SCALES: [f64; 6] = [10.0, 16.0, 24.0, 32.0, 48.0, 64.0];
/// The class counts of the AdaCos curves.
pub const ADACOS_CLASSES: [usize; 2] = [2000, 20000];
/// The ArcFace margins of the AdaCos margin panel (at `s = 30`, `C = 2000`).
pub const ADACOS_MARGINS: [f64; 6] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5];

fn deg(r: f64) -> f64 {
    r.to_degrees()
}

/// The curves of the target-logit figure, in order.
pub fn target_curves() -> Vec<TargetCurve> {
    vec![
        TargetCurve::cosine(),
        TargetCurve::sphereface(SPHEREFACE_M, 0.0),
        TargetCurve::sphereface(SPHEREFACE_M, 5.0),
        TargetCurve::cosface(COSFACE_M),
        TargetCurve::arcface(ARCFACE_M, false),
        TargetCurve::arcface(ARCFACE_M, true),
        TargetCurve::combined(1.0, 0.3, 0.2),
    ]
}

/// Target logit against theta, one curve per loss.
#[derive(Debug, Clone)]
pub struct TargetLogitFigure {
    /// One series per loss, x in degrees.
    pub series: Vec<Series>,
}

impl TargetLogitFigure {
    /// Evaluates every curve of [`target_curves`] on a grid of `[0, pi]`.
    pub fn compute<B: Backend>(device: &B::Device) -> Result<Self, FigureError> {
        let thetas = angle_grid(0.0, std::f64::consts::PI, GRID);
        let mut series = Vec::new();
        for (i, curve) in target_curves().into_iter().enumerate() {
            let values = curve.eval::<B>(&thetas, device)?;
            series.push(Series {
                label: curve.label.clone(),
                points: thetas.iter().map(|&t| deg(t)).zip(values).collect(),
                color: class_color(i),
                dashed: matches!(&curve.spec, HeadConfig::ArcFace(c) if c.easy_margin)
                    || curve.label.contains("λ"),
            });
        }
        Ok(Self { series })
    }
}

impl Figure for TargetLogitFigure {
    fn size(&self) -> (u32, u32) {
        (1200, 820)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let area = title_bar(root, "Target logit against θ (scale 1)", 56)?;
        let fallback = 180.0 - deg(ARCFACE_M);
        let axes = Axes {
            caption: format!(
                "ArcFace falls back to cos θ − m sin m past θ = 180° − m = {fallback:.1}°"
            ),
            x: (0.0, 180.0),
            y: (-2.6, 1.1),
            x_desc: "θ between feature and class weight (degrees)".into(),
            y_desc: "target logit".into(),
            legend: SeriesLabelPosition::UpperRight,
            legend_shown: true,
        };
        line_chart(&area, &axes, &self.series, |chart| {
            chart.draw_series(DashedLineSeries::new(
                vec![(fallback, -2.6), (fallback, 1.1)],
                6,
                6,
                BLACK.mix(0.45).stroke_width(2),
            ))?;
            Ok(())
        })
    }
}

/// One panel of the decision-margin figure.
#[derive(Debug, Clone)]
pub struct MarginPanel {
    /// Caption (the loss and its margin).
    pub caption: String,
    /// Class 1's boundary `(theta_1, theta_2)` in degrees; class 2's is its mirror image.
    pub boundary: Vec<(f64, f64)>,
}

impl MarginPanel {
    /// The boundary of `curve`: `theta_2 = acos(target(theta_1))`, or 180 degrees where class
    /// 1 cannot win.
    pub fn compute<B: Backend>(
        caption: &str,
        curve: &TargetCurve,
        device: &B::Device,
    ) -> Result<Self, FigureError> {
        let thetas = angle_grid(0.0, std::f64::consts::PI, GRID);
        let values = curve.eval::<B>(&thetas, device)?;
        let boundary = thetas
            .iter()
            .zip(values)
            .map(|(&t, v)| (deg(t), boundary_angle(v).map_or(180.0, deg)))
            .collect();
        Ok(Self {
            caption: caption.into(),
            boundary,
        })
    }

    /// The margin region (neither class wins) as a closed polygon: the `theta_2` axis up to
    /// class 1's boundary, along it, and back along class 2's mirrored boundary.
    pub fn margin_polygon(&self) -> Vec<(f64, f64)> {
        let mut poly = vec![(0.0, 0.0)];
        poly.extend(self.boundary.iter().copied());
        poly.push((180.0, 180.0));
        poly.extend(self.boundary.iter().rev().map(|&(a, b)| (b, a)));
        poly
    }
}

/// Two-class decision boundaries in angle space, one panel per loss.
#[derive(Debug, Clone)]
pub struct DecisionMarginFigure {
    /// Softmax, SphereFace, CosFace, ArcFace.
    pub panels: Vec<MarginPanel>,
}

impl DecisionMarginFigure {
    /// Computes the four panels.
    pub fn compute<B: Backend>(device: &B::Device) -> Result<Self, FigureError> {
        let panels = vec![
            MarginPanel::compute::<B>(
                "Softmax (unit W and x): no margin",
                &TargetCurve::cosine(),
                device,
            )?,
            MarginPanel::compute::<B>(
                &format!("SphereFace m = {SPHEREFACE_M}: ψ(θ₁) = cos θ₂"),
                &TargetCurve::sphereface(SPHEREFACE_M, 0.0),
                device,
            )?,
            MarginPanel::compute::<B>(
                &format!("CosFace m = {COSFACE_M}: cos θ₁ − m = cos θ₂"),
                &TargetCurve::cosface(COSFACE_M),
                device,
            )?,
            MarginPanel::compute::<B>(
                &format!("ArcFace m = {ARCFACE_M}: cos(θ₁ + m) = cos θ₂"),
                &TargetCurve::arcface(ARCFACE_M, false),
                device,
            )?,
        ];
        Ok(Self { panels })
    }
}

impl Figure for DecisionMarginFigure {
    fn size(&self) -> (u32, u32) {
        (1300, 1340)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let area = title_bar(
            root,
            "Decision boundaries for two classes (grey: the margin, where neither class wins)",
            56,
        )?;
        let cells = area.split_evenly((2, 2));
        for (panel, cell) in self.panels.iter().zip(cells.iter()) {
            let axes = Axes {
                caption: panel.caption.clone(),
                x: (0.0, 180.0),
                y: (0.0, 180.0),
                x_desc: "θ₁: angle to class 1 (degrees)".into(),
                y_desc: "θ₂: angle to class 2 (degrees)".into(),
                legend: SeriesLabelPosition::LowerRight,
                legend_shown: false,
            };
            let series = vec![
                Series {
                    label: "class 1 boundary".into(),
                    points: panel.boundary.clone(),
                    color: class_color(0),
                    dashed: false,
                },
                Series {
                    label: "class 2 boundary".into(),
                    points: panel.boundary.iter().map(|&(a, b)| (b, a)).collect(),
                    color: class_color(1),
                    dashed: false,
                },
            ];
            let poly = panel.margin_polygon();
            line_chart(cell, &axes, &series, |chart| {
                chart.draw_series(std::iter::once(Polygon::new(
                    poly,
                    RGBColor(0x80, 0x80, 0x80).mix(0.35).filled(),
                )))?;
                chart.draw_series(DashedLineSeries::new(
                    vec![(0.0, 0.0), (180.0, 180.0)],
                    6,
                    6,
                    BLACK.mix(0.35).stroke_width(1),
                ))?;
                for (label, x, y, class) in [
                    ("class 1 wins", 12.0, 168.0, 0),
                    ("class 2 wins", 112.0, 18.0, 1),
                ] {
                    let font = (crate::style::FONT, crate::style::CAPTION_SIZE)
                        .into_font()
                        .color(&class_color(class));
                    chart.draw_series(std::iter::once(Text::new(label, (x, y), font)))?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}

/// One panel of the AdaCos figure.
#[derive(Debug, Clone)]
pub struct ProbabilityPanel {
    /// Caption.
    pub caption: String,
    /// The curves, x in degrees.
    pub series: Vec<Series>,
}

/// AdaCos's `P(theta)` curves.
#[derive(Debug, Clone)]
pub struct AdaCosFigure {
    /// `C = 2000`, `C = 20000` (scales), and `s = 30` (margins).
    pub panels: Vec<ProbabilityPanel>,
}

impl AdaCosFigure {
    /// Computes the three panels on `[0, 90]` degrees.
    pub fn compute<B: Backend>(device: &B::Device) -> Result<Self, FigureError> {
        let thetas = angle_grid(0.0, std::f64::consts::FRAC_PI_2, GRID);
        let x: Vec<f64> = thetas.iter().map(|&t| deg(t)).collect();
        let cosine = TargetCurve::cosine().eval::<B>(&thetas, device)?;
        let mut panels = Vec::new();
        for classes in ADACOS_CLASSES {
            let mut series: Vec<Series> = ADACOS_SCALES
                .iter()
                .enumerate()
                .map(|(i, &s)| Series {
                    label: format!("s = {s}"),
                    points: x
                        .iter()
                        .copied()
                        .zip(adacos_probability(&cosine, s, classes))
                        .collect(),
                    color: class_color(i),
                    dashed: false,
                })
                .collect();
            let fixed = adacos_fixed_scale(classes);
            series.push(Series {
                label: format!("AdaCos fixed s = √2 ln(C−1) = {fixed:.2}"),
                points: x
                    .iter()
                    .copied()
                    .zip(adacos_probability(&cosine, fixed, classes))
                    .collect(),
                color: RGBColor(0, 0, 0),
                dashed: true,
            });
            panels.push(ProbabilityPanel {
                caption: format!("C = {classes}, no margin"),
                series,
            });
        }
        let (scale, classes) = (30.0, ADACOS_CLASSES[0]);
        let mut series = Vec::new();
        for (i, &m) in ADACOS_MARGINS.iter().enumerate() {
            let target = TargetCurve::arcface(m, false).eval::<B>(&thetas, device)?;
            series.push(Series {
                label: format!("m = {m}"),
                points: x
                    .iter()
                    .copied()
                    .zip(adacos_probability(&target, scale, classes))
                    .collect(),
                color: class_color(i),
                dashed: false,
            });
        }
        panels.push(ProbabilityPanel {
            caption: format!("s = {scale}, C = {classes}, ArcFace margin m"),
            series,
        });
        Ok(Self { panels })
    }
}

impl Figure for AdaCosFigure {
    fn size(&self) -> (u32, u32) {
        (1950, 720)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let area = title_bar(
            root,
            "AdaCos: target probability P(θ) = exp(s f(θ)) / (exp(s f(θ)) + C − 1), the other C − 1 classes at 90°",
            56,
        )?;
        let cells = area.split_evenly((1, self.panels.len().max(1)));
        for (panel, cell) in self.panels.iter().zip(cells.iter()) {
            let axes = Axes {
                caption: panel.caption.clone(),
                x: (0.0, 90.0),
                y: (0.0, 1.02),
                x_desc: "θ to the target class weight (degrees)".into(),
                y_desc: "P(θ)".into(),
                legend: SeriesLabelPosition::LowerLeft,
                legend_shown: true,
            };
            line_chart(cell, &axes, &panel.series, |_| Ok(()))?;
        }
        Ok(())
    }
}

/// Draws the three analytic figures into `dir` (PNG and SVG each) and returns the PNG paths.
pub fn write_analytic<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<Vec<PathBuf>, FigureError> {
    Ok(vec![
        save_figure(
            &TargetLogitFigure::compute::<B>(device)?,
            &dir.join("target_logits"),
        )?,
        save_figure(
            &DecisionMarginFigure::compute::<B>(device)?,
            &dir.join("decision_margins"),
        )?,
        save_figure(
            &AdaCosFigure::compute::<B>(device)?,
            &dir.join("adacos_probability"),
        )?,
    ])
}
