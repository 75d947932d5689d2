//! Mutation harness for image folders (`root/<identity>/<image>`): a generated folder of PNG
//! and JPEG images, one image mutated (or replaced by an empty file or a folder), then
//! listed, every image decoded, labels checked, `inspect --deep` run, and the folder packed
//! into RecordIO and read back. See `fuzz/mod.rs`.

mod fuzz;

use std::path::Path;
use std::sync::Arc;

use fuzz::{below, encoded_image, mutate, outcome, Outcome};
use visage_data::recordio::pack_image_folder;
use visage_data::{ImageFolder, RecordIo, SampleSource, SplitMix64};

fn exercise(root: &Path, pack: &Path, valid: bool) -> visage_data::Result<()> {
    let f = ImageFolder::open(root)?;
    for i in 0..f.len() {
        f.get(i)?;
    }
    f.check_labels()?;
    fuzz::inspect_deep(root, valid)?;
    pack_image_folder(&f, pack)?;
    let r = RecordIo::open(pack)?;
    r.check_labels()?;
    for i in 0..r.len() {
        r.get(i)?;
    }
    fuzz::inspect_deep(pack, valid)?;
    Ok(())
}

#[test]
fn fuzz_image_folder() {
    let dir = fuzz::work_dir("folder");
    let case = move |i: usize, r: &mut SplitMix64| -> (String, Outcome) {
        let d = dir.join("case");
        let _ = std::fs::remove_dir_all(&d);
        let root = d.join("images");
        let (h, w) = (1 + below(r, 6), 1 + below(r, 6));
        let mut files = Vec::new();
        for k in 0..1 + below(r, 3) {
            let id = root.join(format!("id{k}"));
            std::fs::create_dir_all(&id).unwrap();
            for j in 0..1 + below(r, 3) {
                let bytes = encoded_image(r, h, w);
                let ext = if bytes.starts_with(b"\x89PNG") {
                    "png"
                } else {
                    "jpg"
                };
                let p = id.join(format!("{j}.{ext}"));
                std::fs::write(&p, bytes).unwrap();
                files.push(p);
            }
        }
        let desc = if fuzz::valid_case(i) {
            "valid".to_string()
        } else {
            let f = &files[below(r, files.len())];
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            match below(r, 12) {
                0 => {
                    std::fs::write(f, b"").unwrap();
                    format!("{name}: empty")
                }
                1 => {
                    std::fs::remove_file(f).unwrap();
                    std::fs::create_dir(f).unwrap();
                    format!("{name}: a folder")
                }
                _ => {
                    let mut b = std::fs::read(f).unwrap();
                    let m = mutate(&mut b, r);
                    std::fs::write(f, b).unwrap();
                    format!("{name}: {m}")
                }
            }
        };
        std::fs::create_dir_all(d.join("pack")).unwrap();
        (
            desc,
            outcome(exercise(
                &root,
                &d.join("pack").join("train"),
                fuzz::valid_case(i),
            )),
        )
    };
    fuzz::run("image_folder", Arc::new(case));
}
