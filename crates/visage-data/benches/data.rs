//! `cargo xtask bench data`: images/s per core decoded and augmented from a JPEG RecordIO pack,
//! and synthetic generation, at 112x112. Every figure is also printed as a ratio to the
//! baseline measured in the same run: JPEG decode alone on one thread.

use std::time::Instant;

use visage_data::loader::{load_augmented, load_samples};
use visage_data::recordio::{pack_image_folder, RecordIo};
use visage_data::sample::encode_jpeg;
use visage_data::synthetic::{SynthConfig, SyntheticDataset, SyntheticSplit};
use visage_data::{AugmentConfig, ImageFolder, SampleSource};

fn rate<F: FnMut() -> usize>(mut f: F) -> f64 {
    f(); // warm-up
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed().as_secs_f64() < 2.0 {
        n += f();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let size = 112;
    let (ids, per) = (32, 8);
    let dir = std::env::temp_dir().join(format!("visage-bench-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let synth = SyntheticDataset::new(
        SynthConfig {
            size,
            seed: 0,
            difficulty: 1.0,
        },
        SyntheticSplit::Train,
        ids,
        per,
    );
    for i in 0..synth.len() {
        let s = synth.get(i).unwrap();
        let d = dir.join("folder").join(format!("id{:04}", s.label));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join(format!("{i:05}.jpg")),
            encode_jpeg(&s.pixels, size, size, 90).unwrap(),
        )
        .unwrap();
    }
    std::fs::create_dir_all(dir.join("pack")).unwrap();
    pack_image_folder(
        &ImageFolder::open(&dir.join("folder")).unwrap(),
        &dir.join("pack").join("train"),
    )
    .unwrap();
    let rec = RecordIo::open(&dir.join("pack").join("train")).unwrap();
    let idx: Vec<usize> = (0..rec.len()).collect();
    let aug = AugmentConfig {
        crop_min_scale: 0.85,
        jitter: 0.2,
        grey_p: 0.1,
        ..AugmentConfig::default()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let all = rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .build()
        .unwrap();

    let base = one.install(|| rate(|| load_samples(&rec, &idx).unwrap().len()));
    let mut epoch = 0;
    let mut aug_rate = |pool: &rayon::ThreadPool| {
        pool.install(|| {
            rate(|| {
                epoch += 1;
                load_augmented(&rec, &idx, &aug, 0, epoch, 0).unwrap().len()
            })
        })
    };
    let rec1 = aug_rate(&one);
    let recn = aug_rate(&all) / cores as f64;
    let gen = |pool: &rayon::ThreadPool| {
        pool.install(|| rate(|| load_samples(&synth, &idx).unwrap().len()))
    };
    let syn1 = gen(&one);
    let synn = gen(&all) / cores as f64;

    println!(
        "data bench: {} images of {size}x{size}, {cores} cores",
        rec.len()
    );
    println!("{:<52} {:>10} {:>8}", "case", "img/s/core", "ratio");
    for (name, r) in [
        ("baseline: RecordIO JPEG decode, 1 thread", base),
        ("RecordIO JPEG decode + augment, 1 thread", rec1),
        (
            &*format!("RecordIO JPEG decode + augment, {cores} threads"),
            recn,
        ),
        ("synthetic generation, 1 thread", syn1),
        (&*format!("synthetic generation, {cores} threads"), synn),
    ] {
        println!("{name:<52} {r:>10.1} {:>8.3}", r / base);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
