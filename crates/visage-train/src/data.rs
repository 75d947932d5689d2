//! The datasets a config names: the training source and the held-out verification set.

use std::path::Path;

use visage_data::{
    held_out_verification, BinPack, ImageFolder, Lfw, Mnist, RecordIo, SampleSource, SynthConfig,
    SyntheticDataset, SyntheticSplit, VerificationSet,
};

use crate::config::{DataConfig, DataKind, EvalConfig, EvalKind};
use crate::TrainError;

/// The first `limit` samples of a source.
struct Limited {
    inner: Box<dyn SampleSource>,
    limit: usize,
}

impl SampleSource for Limited {
    fn len(&self) -> usize {
        self.inner.len().min(self.limit)
    }
    fn label(&self, index: usize) -> visage_data::Result<usize> {
        self.inner.label(index)
    }
    fn get(&self, index: usize) -> visage_data::Result<visage_data::ImageSample> {
        self.inner.get(index)
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
}

/// The synthetic generator settings of `[data]`.
pub fn synth_config(data: &DataConfig) -> SynthConfig {
    let defaults = SynthConfig::default();
    SynthConfig {
        size: data.image_size.unwrap_or(defaults.size),
        seed: data.seed.unwrap_or(defaults.seed),
        difficulty: data.difficulty.unwrap_or(defaults.difficulty),
    }
}

/// Opens the training source of `[data]`.
pub fn open_training(data: &DataConfig) -> Result<Box<dyn SampleSource>, TrainError> {
    let path = || {
        data.path
            .clone()
            .ok_or_else(|| TrainError::config("data.path", "is required for this data kind"))
    };
    let source: Box<dyn SampleSource> = match data.kind {
        DataKind::Synthetic => Box::new(
            SyntheticDataset::try_new(
                synth_config(data),
                SyntheticSplit::Train,
                data.identities.unwrap_or(0),
                data.images_per_identity.unwrap_or(0),
            )
            .map_err(|e| TrainError::config("data", e.to_string()))?,
        ),
        DataKind::ImageFolder => Box::new(ImageFolder::open(&path()?)?),
        DataKind::Recordio => Box::new(RecordIo::open(&path()?)?),
        DataKind::Mnist => {
            let dir = path()?;
            Box::new(Mnist::open_split(&dir, "train").map_err(|e| match e {
                visage_data::DataError::Format { path, what } if path == dir => {
                    TrainError::config("data.path", format!("{}: {what}", dir.display()))
                }
                other => other.into(),
            })?)
        }
    };
    if source.is_empty() {
        return Err(TrainError::config(
            "data",
            "the training source has no images",
        ));
    }
    // Every label inside the class count the data declares, before a step runs (a label
    // past it would otherwise fail inside the loss, mid-run).
    source.check_labels()?;
    Ok(match data.limit {
        Some(limit) => Box::new(Limited {
            inner: source,
            limit,
        }),
        None => source,
    })
}

/// Loads the held-out verification set of `[eval]` (images in pair order) and a description
/// of it for the report (seed of the pair draw, or the file's hash).
pub fn open_eval(
    eval: &EvalConfig,
    data: &DataConfig,
) -> Result<(VerificationSet, serde_json::Value), TrainError> {
    let path = || {
        eval.path
            .clone()
            .ok_or_else(|| TrainError::config("eval.path", "is required for this eval kind"))
    };
    match eval.kind {
        EvalKind::Synthetic => {
            let (identities, per_id) = (
                eval.identities.unwrap_or(100),
                eval.images_per_identity.unwrap_or(10),
            );
            let (per_fold, seed) = (
                eval.pairs_per_fold.unwrap_or(30),
                eval.pair_seed.unwrap_or(7),
            );
            let (set, _) =
                held_out_verification(synth_config(data), identities, per_id, 10, per_fold, seed)?;
            let about = serde_json::json!({"kind": "synthetic held-out identities", "identities": identities,
                "images_per_identity": per_id, "folds": 10, "pairs_per_fold_each_class": per_fold, "pair_seed": seed});
            Ok((set, about))
        }
        EvalKind::Bin => {
            let p = path()?;
            let set = BinPack::open(&p)?.decode()?;
            let about = serde_json::json!({"kind": "bin pack", "path": p.display().to_string(),
                "bytes": file_size(&p), "sha256": visage_data::bin_pack::sha256_file(&p)?});
            Ok((set, about))
        }
        EvalKind::Lfw => {
            let p = path()?;
            let set = Lfw::open(&p)?.decode()?;
            Ok((
                set,
                serde_json::json!({"kind": "lfw", "path": p.display().to_string()}),
            ))
        }
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
