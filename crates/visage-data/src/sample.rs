//! One decoded image with its class label, and the decoding/encoding helpers around it.

use std::path::Path;

use crate::error::{DataError, Result};

/// A decoded RGB image, row-major height x width x 3 (HWC), with its class label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSample {
    /// Pixels in HWC order, RGB, `height * width * 3` bytes.
    pub pixels: Vec<u8>,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Class (identity) index.
    pub label: usize,
}

impl ImageSample {
    /// A sample from raw HWC RGB pixels; errors when the buffer length does not match.
    pub fn new(pixels: Vec<u8>, height: usize, width: usize, label: usize) -> Result<Self> {
        let need = height.checked_mul(width).and_then(|n| n.checked_mul(3));
        if need != Some(pixels.len()) {
            return Err(DataError::Invalid(format!(
                "ImageSample: {} bytes for {height}x{width}x3 (expected {})",
                pixels.len(),
                need.map_or_else(|| "more than usize::MAX".to_string(), |n| n.to_string())
            )));
        }
        Ok(Self {
            pixels,
            height,
            width,
            label,
        })
    }

    /// The RGB value at (`y`, `x`).
    pub fn rgb(&self, y: usize, x: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Encodes as PNG bytes (lossless).
    pub fn to_png(&self) -> Result<Vec<u8>> {
        encode_png(&self.pixels, self.height, self.width)
    }

    /// Writes the image to `path` (format from the extension: png, jpg/jpeg), through a
    /// temporary file renamed into place.
    pub fn save(&self, path: &Path) -> Result<()> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .unwrap_or_default();
        let bytes = match ext.as_str() {
            "jpg" | "jpeg" => encode_jpeg(&self.pixels, self.height, self.width, 95)?,
            "png" => self.to_png()?,
            other => {
                return Err(DataError::Invalid(format!(
                    "{}: unsupported image extension {other:?} (expected png, jpg or jpeg)",
                    path.display()
                )))
            }
        };
        write_atomic(path, &bytes)
    }
}

/// Largest width or height of an image this crate decodes (pixels).
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// Most memory one image decode may allocate (bytes), whatever its header announces.
pub const MAX_IMAGE_ALLOC: u64 = 256 << 20;
/// Decoding may allocate at most this many bytes per encoded byte (deflate expands at most
/// 1032:1, JPEG far less), with a floor of [`MIN_IMAGE_ALLOC`]: a 100-byte file that announces
/// a 16384x16384 image is refused before its buffer is allocated.
pub const IMAGE_EXPANSION: u64 = 2048;
/// The decode allocation every image is allowed, however small its file (16 MiB: RGB images
/// of up to about 2300x2300).
pub const MIN_IMAGE_ALLOC: u64 = 16 << 20;

/// Decodes JPEG or PNG `bytes` to RGB; `path` and `record` only name the source in errors.
///
/// The decoder runs under limits ([`MAX_IMAGE_SIDE`]; an allocation budget of
/// [`IMAGE_EXPANSION`] x the encoded size, between [`MIN_IMAGE_ALLOC`] and
/// [`MAX_IMAGE_ALLOC`]), so a header that announces a huge image is an error, not an
/// allocation; a panic inside the third-party decoder is caught and returned as a
/// [`DataError::Image`] too.
pub fn decode_image(bytes: &[u8], label: usize, path: &Path, record: &str) -> Result<ImageSample> {
    let err = |message: String| DataError::Image {
        path: path.to_path_buf(),
        record: record.to_string(),
        message,
    };
    let decoded = std::panic::catch_unwind(|| {
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_IMAGE_SIDE);
        limits.max_image_height = Some(MAX_IMAGE_SIDE);
        limits.max_alloc = Some(
            (bytes.len() as u64)
                .saturating_mul(IMAGE_EXPANSION)
                .clamp(MIN_IMAGE_ALLOC, MAX_IMAGE_ALLOC),
        );
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| e.to_string())?;
        reader.limits(limits);
        reader.decode().map_err(|e| e.to_string())
    })
    .map_err(|_| err("the image decoder panicked on this input".into()))?;
    let img = decoded.map_err(err)?;
    if img.width() == 0 || img.height() == 0 {
        return Err(err(format!(
            "image of {}x{} pixels (an image needs at least one pixel)",
            img.height(),
            img.width()
        )));
    }
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    Ok(ImageSample {
        pixels: rgb.into_raw(),
        height: h,
        width: w,
        label,
    })
}

/// Reads and decodes the image file at `path`.
/// A non-regular file (FIFO, device) or one over [`crate::read::MAX_IMAGE_FILE_BYTES`] is
/// refused before it is read.
pub fn read_image(path: &Path, label: usize) -> Result<ImageSample> {
    let bytes = crate::read::read_regular(path, crate::read::MAX_IMAGE_FILE_BYTES)?;
    decode_image(&bytes, label, path, "image")
}

/// Encodes HWC RGB pixels as PNG.
pub fn encode_png(pixels: &[u8], height: usize, width: usize) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            pixels,
            width as u32,
            height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| DataError::Invalid(format!("PNG encoding failed: {e}")))?;
    Ok(out)
}

/// Encodes HWC RGB pixels as JPEG with `quality` (1..=100).
pub fn encode_jpeg(pixels: &[u8], height: usize, width: usize, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode(
            pixels,
            width as u32,
            height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| DataError::Invalid(format!("JPEG encoding failed: {e}")))?;
    Ok(out)
}

/// Writes `bytes` to a temporary file next to `path`, then renames it into place; on failure
/// the temporary is removed and `path` is as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    visage_io::write_atomic(path, bytes).map_err(|e| {
        let (path, source) = e.into_path_and_io();
        DataError::io(path, source)
    })
}

/// A fresh temporary sibling of `path` ([`visage_io::temporary_sibling`]), for a file
/// written in pieces and renamed into place by the caller.
pub fn temp_path(path: &Path) -> std::path::PathBuf {
    visage_io::temporary_sibling(path)
}
