//! The one collective operation the sharded classifier needs, behind a small trait so that the
//! heads crate stays transport-free: an all-reduce (sum or max) of a small `[N, k]` f32 tensor
//! across the shards. `visage-train` implements it on `burn-collective`; [`LocalExchange`]
//! implements it between threads of one process (tests, and one-process tensor parallelism).

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use burn::tensor::{backend::Backend, Element, Tensor, TensorData};
use thiserror::Error;

/// How an all-reduce combines the shards' tensors, element by element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// The sum over the shards.
    Sum,
    /// The maximum over the shards.
    Max,
}

/// What can go wrong in an exchange between shards.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ExchangeError {
    /// A peer did not reach the exchange in time.
    #[error(
        "exchange: rank {rank} waited {seconds:.1} s for ranks {missing:?} of {world} to reach all-reduce #{round}"
    )]
    Timeout {
        /// The rank that gave up.
        rank: usize,
        /// The ranks that had not arrived.
        missing: Vec<usize>,
        /// The group's size.
        world: usize,
        /// The index of the all-reduce in the group's sequence (0-based).
        round: u64,
        /// How long it waited.
        seconds: f64,
    },
    /// Peers called the same all-reduce with different shapes or operations.
    #[error("exchange: rank {rank} all-reduces {actual} but the group's all-reduce #{round} is {expected}")]
    Mismatch {
        /// The rank whose call differs.
        rank: usize,
        /// The index of the all-reduce in the group's sequence.
        round: u64,
        /// What this rank passed (shape and operation).
        actual: String,
        /// What the first rank passed.
        expected: String,
    },
    /// The group was stopped by a failed peer (or a mismatch); every later call fails.
    #[error("exchange: the group is stopped: {reason}")]
    Stopped {
        /// Why (naming the failed rank).
        reason: String,
    },
    /// A tensor could not be read as f32, or the transport failed.
    #[error("exchange: rank {rank}: {message}")]
    Transport {
        /// The rank that saw it.
        rank: usize,
        /// The transport's message.
        message: String,
    },
}

/// An all-reduce between the `world_size` shards of a group; every shard calls the same
/// sequence of all-reduces with tensors of the same shape.
///
/// Implementations take and return values without gradient (the caller detaches; the result
/// is a constant of the autodiff graph).
pub trait Exchange<B: Backend> {
    /// This shard's rank in `0..world_size`.
    fn rank(&self) -> usize;

    /// The number of shards in the group.
    fn world_size(&self) -> usize;

    /// The element-wise sum or maximum of every shard's `tensor`, given to every shard.
    ///
    /// # Shapes
    /// - `tensor`: `[N, k]`, the same on every shard -> `[N, k]`
    fn all_reduce(&self, tensor: Tensor<B, 2>, op: ReduceOp)
        -> Result<Tensor<B, 2>, ExchangeError>;
}

/// A group of one: the all-reduce is the identity (the unsharded case).
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleExchange;

impl<B: Backend> Exchange<B> for SingleExchange {
    fn rank(&self) -> usize {
        0
    }

    fn world_size(&self) -> usize {
        1
    }

    fn all_reduce(
        &self,
        tensor: Tensor<B, 2>,
        _op: ReduceOp,
    ) -> Result<Tensor<B, 2>, ExchangeError> {
        Ok(tensor.detach())
    }
}

/// Default time a [`LocalExchange`] member waits for its peers before it fails.
pub const LOCAL_EXCHANGE_TIMEOUT: Duration = Duration::from_secs(120);

/// One member of an in-process exchange group: the shards are threads, the all-reduce a
/// barrier on shared host memory (values go through f32 on the host, so this is for tests
/// and small tensors). Build the group with [`LocalExchange::group`] and move one member into
/// each thread.
///
/// A peer that does not arrive within the timeout makes the waiting members fail with
/// [`ExchangeError::Timeout`] naming the missing ranks; a mismatch or [`LocalExchange::stop`]
/// stops the whole group, so no member hangs.
#[derive(Debug, Clone)]
pub struct LocalExchange {
    rank: usize,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    world: usize,
    timeout: Duration,
    state: Mutex<Round>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Round {
    /// Index of the all-reduce being collected.
    round: u64,
    /// Which ranks have contributed to it.
    arrived: Vec<bool>,
    /// The running reduction, its shape and operation.
    acc: Option<(Vec<f32>, [usize; 2], ReduceOp)>,
    /// The result being handed out, and how many members have still to take it.
    result: Option<(Arc<Vec<f32>>, usize)>,
    /// Set once the group is stopped.
    stopped: Option<String>,
}

impl LocalExchange {
    /// `world_size` members, ranks `0..world_size`, waiting at most
    /// [`LOCAL_EXCHANGE_TIMEOUT`] for each other.
    pub fn group(world_size: usize) -> Vec<LocalExchange> {
        Self::group_with_timeout(world_size, LOCAL_EXCHANGE_TIMEOUT)
    }

    /// `world_size` members waiting at most `timeout` for each other at each all-reduce.
    pub fn group_with_timeout(world_size: usize, timeout: Duration) -> Vec<LocalExchange> {
        let shared = Arc::new(Shared {
            world: world_size,
            timeout,
            state: Mutex::new(Round {
                arrived: vec![false; world_size],
                ..Round::default()
            }),
            changed: Condvar::new(),
        });
        (0..world_size)
            .map(|rank| LocalExchange {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    /// This member's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The group's size.
    pub fn world_size(&self) -> usize {
        self.shared.world
    }

    /// Stops the group: every member's current and later all-reduce fails with `reason`
    /// (call it when this member fails, so that its peers do not wait for it).
    pub fn stop(&self, reason: &str) {
        let mut state = self.lock();
        if state.stopped.is_none() {
            state.stopped = Some(format!("rank {} stopped: {reason}", self.rank));
        }
        self.shared.changed.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Round> {
        // A member that panicked while holding the lock leaves consistent state (every update
        // below is completed before the guard drops), so a poisoned lock is taken over.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The all-reduce on host f32 values.
    pub fn all_reduce_values(
        &self,
        values: Vec<f32>,
        shape: [usize; 2],
        op: ReduceOp,
    ) -> Result<Vec<f32>, ExchangeError> {
        let shared = &*self.shared;
        let deadline = Instant::now() + shared.timeout;
        let mut state = self.lock();
        let stopped = |s: &Round| {
            s.stopped
                .clone()
                .map(|reason| ExchangeError::Stopped { reason })
        };
        // Wait until the previous result has been taken by everyone.
        while state.result.is_some() || state.arrived[self.rank] {
            if let Some(e) = stopped(&state) {
                return Err(e);
            }
            state = self.wait(state, deadline)?;
        }
        if let Some(e) = stopped(&state) {
            return Err(e);
        }
        let round = state.round;
        match &mut state.acc {
            None => state.acc = Some((values, shape, op)),
            Some((acc, acc_shape, acc_op)) => {
                if *acc_shape != shape || *acc_op != op {
                    let err = ExchangeError::Mismatch {
                        rank: self.rank,
                        round,
                        actual: format!("{shape:?} {op:?}"),
                        expected: format!("{acc_shape:?} {acc_op:?}"),
                    };
                    state.stopped = Some(err.to_string());
                    shared.changed.notify_all();
                    return Err(err);
                }
                for (a, v) in acc.iter_mut().zip(values) {
                    *a = match op {
                        ReduceOp::Sum => *a + v,
                        ReduceOp::Max => a.max(v),
                    };
                }
            }
        }
        state.arrived[self.rank] = true;
        if state.arrived.iter().all(|&a| a) {
            let (acc, _, _) = state.acc.take().expect("the reduction was started");
            state.result = Some((Arc::new(acc), shared.world));
            shared.changed.notify_all();
        }
        // Wait for this round's result.
        loop {
            if let Some(e) = stopped(&state) {
                return Err(e);
            }
            if state.round == round {
                if let Some((result, left)) = state.result.take() {
                    let out = (*result).clone();
                    if left > 1 {
                        state.result = Some((result, left - 1));
                    } else {
                        state.round += 1;
                        state.arrived.iter_mut().for_each(|a| *a = false);
                        shared.changed.notify_all();
                    }
                    return Ok(out);
                }
            }
            state = self.wait(state, deadline)?;
        }
    }

    fn wait<'a>(
        &self,
        state: std::sync::MutexGuard<'a, Round>,
        deadline: Instant,
    ) -> Result<std::sync::MutexGuard<'a, Round>, ExchangeError> {
        let now = Instant::now();
        if now >= deadline {
            let missing = state
                .arrived
                .iter()
                .enumerate()
                .filter(|(_, &a)| !a)
                .map(|(r, _)| r)
                .collect();
            let err = ExchangeError::Timeout {
                rank: self.rank,
                missing,
                world: self.shared.world,
                round: state.round,
                seconds: self.shared.timeout.as_secs_f64(),
            };
            let mut state = state;
            state.stopped.get_or_insert_with(|| err.to_string());
            self.shared.changed.notify_all();
            return Err(err);
        }
        let (state, _) = self
            .shared
            .changed
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(|p| p.into_inner());
        Ok(state)
    }
}

impl<B: Backend> Exchange<B> for LocalExchange {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.shared.world
    }

    fn all_reduce(
        &self,
        tensor: Tensor<B, 2>,
        op: ReduceOp,
    ) -> Result<Tensor<B, 2>, ExchangeError> {
        let shape = tensor.dims();
        let device = tensor.device();
        let values = tensor
            .detach()
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| ExchangeError::Transport {
                rank: self.rank,
                message: format!("tensor not readable as f32: {e:?}"),
            })?;
        let out = self.all_reduce_values(values, shape, op)?;
        let data = TensorData::new(out, shape).convert_dtype(<B::FloatElem as Element>::dtype());
        Ok(Tensor::from_data(
            data,
            (&device, <B::FloatElem as Element>::dtype()),
        ))
    }
}
