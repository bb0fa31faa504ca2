//! The deep CCA loss: its value is linear CCA's, its gradient matches finite differences, and
//! two MLPs trained with it beat linear CCA on a nonlinear two-view problem.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::{Tensor, TensorData};
use mm_core::cca::LinearCcaConfig;
use mm_core::cca::deep::DeepCcaLossConfig;
use mm_core::cca::experiment::{
    DeepCcaExperimentConfig, evaluate_deep_cca, load_deep_cca, run_deep_cca_experiment,
};
use mm_core::train::RunOptions;
use mm_data::{rng::SplitMix64, synth::cca::correlated_views};

/// f64 throughout, so central differences are accurate to ~1e-9.
type Exact = NdArray<f64>;

fn random(rows: usize, cols: usize, rng: &mut SplitMix64) -> Vec<f64> {
    (0..rows * cols).map(|_| rng.normal()).collect()
}

#[test]
fn gradient_matches_central_differences() {
    let (n, dx, dy) = (24, 4, 3);
    let mut rng = SplitMix64::new(11);
    let hx = random(n, dx, &mut rng);
    // Y shares some signal with X so the correlations are well separated.
    let hy: Vec<f64> = (0..n * dy)
        .map(|i| hx[(i / dy) * dx + i % dy] * (1.0 - 0.3 * (i % dy) as f64) + 0.7 * rng.normal())
        .collect();
    let loss = DeepCcaLossConfig::new(2).with_ridge(1e-2).init();
    let device = Default::default();
    let value = |hx: &[f64], hy: &[f64]| -> f64 {
        let tx = Tensor::<Exact, 2>::from_data(TensorData::new(hx.to_vec(), [n, dx]), &device);
        let ty = Tensor::<Exact, 2>::from_data(TensorData::new(hy.to_vec(), [n, dy]), &device);
        loss.forward(tx, ty).unwrap().into_scalar()
    };
    let tx = Tensor::<Autodiff<Exact>, 2>::from_data(TensorData::new(hx.clone(), [n, dx]), &device)
        .require_grad();
    let ty = Tensor::<Autodiff<Exact>, 2>::from_data(TensorData::new(hy.clone(), [n, dy]), &device)
        .require_grad();
    let grads = loss.forward(tx.clone(), ty.clone()).unwrap().backward();
    let gx = tx
        .grad(&grads)
        .unwrap()
        .into_data()
        .to_vec::<f64>()
        .unwrap();
    let gy = ty
        .grad(&grads)
        .unwrap()
        .into_data()
        .to_vec::<f64>()
        .unwrap();
    let eps = 1e-6;
    let mut checked = 0;
    for (which, grad) in [(0, &gx), (1, &gy)] {
        for (i, &g) in grad.iter().enumerate().step_by(5) {
            let (mut plus, mut minus) = ([hx.clone(), hy.clone()], [hx.clone(), hy.clone()]);
            plus[which][i] += eps;
            minus[which][i] -= eps;
            let fd = (value(&plus[0], &plus[1]) - value(&minus[0], &minus[1])) / (2.0 * eps);
            assert!(
                (fd - g).abs() < 1e-6 + 1e-5 * fd.abs(),
                "view {which} entry {i}: autodiff {g} vs finite difference {fd}"
            );
            checked += 1;
        }
    }
    assert!(checked > 30);
    // The gradient is not trivially zero.
    assert!(gx.iter().any(|g| g.abs() > 1e-3));
}

#[test]
fn value_equals_linear_cca() {
    let (x, y) = correlated_views(500, 5, 4, &[0.9, 0.6, 0.3], 5);
    let device = Default::default();
    let t =
        |m: &mm_data::matrix::HostMatrix| mm_core::cca::covariance::to_device::<Flex>(m, &device);
    let ridge = 1e-3;
    let deep = DeepCcaLossConfig::new(3).with_ridge(ridge).init();
    let rho = deep
        .correlations(t(&x), t(&y))
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let linear = LinearCcaConfig::new(3)
        .with_ridge(ridge)
        .fit(t(&x), t(&y))
        .unwrap();
    for (a, b) in rho.iter().zip(&linear.correlations) {
        assert!((*a as f64 - b).abs() < 1e-4, "{a} vs {b}");
    }
}

#[test]
fn deep_cca_beats_linear_cca_on_a_nonlinear_problem() {
    let cfg = DeepCcaExperimentConfig::new().with_steps(250);
    let tmp = tempfile::tempdir().unwrap();
    let run = RunOptions::new(tmp.path().join("run"));
    let report =
        run_deep_cca_experiment::<Autodiff<Flex>>(&cfg, &run, &[Default::default()]).unwrap();
    assert!(tmp.path().join("run/final/model.mpk").is_file());
    let linear: f64 = report.linear.iter().sum();
    let deep: f64 = report.deep.iter().sum();
    eprintln!("held-out total correlation: linear {linear:.3}, deep {deep:.3} ({report:?})");
    assert!(
        linear < 0.2,
        "linear CCA should find almost nothing: {linear}"
    );
    assert!(
        deep > 1.5,
        "deep CCA should find most of the 2 possible: {deep}"
    );
    let (first, last) = report.loss_first_last.expect("the run logged its losses");
    assert!(last < first);
    // The saved model, loaded on its own, gives the same held-out figures.
    let final_dir = tmp.path().join("run/final");
    let (model, saved) = load_deep_cca::<Flex>(&final_dir, &Default::default()).unwrap();
    assert_eq!(saved.steps, cfg.steps);
    let again = evaluate_deep_cca(
        &saved,
        &model,
        &tmp.path().join("run/metrics.jsonl"),
        &Default::default(),
    )
    .unwrap();
    for (a, b) in again.deep.iter().zip(&report.deep) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
}
