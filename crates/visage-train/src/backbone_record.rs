//! A backbone alone from a Burn record (a run's `backbone.bin`): the weights `visage eval`
//! reads, and the starting point of a fine-tuning run (`[train] init_backbone`).
//!
//! The record is checked against the model before it is loaded: its layout (backbone kind,
//! block counts, every tensor shape; see [`crate::record_layout`]) must be the model's, so
//! Burn's loader, which panics on another enum variant or `Vec` length, never sees a record
//! that does not fit. No panic is caught and the process-wide panic hook is left alone, so
//! records load safely from several threads at once.

use std::path::Path;

use burn::module::Module;
use burn::record::{FullPrecisionSettings, Record};
use burn::tensor::backend::Backend;
use visage_backbones::backbone::BackboneRecord;
use visage_backbones::Backbone;

use crate::record_layout::{first_difference, layout_of, LayoutEntry};
use crate::TrainError;

fn kind_of<B: Backend>(model: &Backbone<B>) -> &'static str {
    match model {
        Backbone::LeNetPP(_) => "lenet_pp",
        Backbone::SphereNet(_) => "sphere net",
        Backbone::IResNet(_) => "iresnet",
        Backbone::MobileFaceNet(_) => "mobilefacenet",
    }
}

/// The backbone kind named by the root variant of a record's layout.
fn record_kind(layout: &[LayoutEntry]) -> &str {
    match layout.first().map(|e| (e.path.as_str(), e.what.as_str())) {
        Some(("", "variant LeNetPP")) => "lenet_pp",
        Some(("", "variant SphereNet")) => "sphere net",
        Some(("", "variant IResNet")) => "iresnet",
        Some(("", "variant MobileFaceNet")) => "mobilefacenet",
        Some(("", other)) => other.trim_start_matches("variant "),
        _ => "unknown",
    }
}

/// Loads the Burn record at `path` (written by [`Module::save_file`] with full precision,
/// as `visage train` writes `RUN/backbone.bin`) into `model`.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the file when it is missing or unreadable, when it holds
/// another backbone kind, or when its layout (depth, widths, embedding size) does not fit
/// `model`'s, naming the first parameter that differs: never a panic.
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
    let item = crate::record_file::decode_item::<B, BackboneRecord<B>>(&bytes).map_err(|e| {
        failed(format!(
            "cannot read it as the Burn record of a backbone ({e})"
        ))
    })?;
    drop(bytes);
    let found = layout_of(&item).map_err(|e| failed(format!("cannot walk the record: {e}")))?;
    let expected = layout_of(
        &model
            .clone()
            .into_record()
            .into_item::<FullPrecisionSettings>(),
    )
    .map_err(|e| failed(format!("cannot walk the model's own record: {e}")))?;
    let found_kind = record_kind(&found);
    if found_kind != kind {
        return Err(failed(format!(
            "the record holds a {found_kind} backbone, not a {kind} one"
        )));
    }
    if let Some(diff) = first_difference(&found, &expected) {
        return Err(failed(format!(
            "the record does not fit this {kind} backbone: {diff}"
        )));
    }
    // Same layout: Burn's loader finds every variant, length and shape it expects.
    let record = BackboneRecord::<B>::from_item::<FullPrecisionSettings>(item, device);
    Ok(model.load_record(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::record::BinFileRecorder;
    use std::str::FromStr;
    use visage_backbones::{BackboneConfig, BackboneKind};

    type B = Flex;

    fn config(kind: &str, dim: usize) -> BackboneConfig {
        let mut c = BackboneConfig::new(BackboneKind::from_str(kind).unwrap());
        c.embedding_dim = Some(dim);
        c
    }

    /// Every parameter value, in module order.
    fn params(model: &Backbone<B>) -> Vec<f32> {
        struct V<'a>(&'a mut Vec<f32>);
        impl<Bk: Backend> burn::module::ModuleVisitor<Bk> for V<'_> {
            fn visit_float<const D: usize>(
                &mut self,
                p: &burn::module::Param<burn::tensor::Tensor<Bk, D>>,
            ) {
                let v = p.val().into_data().convert::<f32>();
                self.0.extend(v.to_vec::<f32>().unwrap());
            }
        }
        let mut out = Vec::new();
        model.visit(&mut V(&mut out));
        out
    }

    #[test]
    fn a_fitting_record_loads_and_misfits_are_errors_naming_the_parameter() {
        let dir =
            std::env::temp_dir().join(format!("visage-backbone-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let device = Default::default();
        let saved: Backbone<B> = config("lenet_pp", 8).init(&device).unwrap();
        let want = params(&saved);
        saved
            .save_file(
                dir.join("lenet"),
                &BinFileRecorder::<FullPrecisionSettings>::new(),
            )
            .unwrap();
        let path = dir.join("lenet.bin");

        // the same layout: every value arrives
        let fresh: Backbone<B> = config("lenet_pp", 8).init(&device).unwrap();
        let loaded = load_backbone(fresh, &path, &device).unwrap();
        assert_eq!(params(&loaded), want);

        // another embedding size: named by the first parameter whose shape differs
        let other: Backbone<B> = config("lenet_pp", 2).init(&device).unwrap();
        let e = load_backbone(other, &path, &device)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lenet.bin") && e.contains("does not fit"), "{e}");
        // LeNets++ on 28x28: 128 channels x 3 x 3 = 1152 features into the fc layer
        assert!(
            e.contains("`fc.weight`") && e.contains("[1152, 8]") && e.contains("[1152, 2]"),
            "{e}"
        );

        // another kind
        let sphere: Backbone<B> = config("sphere4", 8).init(&device).unwrap();
        let e = load_backbone(sphere, &path, &device)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lenet_pp backbone, not a sphere net"), "{e}");

        // same kind, other depth (Burn's loader would panic on the Vec lengths)
        let s4: Backbone<B> = config("sphere4", 8).init(&device).unwrap();
        s4.save_file(
            dir.join("s4"),
            &BinFileRecorder::<FullPrecisionSettings>::new(),
        )
        .unwrap();
        let s10: Backbone<B> = config("sphere10", 8).init(&device).unwrap();
        let e = load_backbone(s10, &dir.join("s4.bin"), &device)
            .unwrap_err()
            .to_string();
        assert!(e.contains("s4.bin") && e.contains("does not fit"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
