//! Config inheritance (`base = "..."`): the merge rules on hand-written tables, chains,
//! cycles, missing and malformed bases, unknown keys after merging, the run directory's saved
//! config, and the repository's configs: each `configs/synth-*.toml` (and
//! `subcenter-arcface.toml`) against the full file it replaced (kept in
//! `tests/fixtures/configs-before-base/`), each `configs/mnist-2d-*.toml` against the figures'
//! cpu-preset recipe written out here in full.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex};
use visage_train::inherit::{merge_tables, resolve_file, InheritError};
use visage_train::{train, TrainConfig, TrainError, TrainOptions};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("visage-inherit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap()
}

/// Everything serialisable of a config, and the head's keys as written.
fn fingerprint(c: &TrainConfig) -> (serde_json::Value, toml::Table) {
    (serde_json::to_value(c).unwrap(), c.head.table.clone())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A small complete config, without `[head]`.
const BASE: &str = r#"
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

[optim]
kind = "sgd"
lr = 0.02
momentum = 0.9

[schedule]
kind = "multistep"
milestones = [10, 20, 30]
gamma = 0.5

[train]
steps = 2
batch_size = 12
seed = 3
log_every = 1
"#;

#[test]
fn merge_replaces_keys_merges_tables_and_replaces_arrays() {
    let base = table(
        r#"
top = 1
list = [1, 2, 3]
[a]
x = 1
y = "keep"
[a.inner]
p = 1
q = 2
[b]
kind = "sgd"
momentum = 0.9
lr = 0.1
[c]
kind = "same"
v = 1
"#,
    );
    let child = table(
        r#"
top = "two"
list = [9]
new = true
[a]
x = 10
[a.inner]
q = 20
r = 30
[b]
kind = "adamw"
lr = 0.001
[c]
kind = "same"
w = 2
"#,
    );
    let expected = table(
        r#"
top = "two"
list = [9]
new = true
[a]
x = 10
y = "keep"
[a.inner]
p = 1
q = 20
r = 30
[b]
kind = "adamw"
lr = 0.001
[c]
kind = "same"
v = 1
w = 2
"#,
    );
    assert_eq!(merge_tables(base, child), expected);
    // A value replaced by a table (and a table by a value) is replaced whole.
    let merged = merge_tables(table("a = 1\n[b]\nx = 1"), table("b = 2\n[a]\ny = 1"));
    assert_eq!(merged, table("b = 2\n[a]\ny = 1"));
}

#[test]
fn a_child_overriding_one_nested_key_keeps_the_rest_of_its_base() {
    let dir = tmp("nested");
    write(
        &dir.join("base.toml"),
        &format!(
            "{BASE}\n[head]\nkind = \"softmax\"\n[head.center]\nweight = 0.003\nalpha = 0.5\n"
        ),
    );
    let child = write(
        &dir.join("child.toml"),
        "base = \"base.toml\"\n[head.center]\nweight = 0.01\n",
    );
    let c = TrainConfig::from_file(&child).unwrap();
    let center = c.head.center.unwrap();
    assert_eq!(center.weight, 0.01);
    assert_eq!(center.alpha, Some(0.5));
    assert_eq!(c.head.spec.kind(), visage_heads::HeadKind::Softmax);
    // Everything else as in the base.
    assert_eq!(c.data.identities, Some(6));
    assert_eq!(c.schedule.milestones, [10, 20, 30]);
    assert_eq!(c.optim.momentum, Some(0.9));
    assert_eq!(c.train.steps, Some(2));
    assert_eq!(c.eval.as_ref().unwrap().pairs_per_fold, Some(2));
}

#[test]
fn a_chain_of_two_bases_resolves_relative_to_each_file() {
    let dir = tmp("chain");
    // dir/runs/child.toml -> dir/runs/base/mid.toml -> dir/root.toml
    write(
        &dir.join("root.toml"),
        &format!("{BASE}\n[head]\nkind = \"arcface\"\nscale = 16.0\nmargin = 0.3\n"),
    );
    write(
        &dir.join("runs/base/mid.toml"),
        "base = \"../../root.toml\"\n[optim]\nkind = \"adamw\"\nlr = 0.003\n[schedule]\nmilestones = [5]\n",
    );
    let child = write(
        &dir.join("runs/child.toml"),
        "base = \"base/mid.toml\"\n[head]\nmargin = 0.2\n[train]\nsteps = 7\n",
    );
    let resolved = resolve_file(&child).unwrap();
    assert_eq!(
        resolved.files,
        [
            child.clone(),
            dir.join("runs/base/mid.toml"),
            dir.join("runs/base/../../root.toml")
        ]
    );
    assert!(!resolved.table.contains_key("base"));
    let c = TrainConfig::from_file(&child).unwrap();
    // The child's keys, then the middle file's, then the root's.
    assert_eq!(c.train.steps, Some(7));
    assert_eq!(c.train.batch_size, 12);
    assert_eq!(
        c.head.table,
        table("kind = \"arcface\"\nscale = 16.0\nmargin = 0.2")
    );
    // kind changed from sgd to adamw: the base's `momentum` is not carried over.
    assert_eq!(c.optim.kind, visage_train::config::OptimKind::Adamw);
    assert_eq!(c.optim.lr, Some(0.003));
    assert_eq!(c.optim.momentum, None);
    // Arrays are replaced, not appended to.
    assert_eq!(c.schedule.milestones, [5]);
    assert_eq!(c.schedule.gamma, Some(0.5));
}

#[test]
fn cycles_are_errors_naming_the_files() {
    let dir = tmp("cycle");
    let a = write(
        &dir.join("a.toml"),
        "base = \"sub/b.toml\"\n[head]\nkind = \"softmax\"\n",
    );
    write(&dir.join("sub/b.toml"), "base = \"../a.toml\"\n");
    let err = TrainConfig::from_file(&a).unwrap_err();
    assert!(
        matches!(err, TrainError::Inherit(InheritError::Cycle { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("cycle") && text.contains("a.toml") && text.contains("b.toml"),
        "{text}"
    );
    let me = write(&dir.join("me.toml"), "base = \"me.toml\"\n");
    let text = TrainConfig::from_file(&me).unwrap_err().to_string();
    assert!(text.contains("cycle") && text.contains("me.toml"), "{text}");
}

#[test]
fn missing_unreadable_and_malformed_bases_are_errors_naming_the_files() {
    let dir = tmp("missing");
    let child = write(&dir.join("child.toml"), "base = \"nowhere.toml\"\n");
    let err = TrainConfig::from_file(&child).unwrap_err();
    assert!(
        matches!(err, TrainError::Inherit(InheritError::Base { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("child.toml") && text.contains("nowhere.toml"),
        "{text}"
    );
    // A folder named as the base.
    std::fs::create_dir_all(dir.join("folder.toml")).unwrap();
    let child = write(&dir.join("dir.toml"), "base = \"folder.toml\"\n");
    let text = TrainConfig::from_file(&child).unwrap_err().to_string();
    assert!(
        text.contains("dir.toml") && text.contains("folder.toml"),
        "{text}"
    );
    // Not a string.
    let child = write(&dir.join("number.toml"), "base = 3\n");
    let text = TrainConfig::from_file(&child).unwrap_err().to_string();
    assert!(
        text.contains("number.toml") && text.contains("`base` must be a string"),
        "{text}"
    );
    // A base that is not TOML: the error names the base.
    write(&dir.join("broken.toml"), "[data\nkind = 1\n");
    let child = write(&dir.join("to-broken.toml"), "base = \"broken.toml\"\n");
    let err = TrainConfig::from_file(&child).unwrap_err();
    assert!(
        matches!(err, TrainError::Inherit(InheritError::Syntax { ref path, .. }) if path.ends_with("broken.toml")),
        "{err:?}"
    );
    // A chain too long to be meant.
    for i in 0..40 {
        write(
            &dir.join(format!("long-{i}.toml")),
            &format!("base = \"long-{}.toml\"\n", i + 1),
        );
    }
    let err = TrainConfig::from_file(&dir.join("long-0.toml")).unwrap_err();
    assert!(
        matches!(err, TrainError::Inherit(InheritError::TooDeep { .. })),
        "{err:?}"
    );
}

#[test]
fn unknown_keys_are_rejected_after_merging_naming_the_key_and_files() {
    let dir = tmp("unknown");
    write(&dir.join("base.toml"), BASE);
    let child = write(
        &dir.join("child.toml"),
        "base = \"base.toml\"\n[head]\nkind = \"softmax\"\n[data]\ncolour = 1\n",
    );
    let text = TrainConfig::from_file(&child).unwrap_err().to_string();
    assert!(
        text.contains("colour") && text.contains("child.toml") && text.contains("base.toml"),
        "{text}"
    );
    // A field of another head kind left over is an error too (same kind: tables merge).
    write(
        &dir.join("arc.toml"),
        &format!("{BASE}\n[head]\nkind = \"arcface\"\nmargin = 0.3\n"),
    );
    let child = write(
        &dir.join("typo.toml"),
        "base = \"arc.toml\"\n[head]\nkind = \"arcface\"\nmargn = 0.2\n",
    );
    let text = TrainConfig::from_file(&child).unwrap_err().to_string();
    assert!(text.contains("margn"), "{text}");
    // A top-level unknown key.
    let child = write(
        &dir.join("top.toml"),
        "base = \"base.toml\"\nbasis = 1\n[head]\nkind = \"softmax\"\n",
    );
    let text = TrainConfig::from_file(&child).unwrap_err().to_string();
    assert!(text.contains("basis"), "{text}");
}

#[test]
fn the_run_directory_saves_the_resolved_config_and_resumes_without_the_base() {
    let dir = tmp("rundir");
    write(&dir.join("configs/base/tiny.toml"), BASE);
    let child = write(
        &dir.join("configs/tiny-cosface.toml"),
        "base = \"base/tiny.toml\"\n[head]\nkind = \"cosface\"\nscale = 8.0\nmargin = 0.1\n",
    );
    let config = TrainConfig::from_file(&child).unwrap();
    let run = dir.join("run");
    let options = TrainOptions {
        quiet: true,
        ..TrainOptions::default()
    };
    train::<Autodiff<Flex>>(&config, &run, &options, &Default::default()).unwrap();
    // The configs folder goes away: the run directory must stand alone.
    std::fs::remove_dir_all(dir.join("configs")).unwrap();
    let saved_text = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        !table(&saved_text).contains_key("base"),
        "the saved config names no base:\n{saved_text}"
    );
    let saved = TrainConfig::from_file(&run.join("config.toml")).unwrap();
    assert_eq!(fingerprint(&saved), fingerprint(&config));
    let resume = TrainOptions {
        quiet: true,
        resume: true,
        ..TrainOptions::default()
    };
    train::<Autodiff<Flex>>(&saved, &run, &resume, &Default::default()).unwrap();
}

/// The config files of the repository matching `prefix*.toml` in `configs/` (not `base/`).
fn repo_configs(prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo().join("configs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|x| x == "toml")
                && p.file_name().unwrap().to_string_lossy().starts_with(prefix)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn each_synth_config_resolves_to_the_full_file_it_replaced() {
    let fixtures =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/configs-before-base");
    let mut names = Vec::new();
    let configs: Vec<PathBuf> = repo_configs("synth-")
        .into_iter()
        .chain([repo().join("configs/subcenter-arcface.toml")])
        .collect();
    assert_eq!(configs.len(), 13);
    for path in configs {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("base = \"base/synth.toml\"") && text.lines().count() <= 16,
            "{name}: a short override of base/synth.toml"
        );
        let old_text = std::fs::read_to_string(fixtures.join(&name)).unwrap();
        // The old file on its own, through the plain TOML parser (no inheritance involved).
        let old: TrainConfig = toml::from_str(&old_text).unwrap();
        let new = TrainConfig::from_file(&path).unwrap();
        assert_eq!(fingerprint(&new), fingerprint(&old), "{name}");
        names.push(name);
    }
    assert!(names.contains(&"synth-triplet.toml".to_string()));
}

/// The recipe of `visage figures --preset cpu`'s 2-D MNIST runs, written out in full.
fn mnist_2d_expected(head: &str) -> String {
    format!(
        r#"
[data]
kind = "mnist"
path = "/usr/share/datasets/fashion-mnist"
flip = 0.0
limit = 10000

[backbone]
kind = "lenet_pp"
in_channels = 1
embedding_dim = 2

[head]
{head}

[optim]
kind = "adamw"
lr = 0.003
weight_decay = 1e-4

[schedule]
kind = "cosine"
warmup_steps = 20

[train]
steps = 200
batch_size = 64
seed = 0
clip_grad_norm = 5.0
log_every = 25
"#
    )
}

#[test]
fn each_mnist_2d_config_resolves_to_the_figures_cpu_recipe() {
    let heads = [
        ("arcface", "kind = \"arcface\"\nscale = 16.0\nmargin = 0.3"),
        (
            "center",
            "kind = \"softmax\"\n[head.center]\nweight = 0.01\nalpha = 0.5",
        ),
        ("cosface", "kind = \"cosface\"\nscale = 16.0\nmargin = 0.1"),
        ("normface", "kind = \"normface\"\nscale = 16.0"),
        ("softmax", "kind = \"softmax\""),
        (
            "sphereface",
            // gamma: the figures' 999 / (steps / 2) for 200 steps.
            "kind = \"sphereface\"\nmargin_int = 4\nbase = 1000.0\ngamma = 9.99\npower = 1.0\nlambda_min = 1.0",
        ),
    ];
    let configs = repo_configs("mnist-2d-");
    assert_eq!(configs.len(), heads.len());
    for (path, (name, head)) in configs.iter().zip(heads) {
        assert!(path.ends_with(format!("mnist-2d-{name}.toml")), "{path:?}");
        let expected: TrainConfig = toml::from_str(&mnist_2d_expected(head)).unwrap();
        // The data folder need not exist here: parse without validate_static.
        let text = std::fs::read_to_string(path).unwrap();
        let new = TrainConfig::from_toml(path, &text).unwrap();
        assert_eq!(fingerprint(&new), fingerprint(&expected), "{name}");
    }
    assert_eq!(999.0f64 / (200.0 / 2.0), 9.99);
}
