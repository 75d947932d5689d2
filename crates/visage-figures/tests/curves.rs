//! The analytic curves against values derived by hand (independent f64 formulas written here).

use std::f64::consts::PI;

use burn::backend::NdArray;
use visage_figures::analytic::{DecisionMarginFigure, MarginPanel};
use visage_figures::curves::{adacos_probability, angle_grid, boundary_angle, TargetCurve};

type B = NdArray<f32>;

fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "{what}[{i}]: got {g}, want {w}");
    }
}

/// The heads hold a cosine in `[-1 + 1e-7, 1 - 1e-7]` before `sqrt(1 - c^2)` and `acos`
/// (visage_heads::margin::COS_EPS), which moves the curves by up to ~2e-4 at theta = 0 and pi.
fn clamped_angle(theta: f64) -> f64 {
    theta.cos().clamp(-1.0 + 1e-7, 1.0 - 1e-7).acos()
}

fn thetas() -> Vec<f64> {
    vec![0.0, 0.3, PI / 4.0, 1.0, PI / 2.0, 2.0, 2.7, 3.0, PI]
}

#[test]
fn cosine_is_cos_theta() {
    let t = thetas();
    let got = TargetCurve::cosine()
        .eval::<B>(&t, &Default::default())
        .unwrap();
    let want: Vec<f64> = t.iter().map(|x| x.cos()).collect();
    close(&got, &want, 1e-6, "cos");
}

#[test]
fn cosface_subtracts_m() {
    let t = thetas();
    let got = TargetCurve::cosface(0.35)
        .eval::<B>(&t, &Default::default())
        .unwrap();
    let want: Vec<f64> = t.iter().map(|x| x.cos() - 0.35).collect();
    close(&got, &want, 1e-6, "cosface");
}

#[test]
fn arcface_adds_the_angle_and_falls_back_past_pi_minus_m() {
    let m: f64 = 0.5;
    let t = thetas();
    let got = TargetCurve::arcface(m, false)
        .eval::<B>(&t, &Default::default())
        .unwrap();
    // th/mm: cos(theta + m) while theta < pi - m (= 2.6416), else cos theta - m sin m.
    let want: Vec<f64> = t
        .iter()
        .map(|&x| {
            if x < PI - m {
                (clamped_angle(x) + m).cos()
            } else {
                x.cos() - m * m.sin()
            }
        })
        .collect();
    close(&got, &want, 5e-5, "arcface");
    // Hand values: theta = 1 -> cos 1.5 = 0.0707372; theta = 3 -> -0.9899925 - 0.2397128.
    assert!((got[3] - 0.070_737_2).abs() < 2e-5);
    assert!((got[7] - (-1.229_705_3)).abs() < 2e-5);
    let easy = TargetCurve::arcface(m, true)
        .eval::<B>(&t, &Default::default())
        .unwrap();
    let want: Vec<f64> = t
        .iter()
        .map(|&x| {
            if x.cos() > 0.0 {
                (clamped_angle(x) + m).cos()
            } else {
                x.cos()
            }
        })
        .collect();
    close(&easy[..4], &want[..4], 5e-5, "easy margin, cos > 0");
    close(&easy[5..], &want[5..], 5e-5, "easy margin, cos < 0");
}

#[test]
fn sphereface_is_psi_and_its_lambda_blend() {
    // psi(theta) = (-1)^k cos(4 theta) - 2k on [k pi/4, (k+1) pi/4].
    let t = vec![0.0, 0.5, PI / 3.0, 1.0, 2.0, 3.0];
    // Hand values: psi(pi/3) = -cos(4 pi/3) - 2 = 0.5 - 2 = -1.5;
    // psi(1) (k = 1) = -cos 4 - 2 = 0.6536436 - 2; psi(2) (k = 2) = cos 8 - 4;
    // psi(3) (k = 3) = -cos 12 - 6.
    let want = vec![
        1.0,
        2.0f64.cos(),
        -1.5,
        -(4.0f64.cos()) - 2.0,
        8.0f64.cos() - 4.0,
        -(12.0f64.cos()) - 6.0,
    ];
    let got = TargetCurve::sphereface(4, 0.0)
        .eval::<B>(&t, &Default::default())
        .unwrap();
    close(&got, &want, 1e-4, "psi m=4");
    let blend = TargetCurve::sphereface(4, 5.0)
        .eval::<B>(&t, &Default::default())
        .unwrap();
    let want5: Vec<f64> = t
        .iter()
        .zip(&want)
        .map(|(x, p)| (5.0 * x.cos() + p) / 6.0)
        .collect();
    close(&blend, &want5, 1e-4, "sphereface lambda 5");
}

#[test]
fn combined_margin() {
    let t = vec![0.0, 0.7, 1.4];
    let got = TargetCurve::combined(1.0, 0.3, 0.2)
        .eval::<B>(&t, &Default::default())
        .unwrap();
    let want: Vec<f64> = t
        .iter()
        .map(|&x| (clamped_angle(x) + 0.3).cos() - 0.2)
        .collect();
    close(&got, &want, 5e-5, "combined");
}

#[test]
fn boundaries_in_angle_space() {
    // CosFace m = 0.35 at theta_1 = 0: theta_2 = acos(0.65) = 0.863212 rad.
    assert!((boundary_angle(1.0 - 0.35).unwrap() - 0.863_212_2).abs() < 1e-6);
    assert_eq!(boundary_angle(-1.2), None);
    assert_eq!(boundary_angle(1.0 + 1e-7), Some(0.0));
    // ArcFace: theta_2 = theta_1 + m below pi - m; SphereFace m = 4: theta_2 = 4 theta_1.
    let device = Default::default();
    let arc = MarginPanel::compute::<B>("a", &TargetCurve::arcface(0.5, false), &device).unwrap();
    for &(a, b) in arc.boundary.iter().filter(|p| p.0 > 1.0 && p.0 < 140.0) {
        assert!(
            (b - (a + 0.5f64.to_degrees())).abs() < 0.05,
            "arcface ({a}, {b})"
        );
    }
    let sph = MarginPanel::compute::<B>("s", &TargetCurve::sphereface(4, 0.0), &device).unwrap();
    for &(a, b) in sph.boundary.iter().filter(|p| p.0 > 1.0 && p.0 < 44.0) {
        assert!((b - 4.0 * a).abs() < 0.1, "sphereface ({a}, {b})");
    }
    // Past 45 degrees psi < -1: class 1 never wins, the boundary is the top edge.
    assert!(sph
        .boundary
        .iter()
        .filter(|p| p.0 > 46.0)
        .all(|p| p.1 == 180.0));
    let soft = MarginPanel::compute::<B>("c", &TargetCurve::cosine(), &device).unwrap();
    for &(a, b) in &soft.boundary {
        assert!(
            (a - b).abs() < 0.05,
            "softmax boundary is the diagonal ({a}, {b})"
        );
    }
    let fig = DecisionMarginFigure::compute::<B>(&device).unwrap();
    assert_eq!(fig.panels.len(), 4);
    let poly = fig.panels[2].margin_polygon();
    assert!(poly
        .iter()
        .all(|p| (0.0..=180.0).contains(&p.0) && (0.0..=180.0).contains(&p.1)));
}

#[test]
fn adacos_probability_by_hand() {
    // theta = 0, s = 10, C = 2000: 1 / (1 + 1999 e^-10) = 0.9165...
    let want0 = 1.0 / (1.0 + 1999.0 * (-10.0f64).exp());
    // theta = 90 degrees: e^0 / (e^0 + C - 1) = 1 / C.
    let p = adacos_probability(&[1.0, 0.0, -1.0], 10.0, 2000);
    assert!((p[0] - want0).abs() < 1e-12 && (p[0] - 0.916_5).abs() < 1e-3);
    assert!((p[1] - 1.0 / 2000.0).abs() < 1e-15);
    assert!(p[2] > 0.0 && p[2] < 1e-7);
    // Large s and a very negative target: no NaN.
    let q = adacos_probability(&[-7.0], 64.0, 20000);
    assert!(q[0].is_finite() && q[0] >= 0.0);
}

#[test]
fn grid_is_inclusive() {
    let g = angle_grid(0.0, PI, 5);
    close(
        &g,
        &[0.0, PI / 4.0, PI / 2.0, 3.0 * PI / 4.0, PI],
        1e-15,
        "grid",
    );
    assert!(angle_grid(0.0, 1.0, 0).is_empty());
}
