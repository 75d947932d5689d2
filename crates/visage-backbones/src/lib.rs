//! Face-embedding backbones generic over Burn's `Backend`, and InsightFace weights in.
//!
//! - [`lenet_pp`]: the center-loss paper's LeNets++ for 28x28 grey images.
//! - [`sphere_net`]: SphereFace's residual nets, depth 4/10/20/36/64.
//! - [`iresnet`]: InsightFace arcface_torch's IResNet 18/34/50/100/200.
//! - [`mobilefacenet`]: InsightFace's MobileFaceNet (`mbf`).
//! - [`backbone`]: [`BackboneKind`], the serde [`BackboneConfig`] and the [`Backbone`] module.
//! - [`pytorch_import`]: InsightFace `backbone.pth` / safetensors state dicts in.
//! - [`flops`]: analytic forward cost.
//!
//! Every backbone returns an embedding `[N, d]`; it runs in training mode (batch statistics)
//! on an autodiff backend and in inference mode (running statistics) on a plain backend.

pub mod backbone;
pub mod error;
pub mod flops;
mod init;
pub mod iresnet;
pub mod lenet_pp;
pub mod mobilefacenet;
pub mod ops;
pub mod pytorch_import;
pub mod sphere_net;
pub mod torch_file;

pub use backbone::{
    Backbone, BackboneConfig, BackboneKind, MAX_EMBEDDING_DIM, MAX_INPUT_SIDE, MAX_IN_CHANNELS,
};
pub use error::BackboneError;
pub use iresnet::{IResNet, IResNetConfig};
pub use lenet_pp::{LeNetPP, LeNetPPConfig};
pub use mobilefacenet::{MobileFaceNet, MobileFaceNetConfig};
pub use pytorch_import::{
    expected_state_dict, export_state_dict, load_state_dict, load_weights, pytorch_num_params,
    save_safetensors, torch_key, ReadOptions, StateDict, MAX_WEIGHTS_FILE_BYTES,
};
pub use sphere_net::{SphereNet, SphereNetConfig};
