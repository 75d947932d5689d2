//! The loss zoo on tiny configs: patterns find the configs (and say when they find none),
//! a bad config names its file, two losses train end to end into the table and the chart, a
//! rerun reuses the finished runs, and a run directory of another config is never overwritten.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex};
use visage_train::zoo::{
    check_budget, find_configs, run_zoo, write_zoo, zoo_rows, ZooEntry, ZooOptions, ZooPreset,
    ZooRunKind,
};

type B = Autodiff<Flex>;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-zoo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 6 identities x 4 images of 28x28, LeNets++; held out: 10 identities, 10 x (2 + 2) pairs.
fn write_config(dir: &Path, name: &str, head: &str, train_extra: &str) -> PathBuf {
    let text = format!(
        r#"
[data]
kind = "synthetic"
identities = 6
images_per_identity = 4
image_size = 28
difficulty = 0.3
flip = 0.0

[eval]
kind = "synthetic"
identities = 10
images_per_identity = 4
pairs_per_fold = 2
flip = false

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
steps = 100
batch_size = 12
seed = 3
log_every = 1
eval_every = 1
{train_extra}
"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn patterns_find_configs_or_say_what_found_nothing() {
    let dir = tmp("find");
    let a = write_config(&dir, "tiny-softmax", "kind = \"softmax\"", "");
    let b = write_config(&dir, "tiny-cosface", "kind = \"cosface\"", "");
    std::fs::write(dir.join("notes.txt"), "not a config").unwrap();
    let pattern = format!("{}/tiny-*.toml", dir.display());
    assert_eq!(
        find_configs(std::slice::from_ref(&pattern)).unwrap(),
        [b.clone(), a.clone()]
    );
    let folder = dir.display().to_string();
    assert_eq!(
        find_configs(&[folder, pattern]).unwrap(),
        [b, a.clone()],
        "no repeats"
    );
    assert_eq!(find_configs(&[a.display().to_string()]).unwrap(), [a]);

    let none = format!("{}/nothing-*.toml", dir.display());
    let err = find_configs(std::slice::from_ref(&none))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&none) && err.contains("no config file matches"),
        "{err}"
    );
    let missing = format!("{}/missing.toml", dir.display());
    let err = find_configs(std::slice::from_ref(&missing))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&missing) && err.contains("no such config"),
        "{err}"
    );
}

#[test]
fn a_bad_config_names_its_file() {
    let dir = tmp("bad");
    let typo = write_config(&dir, "typo", "kind = \"arcface\"\nscael = 8.0", "");
    let err = ZooEntry::load(&typo, ZooPreset::Cpu, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("typo.toml") && err.contains("scael"), "{err}");
    let zero = write_config(&dir, "zero", "kind = \"softmax\"", "");
    let err = ZooEntry::load(&zero, ZooPreset::Cpu, Some(0))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("zero.toml") && err.contains("train.steps"),
        "{err}"
    );
}

#[test]
fn presets_set_the_budget_and_only_the_sampler_may_differ() {
    let dir = tmp("presets");
    let soft = write_config(&dir, "tiny-softmax", "kind = \"softmax\"", "");
    let trip = write_config(
        &dir,
        "tiny-triplet",
        "kind = \"triplet\"\nmargin = 0.2",
        "sampler = \"pk\"\nk = 4",
    );
    let e = ZooEntry::load(&soft, ZooPreset::Cpu, None).unwrap();
    assert_eq!(e.config.train.steps, Some(visage_train::zoo::CPU_STEPS));
    assert_eq!(
        e.config.train.eval_every, 0,
        "the zoo evaluates at the end only"
    );
    assert_eq!(
        (e.name.as_str(), e.loss.as_str()),
        ("tiny-softmax", "softmax")
    );
    let g = ZooEntry::load(&soft, ZooPreset::Gpu, Some(7)).unwrap();
    assert_eq!(g.config.train.steps, Some(7));
    assert_eq!(g.config.backbone.kind, "iresnet18");
    assert_eq!(g.config.data.image_size, Some(112));
    assert_eq!(g.config.train.batch_size, 256);

    let t = ZooEntry::load(&trip, ZooPreset::Cpu, None).unwrap();
    assert_eq!(t.settings(), "margin 0.2; P x K = 3 x 4");
    assert_eq!(check_budget(&[e.clone(), e.clone()]), Vec::<String>::new());
    let diff = check_budget(&[e, t]);
    assert_eq!(diff.len(), 1, "{diff:?}");
    assert!(
        diff[0].starts_with("tiny-triplet differs from tiny-softmax: "),
        "{}",
        diff[0]
    );
    assert!(
        diff[0].contains("`train.k` 4") && diff[0].contains("`train.sampler` \"pk\""),
        "{}",
        diff[0]
    );
}

#[test]
fn two_losses_train_into_the_table_and_a_rerun_reuses_them() {
    let dir = tmp("run");
    let configs = [
        write_config(&dir, "tiny-softmax", "kind = \"softmax\"", ""),
        write_config(
            &dir,
            "tiny-cosface",
            "kind = \"cosface\"\nscale = 8.0\nmargin = 0.1",
            "",
        ),
    ];
    let entries: Vec<ZooEntry> = configs
        .iter()
        .map(|p| ZooEntry::load(p, ZooPreset::Cpu, Some(3)).unwrap())
        .collect();
    let out = dir.join("zoo");
    let options = ZooOptions {
        fresh: false,
        quiet: true,
    };
    let device = Default::default();
    let mut seen = Vec::new();
    let first = run_zoo::<B>(&entries, &out, &options, &device, |o| {
        seen.push(o.name.clone())
    })
    .unwrap();
    assert_eq!(seen, ["tiny-softmax", "tiny-cosface"]);
    assert!(first.iter().all(|o| o.kind == ZooRunKind::Trained));
    assert!(out.join("tiny-cosface/report.json").exists());

    let rows = zoo_rows(&first);
    assert_eq!(rows.len(), 3, "baseline + 2 losses");
    assert!(rows[0].baseline && rows[0].train_seconds.is_none());
    assert_eq!(
        rows[0],
        first[1].baseline.clone().unwrap(),
        "same initialisation"
    );
    assert_eq!(
        rows[2].settings, "margin 0.1, scale 8.0",
        "fields in name order"
    );
    write_zoo(&out, &rows, "# zoo", &["a note".into()], "tiny").unwrap();
    let md = std::fs::read_to_string(out.join("zoo.md")).unwrap();
    assert!(md.starts_with("# zoo\n\n| loss | settings |"), "{md}");
    assert!(
        md.contains("| `cosface` | margin 0.1, scale 8.0 | ") && md.ends_with("\n- a note\n"),
        "{md}"
    );
    assert!(std::fs::read(out.join("zoo.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));
    assert!(out.join("zoo.svg").exists());

    // A rerun of the same configs reads the finished runs instead of training.
    let again = run_zoo::<B>(&entries, &out, &options, &device, |_| {}).unwrap();
    assert!(again.iter().all(|o| o.kind == ZooRunKind::Reused));
    assert_eq!(zoo_rows(&again), rows);

    // The same through `ZooPlan` (what `visage zoo` calls): prepare from a pattern, run
    // (reusing both runs), one line per loss, and the report written.
    let pattern = dir.join("*.toml").display().to_string();
    let plan = visage_train::zoo::ZooPlan::prepare(&[pattern], ZooPreset::Cpu, Some(3)).unwrap();
    assert_eq!((plan.entries.len(), plan.steps), (2, 3));
    assert!(plan.differences.is_empty(), "{:?}", plan.differences);
    let mut lines = Vec::new();
    let report = plan
        .run::<B>(
            &out,
            &options,
            "zoo --steps 3",
            "flex",
            &device,
            |i, n, o| lines.push(o.progress_line(i, n)),
        )
        .unwrap();
    assert!(report.outcomes.iter().all(|o| o.kind == ZooRunKind::Reused));
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("zoo: [1/2] cosface: accuracy ")
            && lines[0].ends_with(" (finished run reused)"),
        "{lines:?}"
    );
    let md = report.markdown().unwrap();
    assert!(
        md.starts_with("# The loss zoo\n\n`visage zoo --steps 3` on the flex backend."),
        "{md}"
    );
    assert!(
        md.contains("0 trained, 0 resumed, 2 reused finished runs"),
        "{md}"
    );

    // Another budget in the same folder is refused, and the finished run is left alone.
    let longer = vec![ZooEntry::load(&configs[0], ZooPreset::Cpu, Some(4)).unwrap()];
    let err = run_zoo::<B>(&longer, &out, &options, &device, |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tiny-softmax") && err.contains("another config"),
        "{err}"
    );
    assert!(out.join("tiny-softmax/report.json").exists());
    let none = run_zoo::<B>(&[], &out, &options, &device, |_| {})
        .unwrap_err()
        .to_string();
    assert!(none.contains("no configs"), "{none}");
}

#[test]
fn the_repository_synth_configs_differ_only_in_the_head_after_resolving_their_base() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    // What `visage zoo` globs by default, from the repository root.
    let pattern = repo.join("configs/synth-*.toml").display().to_string();
    let paths = find_configs(&[pattern]).unwrap();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "synth-adacos",
            "synth-arcface",
            "synth-center",
            "synth-combined",
            "synth-contrastive",
            "synth-cosface",
            "synth-deepid2",
            "synth-lsoftmax",
            "synth-normface",
            "synth-softmax",
            "synth-sphereface",
            "synth-triplet"
        ],
        "the twelve losses, and not the base (configs/base/synth.toml)"
    );
    let entries: Vec<ZooEntry> = paths
        .iter()
        .map(|p| ZooEntry::load(p, ZooPreset::Cpu, None).unwrap())
        .collect();
    let pk = "`train.k` 4 (vs null), `train.sampler` \"pk\" (vs \"shuffled\")";
    assert_eq!(
        check_budget(&entries),
        [
            format!("synth-contrastive differs from synth-adacos: {pk}"),
            format!("synth-triplet differs from synth-adacos: {pk}"),
        ]
    );
    // And a difference outside [head] is found through the base: one config's own
    // override of a base key.
    let dir = tmp("repo-budget");
    let odd = dir.join("synth-odd.toml");
    std::fs::write(
        &odd,
        format!(
            "base = {:?}\n[head]\nkind = \"softmax\"\n[data]\nimage_size = 24\n",
            repo.join("configs/base/synth.toml").display().to_string()
        ),
    )
    .unwrap();
    let mut with_odd = entries.clone();
    with_odd.push(ZooEntry::load(&odd, ZooPreset::Cpu, None).unwrap());
    let lines = check_budget(&with_odd);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[2],
        "synth-odd differs from synth-adacos: `data.image_size` 24 (vs 32)"
    );
}

/// `RunStart` (what `visage train` resolves `--config` / `--resume` with): a new run goes to
/// the given folder, else the config's own; a resume reads the run's `config.toml`, and a
/// folder without one is an error naming it.
#[test]
fn run_start_resolves_new_runs_and_resumes() {
    use visage_train::run_dir::RunStart;
    let dir = tmp("run_start");
    let path = write_config(&dir, "tiny-start", "kind = \"softmax\"", "");
    let given = RunStart::new_run(&path, Some(dir.join("elsewhere"))).unwrap();
    assert_eq!(
        (given.run_dir, given.resume),
        (dir.join("elsewhere"), false)
    );
    let own = RunStart::new_run(&path, None).unwrap();
    assert_eq!(own.run_dir, own.config.run_dir(&path));
    std::fs::create_dir_all(dir.join("run")).unwrap();
    std::fs::copy(&path, dir.join("run/config.toml")).unwrap();
    let resumed = RunStart::resume(&dir.join("run")).unwrap();
    assert_eq!((resumed.run_dir, resumed.resume), (dir.join("run"), true));
    assert_eq!(
        visage_train::config_fingerprint(&resumed.config),
        visage_train::config_fingerprint(&own.config)
    );
    let err = RunStart::resume(&dir.join("empty"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.toml"), "{err}");
}
