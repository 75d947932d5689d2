//! `[head] chunk_classes = ...` runs through the training loop unchanged: from the same
//! initial model, two steps of each cosine head with its loss computed over blocks of
//! classes give the losses of the full head (to 1e-5 relative; the second step's loss follows
//! from the first step's gradients), for a block that does not
//! divide the class count and one that holds every class. A head that cannot take the field
//! is refused with an error naming it.
//!
//! Two steps, not more: the block sums round differently from the full head's in f32, and
//! this small run amplifies that (measured for cosface, blocks of 4: 1e-7 relative at the
//! second step, 1.2e-5 at the third), so later steps would compare rounding, not the loss.

use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use visage_train::{train, TrainConfig, TrainError, TrainOptions};

type B = Autodiff<Flex>;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "visage-train-chunked-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// 6 identities x 4 images of 28x28, LeNets++ on RGB, one batch = the whole set (the setup of
/// `train_loop.rs`).
fn config(head: &str) -> TrainConfig {
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
steps = 2
"#
    );
    toml::from_str(&text).expect("test config parses")
}

fn run(
    config: &TrainConfig,
    dir: &std::path::Path,
    options: TrainOptions,
) -> Result<Vec<f64>, TrainError> {
    let summary = train::<B>(
        config,
        dir,
        &TrainOptions {
            quiet: true,
            ..options
        },
        &Default::default(),
    )?;
    Ok(summary.losses.iter().map(|l| l.1).collect())
}

/// A model record of `config`'s initialisation, so that both runs start from the same
/// weights whatever Burn's global RNG (shared by tests running in parallel) holds.
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

#[test]
fn chunked_heads_train_as_the_full_heads() {
    let heads = [
        ("normface", "kind = \"normface\"\nscale = 8.0"),
        ("cosface", "kind = \"cosface\"\nscale = 8.0\nmargin = 0.1"),
        ("arcface", "kind = \"arcface\"\nscale = 8.0\nmargin = 0.2"),
        (
            "combined",
            "kind = \"combined\"\nscale = 8.0\nm1 = 1.0\nm2 = 0.1\nm3 = 0.05",
        ),
    ];
    for (name, head) in heads {
        let full_config = config(head);
        let start = initial(&full_config, &format!("{name}-init"));
        let full = run(&full_config, &tmp(&format!("{name}-full")), start.clone())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(full.len(), 2, "{name}: {full:?}");
        // 6 classes: blocks of 4 (4 + 2) and of 65536 (one block)
        for chunk in [4, 65536] {
            let chunked_config = config(&format!("{head}\nchunk_classes = {chunk}"));
            assert_eq!(chunked_config.head.spec.chunk_classes(), Some(chunk));
            let chunked = run(
                &chunked_config,
                &tmp(&format!("{name}-chunk{chunk}")),
                start.clone(),
            )
            .unwrap_or_else(|e| panic!("{name} chunk {chunk}: {e}"));
            assert_eq!(chunked.len(), full.len());
            for (step, (a, b)) in chunked.iter().zip(&full).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{name} chunk {chunk} step {step}: loss {a} vs full head {b}\n\
                     chunked {chunked:?}\nfull    {full:?}"
                );
            }
        }
    }
}

#[test]
fn chunk_classes_errors_name_the_field() {
    // parsed but impossible: a typed head error naming the field
    let c = config("kind = \"arcface\"\nchunk_classes = 0");
    let err = run(&c, &tmp("zero"), TrainOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Head(visage_heads::HeadError::InvalidField {
                field: "chunk_classes",
                ..
            })
        ),
        "{err:?}"
    );
    let c = config("kind = \"subcenter_arcface\"\nk = 3\nchunk_classes = 4");
    let err = run(&c, &tmp("subcenter"), TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("chunk_classes") && err.contains("k = 1"),
        "{err}"
    );
    // a kind without the field: the parse error names it
    let text = toml::to_string(&config("kind = \"softmax\""))
        .unwrap()
        .replace(
            "kind = \"softmax\"",
            "kind = \"softmax\"\nchunk_classes = 4",
        );
    let err = toml::from_str::<TrainConfig>(&text)
        .unwrap_err()
        .to_string();
    assert!(err.contains("chunk_classes"), "{err}");
}
