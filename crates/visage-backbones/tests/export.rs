//! A backbone exported with InsightFace key names loads back into a fresh backbone (other
//! random weights) and then computes the same embeddings.

use burn::backend::Flex;
use burn::tensor::{backend::Backend, Distribution, Tensor};
use visage_backbones::{
    expected_state_dict, load_weights, save_safetensors, BackboneConfig, BackboneKind,
};

type B = Flex;

#[test]
fn safetensors_export_round_trips() {
    let device = Default::default();
    for kind in [BackboneKind::LeNetPP, BackboneKind::IResNet(18)] {
        let mut config = BackboneConfig::new(kind);
        if kind != BackboneKind::LeNetPP {
            config.input_size = Some([32, 32]);
            config.embedding_dim = Some(16);
        }
        B::seed(&device, 1);
        let a = config.init::<B>(&device).unwrap();
        B::seed(&device, 2);
        let fresh = config.init::<B>(&device).unwrap();
        let path = std::env::temp_dir().join(format!(
            "visage-export-{kind}-{}.safetensors",
            std::process::id()
        ));
        save_safetensors(&a, &path).unwrap();
        // The file holds exactly the keys a PyTorch state_dict of this net has.
        let bytes = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names: Vec<String> = st.names().into_iter().cloned().collect();
        names.sort();
        let mut expected: Vec<String> = expected_state_dict(&a)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        expected.sort();
        assert_eq!(names, expected);
        let b = load_weights(fresh, &path).unwrap();
        let [h, w] = config.input_size().unwrap();
        let x = Tensor::<B, 4>::random(
            [2, config.in_channels().unwrap(), h, w],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let ya: Vec<f32> = a.forward(x.clone()).into_data().into_vec().unwrap();
        let yb: Vec<f32> = b.forward(x).into_data().into_vec().unwrap();
        assert_eq!(ya, yb, "{kind}");
    }
}
