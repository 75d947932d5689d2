//! Re-sharding a sharded head's optimiser state onto another number of shards.
//!
//! The optimiser state of a class-weight matrix is per row, like the weights: SGD's momentum
//! velocity and AdamW's two moments have the weight's shape. A checkpoint holds one optimiser
//! record per shard, keyed by that shard's parameter ids. To resume on `W'` workers, the
//! state tensors of every old shard are joined by rows in rank order (the rows of the whole
//! head, class by class) and cut at the new shards' row ranges, keyed by the new shards'
//! parameter ids. Joining and cutting copies values, so resuming on the same number of
//! workers gives back exactly the state that was saved.

use std::ops::Range;

use burn::module::ParamId;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::momentum::MomentumState;
use burn::optim::record::AdaptorRecord;
use burn::optim::{AdamWState, AdaptiveMomentumState, Optimizer, SgdState, SimpleOptimizer};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use visage_heads::sharded::ShardedHead;

use crate::config::OptimKind;
use crate::optim::{velocity, AdamW, Sgd};
use crate::record_file::decode_record;

/// The row-sharded parameters of one shard: its class weights and (softmax) bias.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowParams {
    /// The class weights `[rows, d]`.
    pub weight: ParamId,
    /// The bias `[rows]`, if the head has one.
    pub bias: Option<ParamId>,
}

/// One new shard: its parameter ids and the rows of the whole head it holds.
pub(crate) struct NewShard {
    /// Its parameters.
    pub params: RowParams,
    /// Its rows of the whole head's weight (and bias).
    pub rows: Range<usize>,
}

/// An optimiser state whose tensors are per row of the parameter.
trait RowState<B: Backend>: Sized {
    /// The states of consecutive row blocks joined into one.
    fn join(parts: Vec<Self>, device: &B::Device) -> Result<Self, String>;
    /// Rows `rows` of the state.
    fn rows(&self, rows: Range<usize>, device: &B::Device) -> Self;
}

fn join_rows<B: Backend, const D: usize>(parts: Vec<Tensor<B, D>>) -> Tensor<B, D> {
    Tensor::cat(parts, 0)
}

fn cut_rows<B: Backend, const D: usize>(t: &Tensor<B, D>, rows: Range<usize>) -> Tensor<B, D> {
    // A copy (a new buffer), not a view of the joined state.
    let data = t.clone().slice([rows]).into_data();
    Tensor::from_data(data, &t.device())
}

impl<B: Backend, const D: usize> RowState<B> for SgdState<B, D> {
    fn join(parts: Vec<Self>, device: &B::Device) -> Result<Self, String> {
        let with = parts.iter().filter(|p| p.momentum.is_some()).count();
        if with == 0 {
            return Ok(SgdState::new(None));
        }
        if with != parts.len() {
            return Err("some shards have a momentum state and others none".into());
        }
        let tensors = parts
            .into_iter()
            .map(|p| velocity(p.momentum.expect("checked"), device))
            .collect();
        Ok(SgdState::new(Some(MomentumState::new(join_rows(tensors)))))
    }

    fn rows(&self, rows: Range<usize>, device: &B::Device) -> Self {
        SgdState::new(
            self.momentum
                .clone()
                .map(|m| MomentumState::new(cut_rows(&velocity(m, device), rows))),
        )
    }
}

impl<B: Backend, const D: usize> RowState<B> for AdamWState<B, D> {
    fn join(parts: Vec<Self>, _device: &B::Device) -> Result<Self, String> {
        let time = parts.first().map_or(0, |p| p.momentum.time);
        if parts.iter().any(|p| p.momentum.time != time) {
            return Err("the shards' AdamW step counts differ".into());
        }
        if parts.iter().any(|p| p.momentum.max_moment_2.is_some()) {
            return Err("AMSGrad's state is not re-sharded".into());
        }
        let (m1, m2): (Vec<_>, Vec<_>) = parts
            .into_iter()
            .map(|p| (p.momentum.moment_1, p.momentum.moment_2))
            .unzip();
        Ok(AdamWState::new(AdaptiveMomentumState::new(
            time,
            join_rows(m1),
            join_rows(m2),
        )))
    }

    fn rows(&self, rows: Range<usize>, _device: &B::Device) -> Self {
        let m = &self.momentum;
        AdamWState::new(AdaptiveMomentumState::new(
            m.time,
            cut_rows(&m.moment_1, rows.clone()),
            cut_rows(&m.moment_2, rows),
        ))
    }
}

/// The record of one shard's optimiser, as `GroupOptimizer` holds it (a map from parameter
/// id to state).
type OptimRecord<O, B> =
    <OptimizerAdaptor<O, ShardedHead<B>, B> as Optimizer<ShardedHead<B>, B>>::Record;

/// One parameter's state over the old shards, re-cut for the new ones (`None` where the old
/// shards hold none).
fn reshard_param<O, B, const D: usize>(
    old: &mut [(OptimRecord<O, B>, Option<ParamId>)],
    new: &[(Option<ParamId>, Range<usize>)],
    records: &mut [OptimRecord<O, B>],
    device: &B::Device,
) -> Result<(), String>
where
    O: SimpleOptimizer<B::InnerBackend>,
    B: AutodiffBackend,
    O::State<D>: RowState<B::InnerBackend>,
{
    let mut states = Vec::new();
    for (record, id) in old.iter_mut() {
        if let Some(state) = id.and_then(|id| record.remove(&id)) {
            states.push(state.into_state::<D>());
        }
    }
    if states.is_empty() {
        return Ok(());
    }
    if states.len() != old.len() {
        return Err(format!(
            "{} of {} shards hold optimiser state for the parameter",
            states.len(),
            old.len()
        ));
    }
    let whole = O::State::<D>::join(states, device)?;
    for ((id, rows), record) in new.iter().zip(records.iter_mut()) {
        if let Some(id) = id {
            record.insert(
                *id,
                AdaptorRecord::from_state::<D>(whole.rows(rows.clone(), device)),
            );
        }
    }
    Ok(())
}

fn reshard_with<O, B>(
    old: &[(Vec<u8>, RowParams)],
    new: &[NewShard],
    device: &B::Device,
) -> Result<Vec<Vec<u8>>, String>
where
    O: SimpleOptimizer<B::InnerBackend>,
    B: AutodiffBackend,
    O::State<1>: RowState<B::InnerBackend>,
    O::State<2>: RowState<B::InnerBackend>,
{
    let mut decoded = Vec::with_capacity(old.len());
    for (rank, (bytes, params)) in old.iter().enumerate() {
        let record: OptimRecord<O, B> = decode_record::<B, _>(bytes, device)
            .map_err(|e| format!("optimiser state of shard {rank}: {e}"))?;
        decoded.push((record, *params));
    }
    let mut records: Vec<OptimRecord<O, B>> = new.iter().map(|_| Default::default()).collect();
    let mut weights: Vec<_> = decoded
        .iter()
        .map(|(r, p)| (r.clone(), Some(p.weight)))
        .collect();
    let new_weights: Vec<_> = new
        .iter()
        .map(|s| (Some(s.params.weight), s.rows.clone()))
        .collect();
    reshard_param::<O, B, 2>(&mut weights, &new_weights, &mut records, device)?;
    let mut biases: Vec<_> = decoded.into_iter().map(|(r, p)| (r, p.bias)).collect();
    let new_biases: Vec<_> = new
        .iter()
        .map(|s| (s.params.bias, s.rows.clone()))
        .collect();
    reshard_param::<O, B, 1>(&mut biases, &new_biases, &mut records, device)?;
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    records
        .into_iter()
        .map(|r| Recorder::<B>::record(&recorder, r, ()).map_err(|e| e.to_string()))
        .collect()
}

/// The optimiser records of `new` shards (bytes that [`crate::optim::GroupOptimizer::load_bytes`]
/// reads) from the records of the old shards (`old`, in rank order, each with its parameter
/// ids), for the optimiser `kind`.
pub(crate) fn reshard_optimizer<B: AutodiffBackend>(
    kind: OptimKind,
    old: &[(Vec<u8>, RowParams)],
    new: &[NewShard],
    device: &B::Device,
) -> Result<Vec<Vec<u8>>, String> {
    match kind {
        OptimKind::Sgd => reshard_with::<Sgd<B::InnerBackend>, B>(old, new, device),
        OptimKind::Adamw => reshard_with::<AdamW, B>(old, new, device),
    }
}
