//! A few steps of each head family on tiny synthetic data: the loss goes down and stays
//! finite; a run stopped between checkpoints and resumed equals the uninterrupted run; config
//! errors name their key; a corrupt checkpoint is an error and is not overwritten. The
//! integrity rules: a folder holding a run is refused, a corrupt newest checkpoint is skipped
//! (and named) for the newest intact one, kill leftovers are removed, `metrics.jsonl` holds
//! one whole line per step after any resume, a finished run resumed changes nothing, and a
//! write that fails after any number of bytes loses nothing and the run recovers.

mod common;

use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use visage_train::{train, TrainConfig, TrainError, TrainOptions};

type B = Autodiff<Flex>;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// 6 identities x 4 images of 28x28, LeNets++ on RGB, one batch = the whole set.
fn config(head: &str, extra_train: &str) -> TrainConfig {
    let text = format!(
        r#"
[data]
kind = "synthetic"
identities = 6
images_per_identity = 4
image_size = 28
difficulty = 0.3
flip = 0.0

[backbone]
kind = "lenet_pp"
in_channels = 3
embedding_dim = 16

[head]
{head}

[optim]
lr = 0.02

[schedule]
kind = "constant"

[train]
batch_size = 24
seed = 3
log_every = 1
{extra_train}
"#
    );
    toml::from_str(&text).expect("test config parses")
}

fn run(
    config: &TrainConfig,
    dir: &std::path::Path,
    options: TrainOptions,
) -> Result<visage_train::TrainSummary, TrainError> {
    train::<B>(
        config,
        dir,
        &TrainOptions {
            quiet: true,
            ..options
        },
        &Default::default(),
    )
}

#[test]
fn every_head_family_lowers_the_loss() {
    let heads = [
        ("softmax", "kind = \"softmax\"", "steps = 12"),
        (
            "arcface",
            "kind = \"arcface\"\nscale = 8.0\nmargin = 0.2",
            "steps = 12",
        ),
        (
            "cosface",
            "kind = \"cosface\"\nscale = 8.0\nmargin = 0.1",
            "steps = 12",
        ),
        (
            "sphereface",
            "kind = \"sphereface\"\nmargin_int = 2\nbase = 5.0\ngamma = 0.0\nlambda_min = 5.0",
            "steps = 12",
        ),
        ("adacos", "kind = \"adacos\"\ndynamic = true", "steps = 12"),
        (
            "center",
            "kind = \"softmax\"\n[head.center]\nweight = 0.01",
            "steps = 12",
        ),
        (
            "triplet",
            "kind = \"triplet\"\nmargin = 0.2",
            "steps = 12\nsampler = \"pk\"\nk = 4",
        ),
        (
            "contrastive",
            "kind = \"contrastive\"",
            "steps = 12\nsampler = \"pk\"\nk = 4",
        ),
        ("deepid2", "kind = \"deepid2\"", "steps = 12"),
    ];
    for (name, head, extra) in heads {
        let c = config(head, extra);
        let s =
            run(&c, &tmp(name), TrainOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let l: Vec<f64> = s.losses.iter().map(|x| x.1).collect();
        assert!(l.iter().all(|v| v.is_finite()), "{name}: {l:?}");
        let first: f64 = l[..3].iter().sum::<f64>() / 3.0;
        let last: f64 = l[l.len() - 3..].iter().sum::<f64>() / 3.0;
        assert!(last < first, "{name}: loss did not go down: {l:?}");
    }
}

#[test]
fn subcenter_arcface_trains_from_its_config_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs/subcenter-arcface.toml");
    // Through `from_file`: the file names its base (configs/base/synth.toml).
    let file = TrainConfig::from_file(&path).expect("config file resolves");
    assert_eq!(
        file.head.spec,
        visage_heads::HeadConfig::SubCenterArcFace(visage_heads::heads::SubCenterArcFaceConfig {
            scale: 16.0,
            margin: 0.3,
            k: 3,
            chunk_classes: None,
        })
    );
    // the file's [head] on the tiny data: K = 3 rows per class, loss finite and going down
    let head = toml::to_string(&file.head.table).expect("head table");
    let c = config(&head, "steps = 12");
    let model = visage_train::init_model::<B>(&c, 6, &Default::default()).expect("model");
    assert_eq!(model.head.class_tensor().unwrap().dims(), [18, 16]);
    let s = run(&c, &tmp("subcenter"), TrainOptions::default()).expect("trains");
    let l: Vec<f64> = s.losses.iter().map(|x| x.1).collect();
    assert_eq!(l.len(), 12);
    assert!(l.iter().all(|v| v.is_finite()), "{l:?}");
    let first: f64 = l[..3].iter().sum::<f64>() / 3.0;
    let last: f64 = l[l.len() - 3..].iter().sum::<f64>() / 3.0;
    assert!(last < first, "loss did not go down: {l:?}");
}

#[test]
fn resume_equals_the_uninterrupted_run() {
    let c = config(
        "kind = \"arcface\"\nscale = 8.0\nmargin = 0.2",
        "steps = 7\ncheckpoint_every = 2",
    );
    let start = initial(&c, "straight-init");
    let straight = run(&c, &tmp("straight"), start.clone()).unwrap();
    let dir = tmp("killed");
    // Killed after step 5: the last checkpoint is at step 4.
    let first = run(
        &c,
        &dir,
        TrainOptions {
            stop_after: Some(5),
            ..start.clone()
        },
    )
    .unwrap();
    assert!(first.interrupted);
    let resumed = run(
        &c,
        &dir,
        TrainOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(resumed.losses.first().map(|l| l.0), Some(4));
    for (step, loss) in &resumed.losses {
        let reference = straight.losses[*step as usize].1;
        assert_eq!(
            *loss, reference,
            "step {step}: resumed {loss} vs uninterrupted {reference}"
        );
    }
}

#[test]
fn config_errors_name_the_key() {
    let unknown = toml::from_str::<TrainConfig>(
        "[data]\nkind = \"synthetic\"\nidentities = 2\nimages_per_identity = 2\n[backbone]\nkind = \"lenet_pp\"\n[head]\nkind = \"softmax\"\n[train]\nbatch_size = 4\nsteps = 1\nlearning_rate = 0.1\n",
    )
    .unwrap_err()
    .to_string();
    assert!(unknown.contains("learning_rate"), "{unknown}");
    let c = config("kind = \"triplet\"", "steps = 2\nsampler = \"pk\"\nk = 5");
    let err = c.validate_static().unwrap_err().to_string();
    assert!(err.contains("train.batch_size"), "{err}");
    let mut c = config("kind = \"softmax\"", "steps = 2");
    c.optim.lr = Some(-1.0);
    assert!(c
        .validate_static()
        .unwrap_err()
        .to_string()
        .contains("optim.lr"));
    let mut c = config("kind = \"softmax\"", "steps = 2");
    c.backbone.input_size = Some([32, 32]);
    let err = run(&c, &tmp("size"), TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("backbone.input_size"), "{err}");
    let c = config("kind = \"arcface\"\nmargin = 3.0", "steps = 2");
    let err = run(&c, &tmp("margin"), TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("margin"), "{err}");
}

#[test]
fn a_corrupt_checkpoint_is_an_error_and_is_kept() {
    let c = config("kind = \"softmax\"", "steps = 4\ncheckpoint_every = 2");
    let dir = tmp("corrupt");
    run(
        &c,
        &dir,
        TrainOptions {
            stop_after: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    let state = dir.join("checkpoints/step-00000002/state.json");
    std::fs::write(&state, "{ not json").unwrap();
    let err = run(
        &c,
        &dir,
        TrainOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    // The manifest's hash catches the change; the only checkpoint is named and kept.
    assert!(
        err.contains("step-00000002") && err.contains("state.json has 10 bytes; the manifest says"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "{ not json");
}

fn embed(model: &visage_train::Trainee<B>) -> Vec<f32> {
    use burn::module::AutodiffModule;
    let x = burn::tensor::Tensor::<Flex, 4>::ones([2, 3, 28, 28], &Default::default());
    model
        .backbone
        .valid()
        .forward(x)
        .into_data()
        .into_vec::<f32>()
        .unwrap()
}

#[test]
fn an_initial_model_round_trips_and_starts_the_run() {
    use visage_train::{init_model, load_model, save_model};
    let device = Default::default();
    let c = config("kind = \"arcface\"\nscale = 8.0\nmargin = 0.2", "steps = 3");
    let mut other_seed = c.clone();
    other_seed.train.seed = 11;
    let dir = tmp("initial");
    std::fs::create_dir_all(&dir).unwrap();

    // The record holds the weights: loading it into a model drawn from another seed gives
    // the saved model's embeddings exactly.
    let saved = init_model::<B>(&other_seed, 6, &device).unwrap();
    let path = save_model(&saved, &dir.join("init")).unwrap();
    assert_eq!(path, dir.join("init.bin"));
    let fresh = init_model::<B>(&c, 6, &device).unwrap();
    assert_ne!(embed(&fresh), embed(&saved));
    let loaded = load_model(fresh, &path, &device).unwrap();
    assert_eq!(embed(&loaded), embed(&saved));
    assert!(!dir.join(".init-partial.bin").exists());

    // A run from the seed's own initial model equals the plain run bit for bit; a run from
    // another model does not start where the plain run does.
    let own = save_model(&init_model::<B>(&c, 6, &device).unwrap(), &dir.join("own")).unwrap();
    let plain = run(&c, &tmp("initial-plain"), TrainOptions::default()).unwrap();
    let from = |p: &std::path::Path, name: &str| {
        run(
            &c,
            &tmp(name),
            TrainOptions {
                initial_model: Some(p.to_path_buf()),
                ..Default::default()
            },
        )
        .unwrap()
    };
    assert_eq!(from(&own, "initial-own").losses, plain.losses);
    let moved = from(&path, "initial-other");
    assert_ne!(moved.losses[0].1, plain.losses[0].1);

    // A missing record is an error naming it.
    let err = run(
        &c,
        &tmp("initial-missing"),
        TrainOptions {
            initial_model: Some(dir.join("nope.bin")),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("nope.bin"), "{err}");

    // A length prefix of 2^60 in a 9-byte file is an error naming it, not an allocation abort.
    let huge = dir.join("huge.bin");
    std::fs::write(
        &huge,
        [0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f],
    )
    .unwrap();
    let err = run(
        &c,
        &tmp("initial-huge"),
        TrainOptions {
            initial_model: Some(huge),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("huge.bin") && err.contains("not a model record"),
        "{err}"
    );
}

fn backbone_embed(config: &TrainConfig, record: &std::path::Path) -> Vec<f32> {
    let device = Default::default();
    let model = config.backbone.init::<Flex>(&device).unwrap();
    let model = visage_train::load_backbone(model, record, &device).unwrap();
    let x = burn::tensor::Tensor::<Flex, 4>::ones([2, 3, 28, 28], &device);
    model.forward(x).into_data().into_vec::<f32>().unwrap()
}

#[test]
fn init_backbone_starts_from_another_runs_network() {
    // A softmax run, then an ArcFace run from its backbone with a learning rate too small
    // to move it: the second run's backbone is the first's; without `init_backbone` it is
    // the random initialisation, far from it.
    let first = config("kind = \"softmax\"", "steps = 2");
    let first_dir = tmp("init-backbone-first");
    run(&first, &first_dir, TrainOptions::default()).unwrap();
    let record = first_dir.join("backbone.bin");
    let trained = backbone_embed(&first, &record);

    let arcface = "kind = \"arcface\"\nscale = 8.0\nmargin = 0.2";
    let mut second = config(arcface, "steps = 1");
    second.train.seed = 5;
    second.optim.lr = Some(1e-12);
    second.train.init_backbone = Some(record.clone());
    let second_dir = tmp("init-backbone-second");
    run(&second, &second_dir, TrainOptions::default()).unwrap();
    let started = backbone_embed(&second, &second_dir.join("backbone.bin"));
    let scale = trained.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    for (a, b) in started.iter().zip(&trained) {
        assert!((a - b).abs() <= 1e-5 * scale, "{a} vs {b}");
    }
    second.train.init_backbone = None;
    let random_dir = tmp("init-backbone-random");
    run(&second, &random_dir, TrainOptions::default()).unwrap();
    let random = backbone_embed(&second, &random_dir.join("backbone.bin"));
    let far = random
        .iter()
        .zip(&trained)
        .any(|(a, b)| (a - b).abs() > 1e-2 * scale);
    assert!(
        far,
        "the random start should differ from the trained network"
    );

    // Errors name the key or the file, and never panic: a missing file, a file that is not a
    // record, a record of another layout (16-d embedding into an 8-d network).
    second.train.init_backbone = Some(first_dir.join("nope.bin"));
    let err = second.validate_static().unwrap_err().to_string();
    assert!(
        err.contains("train.init_backbone") && err.contains("nope.bin"),
        "{err}"
    );
    let junk = first_dir.join("junk.bin");
    std::fs::write(&junk, b"not a record").unwrap();
    second.train.init_backbone = Some(junk);
    let err = run(&second, &tmp("init-backbone-junk"), TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("junk.bin"), "{err}");
    let mut narrow = config(arcface, "steps = 1");
    narrow.backbone.embedding_dim = Some(8);
    narrow.train.init_backbone = Some(record);
    let err = run(
        &narrow,
        &tmp("init-backbone-narrow"),
        TrainOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("backbone.bin") && err.contains("does not fit"),
        "{err}"
    );
}

/// `metrics.jsonl` as (step, loss) of its loss lines, checking every line is whole JSON.
fn loss_lines(dir: &std::path::Path) -> Vec<(u64, f32)> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "half line: {text:?}"
    );
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"))
        })
        .filter_map(|v| Some((v["step"].as_u64()?, v.get("loss")?.as_f64()? as f32)))
        .collect()
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A model record of `config`'s initialisation: runs that start from it do not depend on
/// Burn's global RNG, which tests running in parallel share.
fn initial(config: &TrainConfig, name: &str) -> TrainOptions {
    let dir = tmp(name);
    std::fs::create_dir_all(&dir).unwrap();
    let model = visage_train::init_model::<B>(config, 6, &Default::default()).unwrap();
    let path = visage_train::save_model(&model, &dir.join("init")).unwrap();
    TrainOptions {
        initial_model: Some(path),
        ..Default::default()
    }
}

fn resume() -> TrainOptions {
    TrainOptions {
        resume: true,
        ..Default::default()
    }
}

#[test]
fn a_folder_holding_a_run_is_refused_and_the_run_survives() {
    let c = config("kind = \"softmax\"", "steps = 4\ncheckpoint_every = 2");
    let dir = tmp("occupied");
    run(
        &c,
        &dir,
        TrainOptions {
            stop_after: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    let before: Vec<(String, Vec<u8>)> = [
        "config.toml",
        "metrics.jsonl",
        "checkpoints/step-00000002/model.bin",
    ]
    .iter()
    .map(|f| (f.to_string(), std::fs::read(dir.join(f)).unwrap()))
    .collect();
    // Another config into the same folder: refused before anything is written.
    let other = config("kind = \"normface\"", "steps = 9\ncheckpoint_every = 1");
    let err = run(&other, &dir, TrainOptions::default()).unwrap_err();
    assert!(matches!(err, TrainError::RunExists { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("config.toml") && msg.contains("--overwrite"),
        "{msg}"
    );
    for (f, bytes) in &before {
        assert_eq!(&std::fs::read(dir.join(f)).unwrap(), bytes, "{f} changed");
    }
    assert_eq!(names_in(&dir.join("checkpoints")), vec!["step-00000002"]);
    // The first run still resumes and finishes.
    let done = run(&c, &dir, resume()).unwrap();
    assert_eq!(done.losses.first().map(|l| l.0), Some(2));
    // With overwrite, the old run is replaced whole: no checkpoint of it is left to be taken
    // for the new run's (step-00000004 would sort after the new step-00000001).
    std::fs::write(dir.join("notes.txt"), "the user's").unwrap();
    run(
        &other,
        &dir,
        TrainOptions {
            overwrite: true,
            stop_after: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(names_in(&dir.join("checkpoints")), vec!["step-00000001"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "the user's"
    );
    assert!(!dir.join("report.json").exists());
    assert_eq!(loss_lines(&dir).len(), 1);
}

#[test]
fn a_corrupt_newest_checkpoint_is_named_and_the_newest_intact_one_used() {
    let c = config(
        "kind = \"arcface\"\nscale = 8.0\nmargin = 0.2",
        "steps = 7\ncheckpoint_every = 2\nkeep_checkpoints = 5",
    );
    let start = initial(&c, "intact-init");
    let straight = run(&c, &tmp("intact-straight"), start.clone()).unwrap();
    for (case, damage) in [
        ("flip", 0usize),
        ("swap", 1),
        ("truncate", 2),
        ("no-manifest", 3),
    ] {
        let dir = tmp(&format!("intact-{case}"));
        run(
            &c,
            &dir,
            TrainOptions {
                stop_after: Some(5),
                ..start.clone()
            },
        )
        .unwrap();
        let newest = dir.join("checkpoints/step-00000004");
        let model = newest.join("model.bin");
        match damage {
            0 => {
                let mut b = std::fs::read(&model).unwrap();
                let i = b.len() / 2;
                b[i] ^= 0x10;
                std::fs::write(&model, b).unwrap();
            }
            1 => {
                std::fs::copy(dir.join("checkpoints/step-00000002/model.bin"), &model).unwrap();
            }
            2 => {
                let b = std::fs::read(&model).unwrap();
                std::fs::write(&model, &b[..b.len() - 3]).unwrap();
            }
            _ => std::fs::remove_file(newest.join("manifest.json")).unwrap(),
        }
        let resumed = run(&c, &dir, resume()).unwrap();
        assert_eq!(resumed.skipped_checkpoints.len(), 1, "{case}");
        assert!(
            resumed.skipped_checkpoints[0].contains("step-00000004"),
            "{case}: {:?}",
            resumed.skipped_checkpoints
        );
        assert_eq!(resumed.losses.first().map(|l| l.0), Some(2), "{case}");
        for (step, loss) in &resumed.losses {
            assert_eq!(
                *loss, straight.losses[*step as usize].1,
                "{case}: step {step}"
            );
        }
        // One whole line per step, equal to the uninterrupted run's.
        let lines = loss_lines(&dir);
        let expected: Vec<(u64, f32)> = straight
            .losses
            .iter()
            .map(|(s, l)| (s + 1, *l as f32))
            .collect();
        assert_eq!(lines, expected, "{case}");
    }
}

#[test]
fn a_state_beyond_the_runs_end_is_refused() {
    use visage_train::checkpoint::{Manifest, ManifestEntry};
    let c = config("kind = \"softmax\"", "steps = 4\ncheckpoint_every = 2");
    let dir = tmp("beyond");
    run(
        &c,
        &dir,
        TrainOptions {
            stop_after: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    // Hand-made: a checkpoint whose state says step 9 of 4, with a consistent manifest.
    let src = dir.join("checkpoints/step-00000002");
    let dst = dir.join("checkpoints/step-00000009");
    std::fs::rename(&src, &dst).unwrap();
    let state = std::fs::read_to_string(dst.join("state.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&state).unwrap();
    v["step"] = 9.into();
    std::fs::write(dst.join("state.json"), v.to_string()).unwrap();
    let text = std::fs::read_to_string(dst.join("manifest.json")).unwrap();
    let mut m: Manifest = serde_json::from_str(&text).unwrap();
    for ManifestEntry {
        name,
        bytes,
        sha256,
    } in &mut m.files
    {
        let b = std::fs::read(dst.join(&*name)).unwrap();
        *bytes = b.len() as u64;
        *sha256 = visage_train::durable::sha256_hex(&b);
    }
    std::fs::write(
        dst.join("manifest.json"),
        serde_json::to_string(&m).unwrap(),
    )
    .unwrap();
    let err = run(&c, &dir, resume()).unwrap_err().to_string();
    assert!(
        err.contains("step 9") && err.contains("beyond the run's last step 4"),
        "{err}"
    );
}

#[test]
fn leftovers_of_a_kill_are_removed_and_a_finished_run_resumed_changes_nothing() {
    let c = config("kind = \"softmax\"", "steps = 4\ncheckpoint_every = 2");
    let dir = tmp("finished");
    run(
        &c,
        &dir,
        TrainOptions {
            stop_after: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    let partial = dir.join("checkpoints/step-00000004.tmp-99999");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("model.bin"), vec![0u8; 4096]).unwrap();
    run(&c, &dir, resume()).unwrap();
    assert!(!partial.exists());
    assert!(names_in(&dir.join("checkpoints"))
        .iter()
        .all(|n| !n.contains('.')));
    let report = std::fs::read(dir.join("report.json")).unwrap();
    let metrics = std::fs::read(dir.join("metrics.jsonl")).unwrap();
    let modified = std::fs::metadata(dir.join("report.json"))
        .unwrap()
        .modified()
        .unwrap();
    let again = run(&c, &dir, resume()).unwrap();
    assert!(again.already_finished && again.losses.is_empty());
    assert_eq!(std::fs::read(dir.join("report.json")).unwrap(), report);
    assert_eq!(
        std::fs::metadata(dir.join("report.json"))
            .unwrap()
            .modified()
            .unwrap(),
        modified
    );
    assert_eq!(std::fs::read(dir.join("metrics.jsonl")).unwrap(), metrics);
    let r: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert!(r["train_seconds"].as_f64().unwrap() > 0.0, "{r}");
}

/// Every write of a run (config, metrics lines, checkpoint files, backbone, report) fails
/// after N bytes, for N spread over everything a run writes: the run stops with an error, and
/// a resume (or a new start when nothing was resumable) finishes it with the uninterrupted
/// run's losses, one whole metrics line per step, and no temporary left behind.
#[test]
fn a_write_failing_after_any_number_of_bytes_loses_nothing() {
    use visage_train::durable::inject_write_fault;
    let c = config(
        "kind = \"softmax\"",
        "steps = 5\ncheckpoint_every = 2\nkeep_checkpoints = 1",
    );
    let start = initial(&c, "fault-init");
    let straight = run(&c, &tmp("fault-straight"), start.clone()).unwrap();
    let expected: Vec<(u64, f32)> = straight
        .losses
        .iter()
        .map(|(s, l)| (s + 1, *l as f32))
        .collect();
    let mut budgets: Vec<u64> = vec![0, 1, 50, 300, 1_000];
    let mut b = 3_000u64;
    while b < 4_000_000 {
        budgets.push(b);
        b = b * 22 / 10;
    }
    let mut failed = 0;
    for budget in budgets {
        let dir = tmp("fault");
        inject_write_fault(Some(budget));
        let first = run(&c, &dir, start.clone());
        inject_write_fault(None);
        if first.is_err() {
            failed += 1;
            let again = if dir.join("config.toml").exists() {
                run(&c, &dir, resume())
            } else {
                run(
                    &c,
                    &dir,
                    TrainOptions {
                        overwrite: true,
                        ..start.clone()
                    },
                )
            };
            again.unwrap_or_else(|e| panic!("budget {budget}: recovery failed: {e}"));
        }
        assert_eq!(loss_lines(&dir), expected, "budget {budget}");
        let leftovers: Vec<String> = names_in(&dir)
            .into_iter()
            .chain(names_in(&dir.join("checkpoints")))
            .filter(|n| n.contains(".tmp") || n.contains(".old"))
            .collect();
        assert!(leftovers.is_empty(), "budget {budget}: {leftovers:?}");
        assert!(dir.join("report.json").exists() && dir.join("backbone.bin").exists());
    }
    assert!(failed >= 8, "only {failed} budgets hit a write");
}

#[test]
fn a_class_count_too_large_for_memory_is_refused_before_the_head_is_built() {
    use visage_data::{ImageFolder, SynthConfig, SyntheticDataset, SyntheticSplit};
    let dir = tmp("huge-classes");
    let synth = SynthConfig {
        size: 28,
        ..SynthConfig::default()
    };
    SyntheticDataset::new(synth, SyntheticSplit::Train, 2, 2)
        .write_folder(&dir.join("folder"), None)
        .unwrap();
    let folder = ImageFolder::open(&dir.join("folder")).unwrap();
    std::fs::create_dir_all(dir.join("pack")).unwrap();
    visage_data::recordio::pack_image_folder(&folder, &dir.join("pack/train")).unwrap();
    // The property file declares 2^24 classes: with 512-d embeddings that is 2^33 weights.
    std::fs::write(dir.join("pack/property"), "16777216,28,28").unwrap();
    let mut c = config("kind = \"softmax\"", "steps = 1");
    c.train.batch_size = 4;
    c.data = toml::from_str(&format!(
        "kind = \"recordio\"\npath = {:?}",
        dir.join("pack/train").display().to_string()
    ))
    .unwrap();
    c.backbone.embedding_dim = Some(512);
    let err = run(&c, &tmp("huge-classes-run"), TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("16777216 classes x 512"), "{err}");
}

/// The loop reports through `TrainOptions::progress` (the binary draws the bar): a stage of
/// `steps` steps, advanced at every `log_every` (here 2 of 5 steps: 2, 2, then the last 1),
/// and finished; a resume starts the stage at the resumed step.
#[test]
fn the_loop_reports_progress_to_the_caller() {
    let mut config = config("kind = \"softmax\"", "steps = 5");
    config.train.log_every = 2;
    config.train.checkpoint_every = 2;
    let dir = tmp("progress");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let options = |stop: Option<u64>, resume: bool| TrainOptions {
        stop_after: stop,
        resume,
        progress: Some(visage_io::SharedProgress::new(common::Recorded(
            seen.clone(),
        ))),
        ..TrainOptions::default()
    };
    run(&config, &dir, options(Some(2), false)).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "start train 5",
            "advance 0",
            "advance 2",
            "message",
            "finish"
        ]
    );
    seen.lock().unwrap().clear();
    run(&config, &dir, options(None, true)).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "start train 5",
            "advance 2",
            "advance 2",
            "message",
            "advance 1",
            "message",
            "finish"
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
