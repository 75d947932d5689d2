//! Errors of the sharded classifier.

use thiserror::Error;

use super::ExchangeError;
use crate::HeadError;

/// What can go wrong when building or running a shard of a sharded head.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ShardError {
    /// The head configuration or the batch is invalid (shapes, labels, fields).
    #[error(transparent)]
    Head(#[from] HeadError),
    /// The exchange between shards failed.
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// The head kind cannot be sharded.
    #[error("sharded classifier: head kind `{kind}` is not supported ({why})")]
    Unsupported {
        /// The head kind.
        kind: &'static str,
        /// Why, and what works instead.
        why: &'static str,
    },
    /// The shard layout is impossible.
    #[error("sharded classifier: field `{field}` = {value} is invalid: {expected}")]
    Layout {
        /// `world_size`, `rank`, `classes` or `sample_rate`.
        field: &'static str,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
}
