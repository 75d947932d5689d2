//! The sharded classifier's exchange on burn-collective.

use std::cell::Cell;
use std::time::Instant;

use burn::collective::{all_reduce, PeerId, ReduceOperation};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorPrimitive};
use visage_heads::sharded::{Exchange, ExchangeError, ReduceOp};

/// [`Exchange`] on `burn-collective`'s all-reduce, for a worker registered (with
/// `burn::collective::register` on `B::InnerBackend`) as peer `rank` of `world_size`.
///
/// burn-collective 0.21 reduces by sum or mean only: the maximum is taken from an all-reduce
/// (sum) of a zero-padded `[W, N, k]` buffer in which each worker fills its own block (the
/// gather the collective lacks), then a local maximum over the W blocks.
#[derive(Debug, Clone, Copy)]
pub struct CollectiveExchange {
    /// This worker's rank (its `PeerId`).
    pub rank: usize,
    /// Number of workers.
    pub world_size: usize,
}

impl<B: AutodiffBackend> Exchange<B> for CollectiveExchange {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world_size
    }

    fn all_reduce(
        &self,
        tensor: Tensor<B, 2>,
        op: ReduceOp,
    ) -> Result<Tensor<B, 2>, ExchangeError> {
        let [n, k] = tensor.dims();
        let inner = tensor.inner();
        let world = self.world_size;
        let input = match op {
            ReduceOp::Sum => inner,
            ReduceOp::Max => {
                let mut blocks: Vec<Tensor<B::InnerBackend, 2>> =
                    (0..world).map(|_| inner.zeros_like()).collect();
                blocks[self.rank] = inner;
                Tensor::cat(blocks, 0)
            }
        };
        let reduced = timed(|| {
            all_reduce::<B::InnerBackend>(
                PeerId::from(self.rank),
                input.into_primitive().tensor(),
                ReduceOperation::Sum,
            )
        })
        .map_err(|e| ExchangeError::Transport {
            rank: self.rank,
            message: format!("burn-collective all_reduce: {e:?}"),
        })?;
        let reduced = Tensor::<B::InnerBackend, 2>::from_primitive(TensorPrimitive::Float(reduced));
        let out = match op {
            ReduceOp::Sum => reduced,
            ReduceOp::Max => reduced.reshape([world, n * k]).max_dim(0).reshape([n, k]),
        };
        Ok(Tensor::from_inner(out))
    }
}

thread_local! {
    /// Seconds this thread has spent in collective calls since the last [`take_collective_seconds`].
    static IN_COLLECTIVE: Cell<f64> = const { Cell::new(0.0) };
}

/// Runs `f` (a collective call) and adds its wall time to this thread's total: the time in
/// the collective, waiting for the slowest worker included.
pub(crate) fn timed<T>(f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    IN_COLLECTIVE.with(|c| c.set(c.get() + started.elapsed().as_secs_f64()));
    out
}

/// This thread's seconds in collective calls since the last call, and a restart from 0.
pub(crate) fn take_collective_seconds() -> f64 {
    IN_COLLECTIVE.with(|c| c.replace(0.0))
}
