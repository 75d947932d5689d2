//! The contact sheet: every run's figure scaled to one tile width, in a grid, as one PNG.

use std::path::{Path, PathBuf};

use image::{imageops, ImageFormat, Rgb, RgbImage};

use crate::FigureError;

/// Layout of a contact sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SheetLayout {
    /// Tiles per row.
    pub columns: usize,
    /// Width of every tile in pixels (heights keep each figure's aspect ratio).
    pub tile_width: u32,
    /// White gap between tiles and around the sheet.
    pub gap: u32,
}

impl Default for SheetLayout {
    fn default() -> Self {
        Self {
            columns: 3,
            tile_width: 930,
            gap: 12,
        }
    }
}

/// Places tiles of the given `(width, height)` row by row: returns each tile's top-left
/// corner and the sheet's size. Each row is as tall as its tallest tile.
pub fn place(sizes: &[(u32, u32)], layout: &SheetLayout) -> (Vec<(u32, u32)>, (u32, u32)) {
    let columns = layout.columns.max(1);
    let mut corners = Vec::with_capacity(sizes.len());
    let mut y = layout.gap;
    let mut width = layout.gap;
    for row in sizes.chunks(columns) {
        let mut x = layout.gap;
        for &(w, _) in row {
            corners.push((x, y));
            x += w + layout.gap;
        }
        width = width.max(x);
        y += row.iter().map(|s| s.1).max().unwrap_or(0) + layout.gap;
    }
    (corners, (width, y))
}

/// Reads the PNGs `figures`, scales each to `layout.tile_width` and writes the sheet to
/// `path` (through a temporary file renamed into place).
pub fn write_contact_sheet(
    figures: &[PathBuf],
    path: &Path,
    layout: &SheetLayout,
) -> Result<PathBuf, FigureError> {
    if figures.is_empty() {
        return Err(FigureError::setting(
            "contact sheet",
            "no figures to put on it",
        ));
    }
    let mut tiles = Vec::with_capacity(figures.len());
    for f in figures {
        let img = image::open(f)
            .map_err(|e| FigureError::Plot {
                path: f.clone(),
                reason: format!("cannot read it back: {e}"),
            })?
            .to_rgb8();
        let h = ((img.height() as f64) * layout.tile_width as f64 / img.width().max(1) as f64)
            .round()
            .max(1.0) as u32;
        tiles.push(imageops::resize(
            &img,
            layout.tile_width,
            h,
            imageops::FilterType::Lanczos3,
        ));
    }
    let sizes: Vec<(u32, u32)> = tiles.iter().map(|t| (t.width(), t.height())).collect();
    let (corners, (w, h)) = place(&sizes, layout);
    let mut sheet = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    for (tile, (x, y)) in tiles.iter().zip(corners) {
        imageops::replace(&mut sheet, tile, x as i64, y as i64);
    }
    visage_io::write_atomic_by_path(path, |tmp| sheet.save_with_format(tmp, ImageFormat::Png))
        .map_err(|e| match e {
            visage_io::ByPathError::Produce(e) => FigureError::Plot {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
            visage_io::ByPathError::File(e) => {
                let (path, source) = e.into_path_and_io();
                FigureError::io(path, source)
            }
        })?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_go_row_by_row() {
        let layout = SheetLayout {
            columns: 2,
            tile_width: 10,
            gap: 1,
        };
        let (corners, size) = place(&[(10, 5), (10, 7), (10, 4)], &layout);
        // Row 1 is 7 tall (its tallest tile), row 2 starts at 1 + 7 + 1.
        assert_eq!(corners, vec![(1, 1), (12, 1), (1, 9)]);
        assert_eq!(size, (23, 14));
    }
}
