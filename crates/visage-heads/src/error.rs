//! Typed errors of the heads: every message names the field or tensor at fault.

use thiserror::Error;

/// What can go wrong when configuring or running a head.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum HeadError {
    /// A configuration field has an impossible value.
    #[error("head config: field `{field}` = {value} is invalid: {expected}")]
    InvalidField {
        /// The field's name as it is spelled in a `[head]` table.
        field: &'static str,
        /// The value given, printed.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A field that the head kind does not take.
    #[error("head config: field `{field}` does not apply to head kind `{kind}`")]
    FieldNotApplicable {
        /// The field's name.
        field: &'static str,
        /// The head kind.
        kind: &'static str,
    },
    /// A field the head kind needs was not given.
    #[error("head config: head kind `{kind}` needs field `{field}`")]
    MissingField {
        /// The field's name.
        field: &'static str,
        /// The head kind.
        kind: &'static str,
    },
    /// A tensor has the wrong shape.
    #[error("tensor `{tensor}` has shape {actual:?}; expected {expected}")]
    Shape {
        /// The tensor's name (`embeddings`, `labels`, `weight`, ...).
        tensor: &'static str,
        /// Its shape.
        actual: Vec<usize>,
        /// What was expected.
        expected: String,
    },
    /// A label outside `[0, classes)`.
    #[error("labels[{index}] = {label} is outside [0, {classes})")]
    LabelOutOfRange {
        /// Position in the batch.
        index: usize,
        /// The label found.
        label: i64,
        /// Number of classes of the head.
        classes: usize,
    },
    /// An empty batch.
    #[error("empty batch: `embeddings` has no rows")]
    EmptyBatch,
}
