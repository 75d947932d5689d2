//! Mutation harness for LFW pair sets: a generated LFW layout (identity folders and a valid
//! `pairs.txt`), then `pairs.txt` mutated (huge numbers in the header and lines, cut,
//! duplicated or dropped lines, bit flips) or one image file mutated, then opened, decoded,
//! and `inspect --deep` run. See `fuzz/mod.rs`.

mod fuzz;

use std::path::Path;
use std::sync::Arc;

use fuzz::{below, encoded_image, mutate, outcome, Outcome};
use visage_data::{Lfw, SplitMix64};

fn exercise(dir: &Path, valid: bool) -> visage_data::Result<()> {
    let l = Lfw::open(dir)?;
    l.decode()?;
    fuzz::inspect_deep(dir, valid)?;
    Ok(())
}

#[test]
fn fuzz_lfw() {
    let dir = fuzz::work_dir("lfw");
    let case = move |i: usize, r: &mut SplitMix64| -> (String, Outcome) {
        let d = dir.join("case");
        let _ = std::fs::remove_dir_all(&d);
        let ids = 2 + below(r, 3);
        let per_id = 2 + below(r, 2);
        let (h, w) = (1 + below(r, 5), 1 + below(r, 5));
        let name = |k: usize| format!("Person_{k}");
        let mut files = Vec::new();
        for k in 0..ids {
            std::fs::create_dir_all(d.join(name(k))).unwrap();
            for j in 1..=per_id {
                let p = d.join(name(k)).join(format!("{}_{j:04}.png", name(k)));
                std::fs::write(&p, encoded_image(r, h, w)).unwrap();
                files.push(p);
            }
        }
        let (folds, per_fold) = (1 + below(r, 3), 1 + below(r, 2));
        let mut text = format!("{folds}\t{per_fold}\n");
        for _ in 0..folds {
            for _ in 0..per_fold {
                let k = below(r, ids);
                let a = 1 + below(r, per_id);
                let b = 1 + (a % per_id);
                text += &format!("{}\t{a}\t{b}\n", name(k));
            }
            for _ in 0..per_fold {
                let k = below(r, ids);
                let m = (k + 1 + below(r, ids - 1)) % ids;
                let (a, b) = (1 + below(r, per_id), 1 + below(r, per_id));
                text += &format!("{}\t{a}\t{}\t{b}\n", name(k), name(m));
            }
        }
        let mut pairs = text.into_bytes();
        let desc = if fuzz::valid_case(i) {
            "valid".to_string()
        } else if below(r, 5) != 0 {
            format!("pairs.txt: {}", mutate(&mut pairs, r))
        } else {
            let f = &files[below(r, files.len())];
            let mut b = std::fs::read(f).unwrap();
            let m = mutate(&mut b, r);
            std::fs::write(f, b).unwrap();
            format!("{}: {m}", f.file_name().unwrap().to_string_lossy())
        };
        std::fs::write(d.join("pairs.txt"), &pairs).unwrap();
        (desc, outcome(exercise(&d, fuzz::valid_case(i))))
    };
    fuzz::run("lfw", Arc::new(case));
}
