//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A fresh, empty temporary directory for one test (removed first if left over).
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small deterministic RGB image (HWC) whose pixel values encode their position.
pub fn pattern(h: usize, w: usize, salt: u8) -> Vec<u8> {
    let mut p = Vec::with_capacity(h * w * 3);
    for y in 0..h {
        for x in 0..w {
            p.push((x * 7 + salt as usize) as u8);
            p.push((y * 11) as u8);
            p.push(salt.wrapping_mul(3));
        }
    }
    p
}

/// PNG bytes of `pixels`, encoded with the `image` crate directly.
pub fn png(pixels: &[u8], h: usize, w: usize) -> Vec<u8> {
    let img = image::RgbImage::from_raw(w as u32, h as u32, pixels.to_vec()).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}
