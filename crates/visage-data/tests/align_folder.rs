//! `align_folder` never loses data: outputs stay inside the output folder, never replace an
//! input, collide with nothing, and replace an earlier output only when asked; and on
//! legitimate input it writes one crop per line at the template's size.

use std::path::{Path, PathBuf};

use visage_data::align_folder::{align_folder, AlignOptions};
use visage_data::alignment::{AlignTemplate, ARCFACE_112};
use visage_data::ImageSample;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-align-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A 128x128 picture whose pixels depend on `seed`, written as PNG; returns its bytes.
fn picture(path: &Path, seed: u8) -> Vec<u8> {
    let (h, w) = (128usize, 128usize);
    let pixels: Vec<u8> = (0..h * w * 3)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    ImageSample::new(pixels, h, w, 0)
        .unwrap()
        .save(path)
        .unwrap();
    std::fs::read(path).unwrap()
}

/// A landmarks line: the 112 template shifted by (5, 7), which fits inside a 128x128 image.
fn line(path: &str) -> String {
    let mut s = path.to_string();
    for [x, y] in ARCFACE_112 {
        s.push_str(&format!(",{},{}", x + 5.0, y + 7.0));
    }
    s
}

fn csv(dir: &Path, lines: &[String]) -> PathBuf {
    let p = dir.join("landmarks.csv");
    std::fs::write(
        &p,
        format!("path,x1,y1,x2,y2,x3,y3,x4,y4,x5,y5\n{}\n", lines.join("\n")),
    )
    .unwrap();
    p
}

fn options(overwrite: bool) -> AlignOptions {
    AlignOptions {
        template: AlignTemplate::Arcface112,
        overwrite,
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn aligns_every_line_into_the_output_folder() {
    let d = scratch("ok");
    let images = d.join("images");
    picture(&images.join("a/1.png"), 1);
    picture(&images.join("b/2.png"), 2);
    let list = csv(&d, &[line("a/1.png"), line("./b/2.png")]);
    let out = d.join("out");
    let done = align_folder(&images, &list, &out, options(false)).unwrap();
    assert_eq!(done.aligned, 2);
    assert_eq!(done.image_size, (112, 112));
    let written = files_under(&out);
    assert_eq!(written, vec![out.join("a/1.png"), out.join("b/2.png")]);
    let img = visage_data::sample::read_image(&written[0], 0).unwrap();
    assert_eq!((img.height, img.width), (112, 112));
    // The crop of a shifted template is the source shifted back: pixel (0, 0) of the crop is
    // source pixel (7, 5).
    let src = visage_data::sample::read_image(&images.join("a/1.png"), 0).unwrap();
    assert_eq!(img.rgb(0, 0), src.rgb(7, 5));
    assert_eq!(img.rgb(20, 30), src.rgb(27, 35));
}

#[test]
fn an_absolute_path_is_refused_and_the_original_kept() {
    let d = scratch("abs");
    let images = d.join("images");
    let victim = d.join("elsewhere/face.png");
    let before = picture(&victim, 3);
    let list = csv(&d, &[line(victim.to_str().unwrap())]);
    let err = align_folder(&images, &list, &d.join("out"), options(true)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("landmarks.csv") && msg.contains("line 2"),
        "{msg}"
    );
    assert!(msg.contains("relative"), "{msg}");
    assert_eq!(std::fs::read(&victim).unwrap(), before);
}

#[test]
fn parent_components_are_refused_and_nothing_is_written_outside() {
    let d = scratch("dotdot");
    let images = d.join("images");
    picture(&images.join("ok.png"), 1);
    picture(&d.join("outside.png"), 2);
    let before = std::fs::read(d.join("outside.png")).unwrap();
    let list = csv(&d, &[line("ok.png"), line("sub/../../outside.png")]);
    let out = d.join("out");
    let err = align_folder(&images, &list, &out, options(true)).unwrap_err();
    assert!(err.to_string().contains("line 3"), "{err}");
    // Checked before anything is written: not even the good line's output exists.
    assert!(files_under(&out).is_empty());
    assert_eq!(std::fs::read(d.join("outside.png")).unwrap(), before);
}

#[test]
fn an_output_folder_that_is_the_images_folder_never_replaces_an_input() {
    let d = scratch("same");
    let images = d.join("images");
    let before = picture(&images.join("x.png"), 4);
    let list = csv(&d, &[line("x.png")]);
    // The same folder, spelled another way.
    for out in [images.clone(), d.join("images/./")] {
        let err = align_folder(&images, &list, &out, options(true)).unwrap_err();
        assert!(err.to_string().contains("input image of line 2"), "{err}");
        assert_eq!(std::fs::read(images.join("x.png")).unwrap(), before);
    }
}

#[cfg(unix)]
#[test]
fn symbolic_links_cannot_lead_an_output_onto_an_input_or_outside() {
    let d = scratch("links");
    let images = d.join("images");
    let before = picture(&images.join("sub/x.png"), 5);
    let list = csv(&d, &[line("sub/x.png")]);
    // out/sub -> images/sub: out/sub/x.png is the input itself.
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink(images.join("sub"), out.join("sub")).unwrap();
    let err = align_folder(&images, &list, &out, options(true)).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(images.join("sub/x.png")).unwrap(), before);
}

#[test]
fn two_lines_with_one_output_are_a_collision() {
    let d = scratch("collide");
    let images = d.join("images");
    picture(&images.join("a.png"), 1);
    std::fs::write(images.join("a.gif"), b"not read").unwrap();
    for lines in [
        vec![line("a.png"), line("a.png")],
        vec![line("a.png"), line("a.gif")],
    ] {
        let list = csv(&d, &lines);
        let out = d.join("out");
        let err = align_folder(&images, &list, &out, options(false)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 3") && msg.contains("line 2"), "{msg}");
        assert!(files_under(&out).is_empty());
    }
}

#[test]
fn an_earlier_output_is_replaced_only_with_overwrite() {
    let d = scratch("rerun");
    let images = d.join("images");
    picture(&images.join("a.png"), 1);
    let list = csv(&d, &[line("a.png")]);
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("a.png"), b"an earlier result").unwrap();
    let err = align_folder(&images, &list, &out, options(false)).unwrap_err();
    assert!(err.to_string().contains("--overwrite"), "{err}");
    assert_eq!(
        std::fs::read(out.join("a.png")).unwrap(),
        b"an earlier result"
    );
    align_folder(&images, &list, &out, options(true)).unwrap();
    let img = visage_data::sample::read_image(&out.join("a.png"), 0).unwrap();
    assert_eq!((img.height, img.width), (112, 112));
    // No temporary file left beside it.
    assert_eq!(files_under(&out), vec![out.join("a.png")]);
}

#[test]
fn a_missing_image_or_a_bad_line_names_the_line() {
    let d = scratch("bad");
    let images = d.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let list = csv(&d, &[line("missing.png")]);
    let err = align_folder(&images, &list, &d.join("out"), options(false)).unwrap_err();
    assert!(err.to_string().contains("line 2") && err.to_string().contains("missing.png"));
    let list = csv(&d, &["a.png,1,2,3".to_string()]);
    let err = align_folder(&images, &list, &d.join("out"), options(false)).unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    let list = csv(&d, &[line("a.png").replace(",43", ",inf")]);
    let err = align_folder(&images, &list, &d.join("out"), options(false)).unwrap_err();
    assert!(err.to_string().contains("finite"), "{err}");
}
