//! A backbone and its weights: settings completed from the weights file, then built on any
//! Burn backend with the weights loaded.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use visage_backbones::{load_state_dict, Backbone, BackboneConfig, BackboneKind};

use crate::error::{InferError, Result};
use crate::weights::{embedding_dim_of, lenet_in_channels_of, Weights, WeightsFormat};

/// What to load: a backbone config, whose unset options are read from the weights where a
/// state dict says them (embedding size; LeNets++ input channels) and defaulted otherwise,
/// and a weights file of any [`WeightsFormat`].
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// The backbone; `None` options are completed by [`ModelSpec::resolve`].
    pub config: BackboneConfig,
    /// `.pth` / `.safetensors` state dict (InsightFace keys) or a Burn record `.bin`.
    pub weights: PathBuf,
    /// Accept NaN/Inf values in a state dict (by default an error naming the tensor).
    pub allow_non_finite: bool,
}

impl ModelSpec {
    /// A spec of `config` with the weights at `weights`, non-finite weights refused.
    pub fn new(config: BackboneConfig, weights: impl Into<PathBuf>) -> Self {
        ModelSpec {
            config,
            weights: weights.into(),
            allow_non_finite: false,
        }
    }

    /// Checks the settings given, opens the weights and completes the config from them.
    ///
    /// # Errors
    /// A bad setting ([`InferError::Backbone`], checked before the weights are read), a
    /// missing or malformed weights file (naming the file and tensor).
    pub fn resolve(&self) -> Result<Model> {
        let mut config = self.config.clone();
        let kind = config.backbone_kind()?;
        // settings given are checked before a (possibly large) weights file is read
        config.input_size()?;
        if config.embedding_dim.is_some() {
            config.embedding_dim()?;
        }
        if config.in_channels.is_some() {
            config.in_channels()?;
        }
        let weights = Weights::open(&self.weights, self.allow_non_finite)?;
        if let Weights::StateDict(state) = &weights {
            if config.embedding_dim.is_none() {
                config.embedding_dim = embedding_dim_of(kind, state);
            }
            if config.in_channels.is_none() && kind == BackboneKind::LeNetPP {
                config.in_channels = lenet_in_channels_of(state);
            }
        }
        Ok(Model {
            input_size: config.input_size()?,
            in_channels: config.in_channels()?,
            embedding_dim: config.embedding_dim()?,
            kind,
            config,
            weights,
            path: self.weights.clone(),
        })
    }
}

/// A resolved model: every setting known, the weights opened; [`Model::load`] builds it on a
/// backend.
#[derive(Debug, Clone)]
pub struct Model {
    /// The backbone config, completed.
    pub config: BackboneConfig,
    /// The backbone kind.
    pub kind: BackboneKind,
    /// Input `[H, W]`.
    pub input_size: [usize; 2],
    /// Input channels (1: BT.601 luma of the images, 3: RGB).
    pub in_channels: usize,
    /// Embedding size.
    pub embedding_dim: usize,
    /// The opened weights.
    pub weights: Weights,
    /// The weights file.
    pub path: PathBuf,
}

/// How a report describes the model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    /// Backbone kind (`lenet_pp`, `iresnet50`, ..).
    pub kind: String,
    /// The completed config.
    pub config: BackboneConfig,
    /// Embedding size.
    pub embedding_dim: usize,
    /// Input `[H, W]`.
    pub input_size: [usize; 2],
    /// Input channels.
    pub in_channels: usize,
    /// The weights file.
    pub weights: String,
    /// Its format, in words.
    pub weights_format: &'static str,
}

impl Model {
    /// Builds the backbone on `device` and loads the weights into it. Use a plain
    /// (non-autodiff) backend for inference: batch-norm running statistics, no dropout.
    ///
    /// # Errors
    /// [`InferError::Weights`] naming the file and the backbone asked for, with the reason:
    /// a missing key, a tensor of another shape, a record of another kind or layout.
    pub fn load<B: Backend>(&self, device: &B::Device) -> Result<Backbone<B>> {
        let model: Backbone<B> = self.config.init(device)?;
        let loaded = match &self.weights {
            Weights::StateDict(state) => load_state_dict(model, state).map_err(InferError::from),
            Weights::Record(path) => {
                visage_train::load_backbone(model, path, device).map_err(InferError::from)
            }
        };
        loaded.map_err(|source| InferError::Weights {
            path: self.path.clone(),
            kind: self.config.kind.clone(),
            source: Box::new(source),
        })
    }

    /// The weights' format.
    pub fn format(&self) -> WeightsFormat {
        self.weights.format()
    }

    /// The description written into reports.
    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            kind: self.kind.to_string(),
            config: self.config.clone(),
            embedding_dim: self.embedding_dim,
            input_size: self.input_size,
            in_channels: self.in_channels,
            weights: self.path.display().to_string(),
            weights_format: self.format().describe(),
        }
    }

    /// The weights file.
    pub fn weights_path(&self) -> &Path {
        &self.path
    }
}

/// Loads a backbone from `config` and the weights at `weights` (any [`WeightsFormat`]) on
/// `device`: [`ModelSpec::resolve`] then [`Model::load`].
///
/// # Errors
/// As those two.
pub fn load_backbone<B: Backend>(
    config: BackboneConfig,
    weights: &Path,
    device: &B::Device,
) -> Result<(Backbone<B>, Model)> {
    let model = ModelSpec::new(config, weights).resolve()?;
    Ok((model.load(device)?, model))
}

/// Where a backbone's config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackboneSource {
    /// A kind name as configs and `--backbone` spell it (`iresnet50`, `r50`, `lenet_pp`, ..),
    /// every option at its default.
    Kind(String),
    /// A training run's `config.toml`: its `[backbone]` table (for the run's `backbone.bin`).
    RunConfig(PathBuf),
}

/// The backbone config of `source`, with the options given replacing its own: `input_size`
/// as `HxW` or `H,W` ([`crate::parse_hw`]), the embedding size, the (LeNets++) input
/// channels. Options left `None` keep the source's, and [`ModelSpec::resolve`] completes
/// what is still unset from the weights.
///
/// # Errors
/// An unknown kind ([`InferError::Backbone`]), a run config that cannot be read
/// ([`InferError::Train`], naming the file), a bad size ([`InferError::InputSize`]).
pub fn backbone_config(
    source: &BackboneSource,
    input_size: Option<&str>,
    embedding_dim: Option<usize>,
    in_channels: Option<usize>,
) -> Result<BackboneConfig> {
    let mut config = match source {
        BackboneSource::Kind(name) => BackboneConfig::new(name.parse::<BackboneKind>()?),
        BackboneSource::RunConfig(path) => visage_train::TrainConfig::from_file(path)?.backbone,
    };
    if let Some(hw) = input_size {
        config.input_size = Some(crate::parse_hw(hw)?);
    }
    config.embedding_dim = embedding_dim.or(config.embedding_dim);
    config.in_channels = in_channels.or(config.in_channels);
    Ok(config)
}
