//! A backbone alone from a Burn record (a run's `backbone.bin`): the weights `visage eval`
//! reads, and the starting point of a fine-tuning run (`[train] init_backbone`).

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use visage_backbones::backbone::BackboneRecord;
use visage_backbones::Backbone;

use crate::TrainError;

fn kind_of<B: Backend>(model: &Backbone<B>) -> &'static str {
    match model {
        Backbone::LeNetPP(_) => "lenet_pp",
        Backbone::SphereNet(_) => "sphere net",
        Backbone::IResNet(_) => "iresnet",
        Backbone::MobileFaceNet(_) => "mobilefacenet",
    }
}

fn record_kind<B: Backend>(record: &BackboneRecord<B>) -> &'static str {
    match record {
        BackboneRecord::LeNetPP(_) => "lenet_pp",
        BackboneRecord::SphereNet(_) => "sphere net",
        BackboneRecord::IResNet(_) => "iresnet",
        BackboneRecord::MobileFaceNet(_) => "mobilefacenet",
    }
}

/// The shapes of a module's parameters, in module order.
#[derive(Default)]
struct Shapes(Vec<Vec<usize>>);

impl<B: Backend> ModuleVisitor<B> for Shapes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push(param.val().dims().to_vec());
    }
}

fn shapes<B: Backend>(model: &Backbone<B>) -> Vec<Vec<usize>> {
    let mut s = Shapes::default();
    model.visit(&mut s);
    s.0
}

/// Loads the Burn record at `path` (written by [`Module::save_file`] with full precision,
/// as `visage train` writes `RUN/backbone.bin`) into `model`.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the file when it is missing or unreadable, when it holds
/// another backbone kind, or when its layout (depth, widths, embedding size) does not fit
/// `model`'s: never a panic.
pub fn load_backbone<B: Backend>(
    model: Backbone<B>,
    path: &Path,
    device: &B::Device,
) -> Result<Backbone<B>, TrainError> {
    let failed = |message: String| TrainError::Checkpoint {
        path: path.display().to_string(),
        message,
    };
    if !path.exists() {
        return Err(failed("no such backbone record".into()));
    }
    let kind = kind_of(&model);
    let bytes = visage_data::read::read_regular(path, crate::record_file::MAX_RECORD_BYTES)?;
    let record: BackboneRecord<B> = crate::record_file::decode_record::<B, _>(&bytes, device)
        .map_err(|e| {
            failed(format!(
                "cannot read it as the Burn record of a backbone ({e})"
            ))
        })?;
    let found = record_kind(&record);
    if found != kind {
        return Err(failed(format!(
            "the record holds a {found} backbone, not a {kind} one"
        )));
    }
    // Same kind: a different depth or layout may still trip Burn's loader, which panics.
    let expected = shapes(&model);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let loaded =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.load_record(record)));
    std::panic::set_hook(hook);
    let loaded = loaded.map_err(|panic| {
        let reason = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown reason".into());
        failed(format!(
            "the record does not fit this {kind} backbone: {reason}"
        ))
    })?;
    // Burn loads a record of other widths without complaint: compare every shape.
    let got = shapes(&loaded);
    if got.len() != expected.len() {
        return Err(failed(format!(
            "the record does not fit this {kind} backbone: {} parameters where {} were expected",
            got.len(),
            expected.len()
        )));
    }
    if let Some((e, g)) = expected.iter().zip(&got).find(|(e, g)| e != g) {
        return Err(failed(format!(
            "the record does not fit this {kind} backbone: a parameter of shape {g:?} where {e:?} was expected"
        )));
    }
    Ok(loaded)
}
