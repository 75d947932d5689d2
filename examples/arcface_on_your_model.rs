//! Put an ArcFace head on your own Burn model.
//!
//! Your model maps inputs to embeddings; the head is three parts you can use on their own:
//! the classifier (class weights -> cosines), the ArcFace margin (a function of the target
//! cosine) and the cross-entropy. Model and classifier are modules, so one optimiser trains
//! both, and at inference you drop the head and compare embeddings by cosine. The whole head
//! in one module is `HeadConfig::ArcFace(..).init(classes, dim, &device)`.
//!
//! Run: `cargo run -p visage-examples --example arcface_on_your_model`

use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Module};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::{backend::Backend, Distribution, Int, Tensor, TensorData};
use visage_heads::classifier::{Classifier, ClassifierConfig};
use visage_heads::{loss, margin};

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
    classifier: Classifier<B>,
}

/// ArcFace with a smaller scale suits 8 classes; m stays the paper's 0.5.
const SCALE: f64 = 16.0;
const MARGIN: f64 = 0.5;

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

    let mut model = Trainee {
        embedder: Embedder::new(input, dim, &device),
        classifier: ClassifierConfig::new(classes, dim).init(&device),
    };
    let mut optim = SgdConfig::new().init();
    for step in 0..60 {
        let embeddings = model.embedder.forward(inputs.clone());
        // cosines [N, C] -> ArcFace margin on the target cosine -> scale -> cross-entropy
        let cos = model.classifier.cosines(embeddings);
        let logits =
            margin::apply_to_target(cos, labels.clone(), |c| margin::arcface(c, MARGIN, false))
                .mul_scalar(SCALE);
        let loss = loss::cross_entropy(logits, labels.clone());
        let value: f32 = loss.clone().into_scalar();
        if step % 10 == 0 {
            println!("step {step:3}  ArcFace loss {value:.4}");
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.1, model, grads);
    }
    // Inference: embeddings only, no margin; the plain cosines classify.
    let valid = model.valid();
    let logits = valid
        .classifier
        .cosines(valid.embedder.forward(inputs.inner()));
    let predicted = logits.argmax(1).reshape([n]);
    let correct: i64 = predicted.equal(labels.inner()).int().sum().into_scalar();
    println!("training accuracy with plain cosine logits: {correct}/{n}");
}
