//! Put an ArcFace head on your own Burn model.
//!
//! Your model maps inputs to embeddings; the head holds the class weights and turns
//! `(embeddings, labels)` into a loss. Both are modules, so one optimiser trains both, and at
//! inference you drop the head and compare embeddings by cosine.
//!
//! Run: `cargo run -p visage-examples --example arcface_on_your_model`

use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Module};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::{backend::Backend, Distribution, Int, Tensor, TensorData};
use visage_heads::{ArcFace, ArcFaceConfig};

/// Your model: anything that produces `[N, d]` embeddings.
#[derive(Module, Debug)]
struct Embedder<B: Backend> {
    hidden: Linear<B>,
    out: Linear<B>,
    relu: Relu,
}

impl<B: Backend> Embedder<B> {
    fn new(input: usize, dim: usize, device: &B::Device) -> Self {
        Embedder {
            hidden: LinearConfig::new(input, 64).init(device),
            out: LinearConfig::new(64, dim).init(device),
            relu: Relu::new(),
        }
    }
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.out.forward(self.relu.forward(self.hidden.forward(x)))
    }
}

/// The model and the head, trained together.
#[derive(Module, Debug)]
struct Trainee<B: Backend> {
    embedder: Embedder<B>,
    head: ArcFace<B>,
}

type B = Autodiff<NdArray<f32>>;

fn main() {
    let device = Default::default();
    let (classes, input, dim, n) = (8usize, 16usize, 32usize, 64usize);
    // Toy data: each class is a random centre in input space plus noise.
    let centres = Tensor::<B, 2>::random([classes, input], Distribution::Normal(0.0, 1.0), &device);
    let labels_vec: Vec<i64> = (0..n as i64).map(|i| i % classes as i64).collect();
    let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(labels_vec, [n]), &device);
    let inputs = centres.select(0, labels.clone())
        + Tensor::random([n, input], Distribution::Normal(0.0, 0.3), &device);

    // ArcFace with a smaller scale suits 8 classes; m stays the paper's 0.5.
    let head = ArcFaceConfig::new(classes, dim)
        .with_scale(16.0)
        .init::<B>(&device)
        .expect("valid ArcFace config");
    let mut model = Trainee {
        embedder: Embedder::new(input, dim, &device),
        head,
    };
    let mut optim = SgdConfig::new().init();
    for step in 0..60 {
        let embeddings = model.embedder.forward(inputs.clone());
        let out = model.head.forward(embeddings, labels.clone());
        let loss: f32 = out.loss.clone().into_scalar();
        if step % 10 == 0 {
            println!("step {step:3}  ArcFace loss {loss:.4}");
        }
        let grads = GradientsParams::from_grads(out.loss.backward(), &model);
        model = optim.step(0.1, model, grads);
    }
    // Inference: embeddings only, no margin; the head's plain cosine logits classify.
    let valid = model.valid();
    let logits = valid
        .head
        .inference_logits(valid.embedder.forward(inputs.inner()));
    let predicted = logits.argmax(1).reshape([n]);
    let correct: i64 = predicted.equal(labels.inner()).int().sum().into_scalar();
    println!("training accuracy with plain cosine logits: {correct}/{n}");
}
