//! The look shared by every figure (palette, fonts sized to stay readable at half size) and
//! the atomic PNG + SVG writer.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::FigureError;

/// Ten distinguishable class colours (the "tab10" palette).
pub const CLASS_COLORS: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// The colour of class `class` (the palette repeats past ten classes).
pub fn class_color(class: usize) -> RGBColor {
    CLASS_COLORS[class % CLASS_COLORS.len()]
}

/// Font family of every text.
pub const FONT: &str = "sans-serif";
/// Figure title size (pixels).
pub const TITLE_SIZE: u32 = 34;
/// Panel caption size.
pub const CAPTION_SIZE: u32 = 27;
/// Axis description size.
pub const AXIS_SIZE: u32 = 23;
/// Tick label size.
pub const TICK_SIZE: u32 = 19;
/// Legend text size.
pub const LEGEND_SIZE: u32 = 21;

/// Something that draws itself on any plotters backend (a PNG bitmap or an SVG document).
pub trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws the figure on `root`, already filled white.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static;
}

fn render<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    figure: &impl Figure,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    (|| {
        root.fill(&WHITE)?;
        figure.draw(&root)?;
        root.present()?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })()
    .map_err(|e| e.to_string())
}

/// Draws into a temporary beside `path` with `draw`, then renames it into place
/// ([`visage_io::write_atomic_by_path`]).
fn draw_atomic(
    path: &Path,
    draw: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), FigureError> {
    visage_io::write_atomic_by_path(path, draw).map_err(|e| match e {
        visage_io::ByPathError::Produce(reason) => FigureError::Plot {
            path: path.to_path_buf(),
            reason,
        },
        visage_io::ByPathError::File(e) => {
            let (path, source) = e.into_path_and_io();
            FigureError::io(path, source)
        }
    })
}

/// `path` with `suffix` appended to its file name (`cosface-m0.1` + `.png`, keeping the
/// `.1` that `Path::with_extension` would replace).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes `figure` as `stem.png` and `stem.svg` (each drawn into a temporary file beside it
/// and renamed into place) and returns the PNG's path.
pub fn save_figure(figure: &impl Figure, stem: &Path) -> Result<PathBuf, FigureError> {
    let png = with_suffix(stem, ".png");
    let svg = with_suffix(stem, ".svg");
    if let Some(dir) = png.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| FigureError::io(dir, e))?;
    }
    let size = figure.size();
    draw_atomic(&png, |tmp| {
        render(BitMapBackend::new(tmp, size).into_drawing_area(), figure)
    })?;
    draw_atomic(&svg, |tmp| {
        render(SVGBackend::new(tmp, size).into_drawing_area(), figure)
    })?;
    Ok(png)
}

/// Draws `title` centred in the top `height` pixels of `root` and returns the area below.
pub fn title_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    height: u32,
) -> Result<DrawingArea<DB, Shift>, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let (top, rest) = root.split_vertically(height);
    let (w, h) = top.dim_in_pixel();
    let style = TextStyle::from((FONT, TITLE_SIZE).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    top.draw(&Text::new(
        title.to_string(),
        (w as i32 / 2, h as i32 / 2),
        style,
    ))?;
    Ok(rest)
}
