//! A `[head]` table written field by field, as a user writes one, and read by the library's
//! one parser ([`visage_heads::HeadConfig`]) through a TOML round trip. Fields left `None`
//! are left out of the table (the paper defaults apply).

use burn::tensor::backend::Backend;
use serde::Serialize;
use visage_heads::loss::{TripletDistance, TripletMining, TripletReduction};
use visage_heads::{Head, HeadConfig, HeadError, HeadKind, HeadTensors};

/// A `[head]` table with any subset of the library's field names set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadSpec {
    pub kind: HeadKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub easy_margin: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detach_margin: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m2: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m3: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin_int: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learnable_scale: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mining: Option<TripletMining>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance: Option<TripletDistance>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reduction: Option<TripletReduction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalize: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_classes: Option<usize>,
}

impl HeadSpec {
    /// A table of `kind` with every field at its default, except sub-center ArcFace, which
    /// the every-kind tests run at `k = 1` so that any `[C, d]` weight fits (its own tests in
    /// `subcenter.rs` use `k = 2, 3`).
    pub fn new(kind: HeadKind) -> Self {
        HeadSpec {
            kind,
            scale: None,
            margin: None,
            easy_margin: None,
            detach_margin: None,
            m1: None,
            m2: None,
            m3: None,
            margin_int: None,
            base: None,
            gamma: None,
            power: None,
            lambda_min: None,
            learnable_scale: None,
            dynamic: None,
            alpha: None,
            lambda: None,
            mining: None,
            distance: None,
            reduction: None,
            normalize: None,
            bias: None,
            k: (kind == HeadKind::SubCenterArcFace).then_some(1),
            chunk_classes: None,
        }
    }

    /// Sub-centres per class of the weight matrix (1 but for sub-center ArcFace).
    pub fn sub_centers(&self) -> usize {
        if self.kind == HeadKind::SubCenterArcFace {
            self.k.unwrap_or(3)
        } else {
            1
        }
    }

    /// The TOML text of the table.
    pub fn toml(&self) -> String {
        toml::to_string(self).expect("a head table serialises")
    }

    /// The table parsed by the library (panics on a parse error: see `config_errors.rs` for
    /// those).
    pub fn parse(&self) -> HeadConfig {
        let text = self.toml();
        toml::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// The parsed and validated config for `classes` classes of `dim`-wide embeddings.
    pub fn to_config(&self, classes: usize, dim: usize) -> Result<SizedConfig, HeadError> {
        let config = self.parse();
        config.validate(classes, dim)?;
        Ok(SizedConfig {
            config,
            classes,
            dim,
        })
    }
}

/// A validated config with its sizes.
#[derive(Debug, Clone)]
pub struct SizedConfig {
    pub config: HeadConfig,
    pub classes: usize,
    pub dim: usize,
}

impl SizedConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Head<B>, HeadError> {
        self.config.init(self.classes, self.dim, device)
    }

    pub fn init_with<B: Backend>(&self, tensors: HeadTensors<B>) -> Result<Head<B>, HeadError> {
        self.config.init_with(self.classes, self.dim, tensors)
    }
}
