//! Checkpoints of a data-parallel run, and resuming from one on any number of workers.
//!
//! A replicated head writes the single-device checkpoint (`model.bin`, `optim-backbone.bin`,
//! `optim-head.bin`): every replica holds the same weights and optimiser state, so worker 0's
//! are the run's, and such a checkpoint resumes on any number of devices (one included).
//!
//! A sharded head writes each shard with its class range ([`ShardLayout`]): `backbone.bin`,
//! `optim-backbone.bin`, and `shard-R.bin` (the shard's weights and bias) with
//! `optim-shard-R.bin` (its optimiser state) for every rank R. Resuming reads every shard,
//! joins them in rank order into the whole head, and cuts the new workers' shards from it,
//! their optimiser state re-cut the same way ([`super::reshard`]): on the same number of
//! workers that gives back exactly what was saved; on another number the run continues with
//! the same class weights and optimiser state, split differently (arcface_torch's checkpoints
//! resume on the same number of GPUs only).

use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use visage_backbones::Backbone;
use visage_heads::sharded::{shard_range, ShardedHead};

use super::reshard::{reshard_optimizer, NewShard, RowParams};
use crate::checkpoint::{ShardLayout, VerifiedCheckpoint};
use crate::record_file::{read_record, MAX_RECORD_BYTES};
use crate::trainer::{load_model, record_bytes};
use crate::{TrainConfig, TrainError, Trainee};

/// What the workers start from: the model (with the whole head), the optimiser states
/// (record bytes, `None` at step 0) and, with a sharded head, each worker's shard.
pub(crate) struct Start<B: AutodiffBackend> {
    /// The model; with a sharded head, its head is the shards joined.
    pub model: Trainee<B>,
    /// The backbone's optimiser state.
    pub optim_backbone: Option<Vec<u8>>,
    /// The replicated head's optimiser state.
    pub optim_head: Option<Vec<u8>>,
    /// With a sharded head: each worker's shard and its optimiser state.
    pub shards: Vec<ShardStart<B>>,
}

/// A worker's shard and its optimiser state (record bytes; `None` at step 0).
pub(crate) type ShardStart<B> = (ShardedHead<B>, Option<Vec<u8>>);

fn shard_error(dir: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: dir.display().to_string(),
        message: e.to_string(),
    }
}

fn row_params<B: AutodiffBackend>(shard: &ShardedHead<B>) -> RowParams {
    RowParams {
        weight: shard.classifier.weight.id,
        bias: shard.classifier.bias.as_ref().map(|b| b.id),
    }
}

/// `world` shards of `model.head` with the config's sampling, and no optimiser state.
pub(crate) fn fresh_shards<B: AutodiffBackend>(
    config: &TrainConfig,
    model: &Trainee<B>,
    world: usize,
) -> Result<Vec<ShardStart<B>>, visage_heads::sharded::ShardError> {
    Ok(cut_shards(config, &model.head, world)?
        .into_iter()
        .map(|shard| (shard, None))
        .collect())
}

/// The `world` shards of `head` with the config's sampling (none for a replicated head).
fn cut_shards<B: AutodiffBackend>(
    config: &TrainConfig,
    head: &visage_heads::Head<B>,
    world: usize,
) -> Result<Vec<ShardedHead<B>>, visage_heads::sharded::ShardError> {
    let Some(rate) = config.sharded_head() else {
        return Ok(Vec::new());
    };
    (0..world)
        .map(|rank| {
            ShardedHead::from_head(head, world, rank)?.with_sampling(rate, config.train.seed)
        })
        .collect()
}

/// Loads the verified checkpoint `found` into `model` (freshly drawn, of this config) for a
/// run on `world` workers.
pub(crate) fn load_start<B: AutodiffBackend>(
    config: &TrainConfig,
    found: &VerifiedCheckpoint,
    mut model: Trainee<B>,
    world: usize,
    device: &B::Device,
) -> Result<Start<B>, TrainError> {
    let dir = &found.dir;
    let read = |name: &str| -> Result<Vec<u8>, TrainError> {
        Ok(visage_data::read::read_regular(
            &dir.join(name),
            MAX_RECORD_BYTES,
        )?)
    };
    let Some(layout) = &found.state.shards else {
        if config.sharded_head().is_some() {
            return Err(shard_error(
                dir,
                "holds a replicated head, but the config shards it",
            ));
        }
        return Ok(Start {
            model: load_model(model, &dir.join("model.bin"), device)?,
            optim_backbone: Some(read("optim-backbone.bin")?),
            optim_head: Some(read("optim-head.bin")?),
            shards: Vec::new(),
        });
    };
    if config.sharded_head().is_none() {
        return Err(shard_error(
            dir,
            "holds a sharded head, but the config does not shard it",
        ));
    }
    model.backbone = model
        .backbone
        .load_record(read_record::<B, _>(&dir.join("backbone.bin"), device)?);
    let classes = layout.classes;
    let old_world = layout.world();
    let mut old_shards = Vec::with_capacity(old_world);
    let mut old_optim = Vec::with_capacity(old_world);
    for rank in 0..old_world {
        let empty = ShardedHead::from_head(&model.head, old_world, rank)
            .map_err(|e| shard_error(dir, e))?;
        let shape = empty.classifier.weight.dims();
        let file = ShardLayout::shard_file(rank);
        let shard = empty.load_record(read_record::<B, _>(&dir.join(&file), device)?);
        // Burn's load_record takes the tensors as they are: check the shapes here.
        if shard.classifier.weight.dims() != shape {
            return Err(shard_error(
                dir,
                format!(
                    "{file}: class weights {:?}, expected {shape:?} for classes {:?}",
                    shard.classifier.weight.dims(),
                    shard_range(classes, old_world, rank)
                ),
            ));
        }
        old_optim.push((read(&ShardLayout::optim_file(rank))?, row_params(&shard)));
        old_shards.push(shard);
    }
    model.head = super::data_parallel::assemble(config, classes, old_shards, device)
        .map_err(|e| shard_error(dir, e))?;
    let (rows, _) = config.class_weight_rows(classes)?;
    let rows_per_class = rows / classes.max(1);
    let shards = cut_shards(config, &model.head, world).map_err(|e| shard_error(dir, e))?;
    let new: Vec<NewShard> = shards
        .iter()
        .enumerate()
        .map(|(rank, shard)| {
            let range = shard_range(classes, world, rank);
            NewShard {
                params: row_params(shard),
                rows: range.start * rows_per_class..range.end * rows_per_class,
            }
        })
        .collect();
    let optim = reshard_optimizer::<B>(config.optim.kind, &old_optim, &new, device)
        .map_err(|e| shard_error(dir, e))?;
    Ok(Start {
        model,
        optim_backbone: Some(read("optim-backbone.bin")?),
        optim_head: None,
        shards: shards
            .into_iter()
            .zip(optim.into_iter().map(Some))
            .collect(),
    })
}

/// The files of a data-parallel checkpoint (see the module documentation): worker 0's
/// model and optimiser states, and with a sharded head each rank's shard and its optimiser
/// state (`shards`, in rank order) instead of the head's.
pub(crate) fn checkpoint_files<B: AutodiffBackend>(
    model: &Trainee<B>,
    optim_backbone: Vec<u8>,
    optim_head: Vec<u8>,
    shards: Option<Vec<(Vec<u8>, Vec<u8>)>>,
) -> Vec<(String, Vec<u8>)> {
    match shards {
        None => vec![
            ("model.bin".into(), record_bytes(model)),
            ("optim-backbone.bin".into(), optim_backbone),
            ("optim-head.bin".into(), optim_head),
        ],
        Some(shards) => {
            let mut files = vec![
                (
                    "backbone.bin".into(),
                    record_bytes::<B, Backbone<B>>(&model.backbone),
                ),
                ("optim-backbone.bin".into(), optim_backbone),
            ];
            for (rank, (shard, optim)) in shards.into_iter().enumerate() {
                files.push((ShardLayout::shard_file(rank), shard));
                files.push((ShardLayout::optim_file(rank), optim));
            }
            files
        }
    }
}
