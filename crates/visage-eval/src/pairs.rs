//! `Pairs`: which rows of an embedding matrix are compared, and whether they show the same
//! identity.

use crate::{Embeddings, EvalError};

/// One verification pair: rows `first` and `second` of the embedding matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// Row of the first image.
    pub first: usize,
    /// Row of the second image.
    pub second: usize,
    /// Whether both images show the same identity (a genuine pair).
    pub same: bool,
}

/// Verification pairs in file order (the order defines the 10 folds).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pairs(pub Vec<Pair>);

impl Pairs {
    /// The InsightFace `.bin` order: pair `i` = rows `2i` and `2i + 1`, `issame[i]`.
    pub fn interleaved(issame: &[bool]) -> Self {
        Pairs(
            issame
                .iter()
                .enumerate()
                .map(|(i, &same)| Pair {
                    first: 2 * i,
                    second: 2 * i + 1,
                    same,
                })
                .collect(),
        )
    }

    /// Interleaved pairs for an embedding matrix of `rows` rows and `issame` of length N:
    /// errors unless `rows` is even and equal to `2 N`.
    pub fn interleaved_for(rows: usize, issame: &[bool]) -> Result<Self, EvalError> {
        if !rows.is_multiple_of(2) {
            return Err(EvalError::Shape(format!(
                "embeddings have an odd number of rows ({rows}): pair i is rows 2i and 2i+1, so 2N rows are expected"
            )));
        }
        if rows != 2 * issame.len() {
            return Err(EvalError::Shape(format!(
                "embeddings have {rows} rows = {} pairs, but issame has {} entries",
                rows / 2,
                issame.len()
            )));
        }
        Ok(Self::interleaved(issame))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of genuine (same-identity) pairs.
    pub fn genuine(&self) -> usize {
        self.0.iter().filter(|p| p.same).count()
    }

    /// Number of impostor pairs.
    pub fn impostor(&self) -> usize {
        self.len() - self.genuine()
    }

    /// Errors when a pair indexes a row outside `embeddings`.
    pub fn check_rows(&self, embeddings: &Embeddings) -> Result<(), EvalError> {
        for (k, p) in self.0.iter().enumerate() {
            let worst = p.first.max(p.second);
            if worst >= embeddings.rows {
                return Err(EvalError::Shape(format!(
                    "pair {k} uses row {worst}, but the embeddings have only {} rows",
                    embeddings.rows
                )));
            }
        }
        Ok(())
    }
}
