//! `backbone_config` (what `visage embed` and `visage eval` call): a kind or a run's
//! config.toml, with the options given replacing the source's.

use visage_backbones::BackboneKind;
use visage_infer::{backbone_config, BackboneSource, InferError};

#[test]
fn kind_with_options_and_typed_errors() {
    let lenet = BackboneSource::Kind("lenet_pp".into());
    let c = backbone_config(&lenet, Some("28,28"), Some(3), Some(1)).unwrap();
    assert_eq!(c.backbone_kind().unwrap(), BackboneKind::LeNetPP);
    assert_eq!(c.input_size, Some([28, 28]));
    assert_eq!((c.embedding_dim, c.in_channels), (Some(3), Some(1)));
    // options left out stay unset (completed later from the weights)
    let bare = backbone_config(&lenet, None, None, None).unwrap();
    assert_eq!(
        (bare.input_size, bare.embedding_dim, bare.in_channels),
        (None, None, None)
    );

    let unknown = backbone_config(&BackboneSource::Kind("resnet7".into()), None, None, None);
    assert!(
        matches!(unknown, Err(InferError::Backbone(_))),
        "{unknown:?}"
    );
    let zero = backbone_config(&lenet, Some("0x28"), None, None);
    assert!(
        matches!(zero, Err(InferError::InputSize { .. })),
        "{zero:?}"
    );

    let dir = std::env::temp_dir().join(format!("visage-infer-bbcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("config.toml");
    let err = backbone_config(&BackboneSource::RunConfig(missing), None, None, None).unwrap_err();
    assert!(matches!(err, InferError::Train(_)), "{err:?}");
    assert!(err.to_string().contains("config.toml"), "{err}");
}
