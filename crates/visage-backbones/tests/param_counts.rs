//! Parameter counts equal to PyTorch's `sum(p.numel() for p in model.parameters())` for the
//! definitions each backbone follows. Expected values are derived by hand below from the layer
//! shapes of the original code (InsightFace `iresnet.py`, `mobilefacenet.py`; the SphereFace and
//! center-loss Caffe prototxts); running statistics are buffers, not parameters; the frozen
//! `features.weight` of IResNet is a parameter (requires_grad=False) and counts.

use burn::backend::NdArray;
use visage_backbones::{
    pytorch_num_params, BackboneConfig, BackboneKind, IResNetConfig, LeNetPPConfig,
    MobileFaceNetConfig, SphereNetConfig,
};

type B = NdArray<f32>;

// ---- building blocks of the arithmetic (PyTorch parameter shapes) ----
/// Conv2d weight [out, in/groups, k, k] (+ bias [out]).
fn conv(cin: usize, cout: usize, k: usize, groups: usize, bias: bool) -> usize {
    cout * (cin / groups) * k * k + if bias { cout } else { 0 }
}
/// BatchNorm weight + bias (running_mean/var are buffers).
fn bn(c: usize) -> usize {
    2 * c
}
/// PReLU(num_parameters = c).
fn prelu(c: usize) -> usize {
    c
}
/// Linear weight [out, in] (+ bias).
fn linear(din: usize, dout: usize, bias: bool) -> usize {
    din * dout + if bias { dout } else { 0 }
}

/// IBasicBlock(inplanes, planes, downsample?): bn1, conv1, bn2, prelu, conv2, bn3 [, conv1x1, bn].
fn ibasic(inplanes: usize, planes: usize, downsample: bool) -> usize {
    bn(inplanes)
        + conv(inplanes, planes, 3, 1, false)
        + bn(planes)
        + prelu(planes)
        + conv(planes, planes, 3, 1, false)
        + bn(planes)
        + if downsample {
            conv(inplanes, planes, 1, 1, false) + bn(planes)
        } else {
            0
        }
}

fn iresnet_expected(layers: [usize; 4]) -> usize {
    let stem = conv(3, 64, 3, 1, false) + bn(64) + prelu(64);
    let mut total = stem;
    let mut inplanes = 64;
    for (planes, n) in [64, 128, 256, 512].into_iter().zip(layers) {
        // every stage has stride 2, so its first block has a downsample
        total += ibasic(inplanes, planes, true) + (n - 1) * ibasic(planes, planes, false);
        inplanes = planes;
    }
    // head: bn2 (512), fc 512*7*7 -> 512 with bias, features BatchNorm1d(512) (weight frozen)
    total + bn(512) + linear(512 * 7 * 7, 512, true) + bn(512)
}

#[test]
fn iresnet_counts_match_pytorch() {
    let device = Default::default();
    // Worked by hand for iresnet50:
    //   stem 1728 + 128 + 64 = 1,920
    //   stage1: first 78,400 + 2 x 74,176 = 226,752
    //   stage2: first 230,400 + 3 x 295,808 = 1,117,824
    //   stage3: first 919,552 + 13 x 1,181,440 = 16,278,272
    //   stage4: first 3,674,112 + 2 x 4,722,176 = 13,118,464
    //   head: 1,024 + 12,845,568 + 1,024 = 12,847,616
    //   total 43,590,848 (InsightFace's model zoo lists R50 as 43.6M parameters).
    assert_eq!(ibasic(64, 64, true), 78_400);
    assert_eq!(ibasic(64, 64, false), 74_176);
    assert_eq!(ibasic(64, 128, true), 230_400);
    assert_eq!(ibasic(256, 512, true), 3_674_112);
    assert_eq!(iresnet_expected([3, 4, 14, 3]), 43_590_848);
    // R100: 65.2M in the model zoo.
    assert_eq!(iresnet_expected([3, 13, 30, 3]), 65_156_160);

    for (depth, layers) in [
        (18, [2, 2, 2, 2]),
        (34, [3, 4, 6, 3]),
        (50, [3, 4, 14, 3]),
        (100, [3, 13, 30, 3]),
        (200, [6, 26, 60, 6]),
    ] {
        let model = IResNetConfig::new().with_depth(depth).init::<B>(&device);
        assert_eq!(
            pytorch_num_params(&model),
            iresnet_expected(layers),
            "iresnet{depth}"
        );
    }
}

#[test]
fn mobilefacenet_count_matches_pytorch() {
    // mbf: blocks (1, 4, 6, 2), scale 2, 512-d.
    let cb = |cin, cout, k, g| conv(cin, cout, k, g, false) + bn(cout) + prelu(cout);
    let lb = |cin, cout, k, g| conv(cin, cout, k, g, false) + bn(cout);
    let dw = |cin, cout, g| cb(cin, g, 1, 1) + cb(g, g, 3, g) + lb(g, cout, 1, 1);
    let expected = cb(3, 128, 3, 1) // layers.0
        + cb(128, 128, 3, 64) // layers.1: groups=64 in the original
        + dw(128, 128, 128) // layers.2
        + 4 * dw(128, 128, 128) // layers.3
        + dw(128, 256, 256) // layers.4
        + 6 * dw(256, 256, 256) // layers.5
        + dw(256, 256, 512) // layers.6
        + 2 * dw(256, 256, 256) // layers.7
        + cb(256, 512, 1, 1) // conv_sep
        + lb(512, 512, 7, 512) + linear(512, 512, false) + bn(512); // GDC
                                                                    // By hand: 3,840 + 2,688 + 34,944 + 139,776 + 102,656 + 812,544 + 270,336 + 270,848
                                                                    //          + 132,608 + 289,280 = 2,059,520
    assert_eq!(expected, 2_059_520);
    let model = MobileFaceNetConfig::new().init::<B>(&Default::default());
    assert_eq!(pytorch_num_params(&model), expected);
}

#[test]
fn lenet_pp_count() {
    // (conv5x5 with bias + PReLU) for 1->32->32->64->64->128->128, FC 128*3*3 -> 2, PReLU(2).
    let expected = conv(1, 32, 5, 1, true)
        + conv(32, 32, 5, 1, true)
        + conv(32, 64, 5, 1, true)
        + conv(64, 64, 5, 1, true)
        + conv(64, 128, 5, 1, true)
        + conv(128, 128, 5, 1, true)
        + prelu(32 + 32 + 64 + 64 + 128 + 128)
        + linear(128 * 3 * 3, 2, true)
        + prelu(2);
    // By hand: convs 794,848 + PReLUs 448 + fc 2,306 + 2 = 797,604
    assert_eq!(expected, 797_604);
    let model = LeNetPPConfig::new().init::<B>(&Default::default());
    assert_eq!(pytorch_num_params(&model), expected);
}

fn sphere_expected(units: [usize; 4], hw: [usize; 2]) -> usize {
    let mut total = 0;
    let mut cin = 3;
    for (c, n) in [64, 128, 256, 512].into_iter().zip(units) {
        total += conv(cin, c, 3, 1, true) + prelu(c);
        total += n * 2 * (conv(c, c, 3, 1, true) + prelu(c));
        cin = c;
    }
    total + linear(512 * hw[0] * hw[1], 512, true)
}

#[test]
fn sphere_net_counts() {
    // SphereFace-20 at 112x96 (final map 7x6), by hand:
    //   openings (conv + PReLU) 1,856 + 73,984 + 295,424 + 1,180,672 = 1,551,936
    //   units 73,984 + 2 x 295,424 + 4 x 1,180,672 + 4,720,640 = 10,108,160
    //   fc5 512*7*6*512 + 512 = 11,010,560;  total 22,670,656
    assert_eq!(sphere_expected([1, 2, 4, 1], [7, 6]), 22_670_656);
    let device = Default::default();
    for (depth, units) in [
        (4, [0, 0, 0, 0]),
        (10, [0, 1, 2, 0]),
        (20, [1, 2, 4, 1]),
        (36, [2, 4, 8, 2]),
        (64, [3, 8, 16, 3]),
    ] {
        let model = SphereNetConfig::new().with_depth(depth).init::<B>(&device);
        assert_eq!(
            pytorch_num_params(&model),
            sphere_expected(units, [7, 6]),
            "sphere{depth}"
        );
    }
    let square = SphereNetConfig::new()
        .with_input_size([112, 112])
        .init::<B>(&device);
    assert_eq!(
        pytorch_num_params(&square),
        sphere_expected([1, 2, 4, 1], [7, 7])
    );
}

#[test]
fn backbone_config_builds_the_same_counts() {
    let device = Default::default();
    let cfg = BackboneConfig::new(BackboneKind::IResNet(18));
    let model = cfg.init::<B>(&device).unwrap();
    assert_eq!(pytorch_num_params(&model), iresnet_expected([2, 2, 2, 2]));
}

#[test]
fn analytic_macs_match_published_figures() {
    // InsightFace's model zoo: R50 6.3 GFLOPs and R100 12.1 GFLOPs (multiply-accumulates),
    // MobileFaceNet (mbf) 0.45 G.
    let r50 = IResNetConfig::new().with_depth(50).macs().unwrap() as f64 / 1e9;
    let r100 = IResNetConfig::new().with_depth(100).macs().unwrap() as f64 / 1e9;
    let mbf = MobileFaceNetConfig::new().macs() as f64 / 1e9;
    assert!((r50 - 6.3).abs() < 0.1, "r50 {r50}");
    assert!((r100 - 12.1).abs() < 0.15, "r100 {r100}");
    assert!((mbf - 0.45).abs() < 0.03, "mbf {mbf}");
    // LeNets++ at 28x28, by hand: conv1_1 28*28*32*1*25 = 627,200; conv1_2 20,070,400;
    // conv2_1 14*14*64*32*25 = 10,035,200; conv2_2 20,070,400; conv3_1 7*7*128*64*25 =
    // 10,035,200; conv3_2 20,070,400; fc 1152*2 = 2,304; total 80,911,104.
    assert_eq!(LeNetPPConfig::new().macs(), 80_911_104);
}
