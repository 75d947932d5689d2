//! `Embeddings`: a row-major f32 matrix `[rows, dim]`, one embedding per row.

use crate::EvalError;

/// A row-major f32 matrix of embeddings, `rows x dim` (row `i` is `data[i*dim .. (i+1)*dim]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// Number of embeddings.
    pub rows: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// `rows * dim` values, row-major.
    pub data: Vec<f32>,
}

impl Embeddings {
    /// Wraps a row-major buffer, checking that `data.len() == rows * dim`.
    pub fn new(rows: usize, dim: usize, data: Vec<f32>) -> Result<Self, EvalError> {
        if rows.checked_mul(dim) != Some(data.len()) {
            return Err(EvalError::Shape(format!(
                "embeddings [{rows}, {dim}] need {} values, got {}",
                rows.saturating_mul(dim),
                data.len()
            )));
        }
        Ok(Self { rows, dim, data })
    }

    /// Row `i` (panics if `i >= rows`, like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Errors with the first NaN or infinite value; `what` names the matrix in the message.
    pub fn check_finite(&self, what: &str) -> Result<(), EvalError> {
        if let Some(pos) = self.data.iter().position(|v| !v.is_finite()) {
            let dim = self.dim.max(1);
            return Err(EvalError::NonFinite {
                what: what.to_string(),
                row: pos / dim,
                column: pos % dim,
                value: self.data[pos],
            });
        }
        Ok(())
    }

    /// Errors unless the matrix has at least one row and a positive dimension.
    pub(crate) fn check_non_empty(&self, what: &str) -> Result<(), EvalError> {
        if self.rows == 0 || self.dim == 0 {
            return Err(EvalError::Shape(format!(
                "{what} is [{}, {}]: expected at least one row and a positive dimension",
                self.rows, self.dim
            )));
        }
        Ok(())
    }
}
