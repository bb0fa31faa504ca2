//! Linear CCA against scipy's closed form (and scikit-learn's iterative CCA) on the seeded
//! 20,000 x 128 / 96 benchmark views; reference made by `tests/fixtures/cca/generate.py`.

use burn::backend::Flex;
use burn::tensor::Tensor;
use mm_core::cca::{CcaError, LinearCcaConfig};
use mm_data::matrix::HostMatrix;
use mm_data::synth::cca::{BENCHMARK_RHOS, benchmark_views};
use serde_json::Value;

use crate::floats;

type B = Flex;

fn tensor(m: &HostMatrix) -> Tensor<B, 2> {
    Tensor::<B, 1>::from_floats(m.to_f32().as_slice(), &Default::default())
        .reshape([m.rows, m.cols])
}

fn expected() -> Value {
    crate::fixture_json("cca")
}

/// Column `c` of a `d x k` host matrix.
fn column(m: &HostMatrix, c: usize) -> Vec<f64> {
    (0..m.rows).map(|r| m.get(r, c)).collect()
}

/// Largest difference between `ours` and `reference` after the better of the two signs,
/// relative to the reference's largest entry.
fn relative_error_up_to_sign(ours: &[f64], reference: &[f64]) -> f64 {
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = |s: f64| {
        ours.iter()
            .zip(reference)
            .fold(0.0f64, |m, (a, b)| m.max((s * a - b).abs()))
    };
    err(1.0).min(err(-1.0)) / scale
}

#[test]
fn matches_scipy_closed_form_and_sklearn() {
    let reference = expected();
    let (x, y) = benchmark_views();
    // The views are the ones the script read (the generator is seeded and self-contained).
    let sum = |m: &HostMatrix| m.to_f32().iter().map(|&v| v as f64).sum::<f64>();
    assert!((sum(&x) - reference["sum_x"].as_f64().unwrap()).abs() < 1e-6 * x.data.len() as f64);
    assert!((sum(&y) - reference["sum_y"].as_f64().unwrap()).abs() < 1e-6 * y.data.len() as f64);

    let k = reference["k"].as_u64().unwrap() as usize;
    for case in reference["closed_form"].as_array().unwrap() {
        let ridge = case["ridge"].as_f64().unwrap();
        let cca = LinearCcaConfig::new(k)
            .with_ridge(ridge)
            .fit(tensor(&x), tensor(&y))
            .unwrap();
        let want = floats(&case["correlations"]);
        for (i, (got, want)) in cca.correlations.iter().zip(&want).enumerate() {
            assert!(
                (got - want).abs() < 1e-4,
                "ridge {ridge}, rho_{i}: {got} vs scipy {want}"
            );
        }
        for (name, ours, refs) in [("wx", &cca.wx, &case["wx"]), ("wy", &cca.wy, &case["wy"])] {
            for (c, ref_col) in refs.as_array().unwrap().iter().enumerate() {
                let err = relative_error_up_to_sign(&column(ours, c), &floats(ref_col));
                assert!(
                    err < 1e-3,
                    "ridge {ridge}, {name} column {c}: relative error {err}"
                );
            }
        }
        // And near the population values (sampling error ~ 1/sqrt(n)).
        if ridge == 0.0 {
            for (got, rho) in cca.correlations.iter().zip(BENCHMARK_RHOS) {
                assert!((got - rho).abs() < 0.04, "{got} vs population {rho}");
            }
        }
    }
    let sklearn = floats(&reference["sklearn_correlations"]);
    let cca = LinearCcaConfig::new(sklearn.len())
        .fit(tensor(&x), tensor(&y))
        .unwrap();
    for (got, want) in cca.correlations.iter().zip(&sklearn) {
        assert!((got - want).abs() < 1e-3, "{got} vs scikit-learn {want}");
    }
}

#[test]
fn transform_gives_unit_variance_variates_with_the_canonical_correlations() {
    let (x, y) = mm_data::synth::cca::correlated_views(3000, 6, 5, &[0.8, 0.5], 3);
    let cca = LinearCcaConfig::new(2).fit(tensor(&x), tensor(&y)).unwrap();
    let u = mm_core::cca::covariance::to_host(cca.transform_x(tensor(&x)).unwrap());
    let v = mm_core::cca::covariance::to_host(cca.transform_y(tensor(&y)).unwrap());
    for c in 0..2 {
        let (a, b) = (column(&u, c), column(&v, c));
        let n = a.len() as f64;
        let var_a = a.iter().map(|t| t * t).sum::<f64>() / (n - 1.0);
        let var_b = b.iter().map(|t| t * t).sum::<f64>() / (n - 1.0);
        let cov = a.iter().zip(&b).map(|(s, t)| s * t).sum::<f64>() / (n - 1.0);
        assert!(
            (var_a - 1.0).abs() < 1e-3 && (var_b - 1.0).abs() < 1e-3,
            "{var_a} {var_b}"
        );
        assert!((cov - cca.correlations[c]).abs() < 1e-3);
    }
    let wrong = tensor(&HostMatrix::new(2, 3, vec![0.0; 6]).unwrap());
    assert!(matches!(
        cca.transform_x(wrong),
        Err(CcaError::Width {
            expected: 6,
            got: 3
        })
    ));
}

#[test]
fn degenerate_data_is_a_named_error_or_a_regularized_answer() {
    let (x, y) = mm_data::synth::cca::correlated_views(50, 4, 3, &[0.9], 1);
    let fit = |x: &HostMatrix, y: &HostMatrix, ridge: f64| {
        LinearCcaConfig::new(1)
            .with_ridge(ridge)
            .fit(tensor(x), tensor(y))
    };
    // Mismatched rows.
    let (short, _) = mm_data::synth::cca::correlated_views(40, 4, 3, &[0.9], 1);
    let err = fit(&short, &y, 0.0).unwrap_err();
    assert!(err.to_string().contains("40 rows and Y has 50"), "{err}");
    // Fewer samples than dimensions.
    let (wide_x, wide_y) = mm_data::synth::cca::correlated_views(8, 10, 3, &[0.9], 1);
    let err = fit(&wide_x, &wide_y, 0.0).unwrap_err();
    assert!(
        matches!(err, CcaError::TooFewSamples { n: 8, d: 10, .. }),
        "{err}"
    );
    let rho = fit(&wide_x, &wide_y, 0.5).unwrap().correlations[0];
    assert!(rho.is_finite() && (0.0..=1.0).contains(&rho));
    // A constant column.
    let mut constant = x.clone();
    (0..constant.rows).for_each(|r| constant.data[r * 4 + 2] = 5.0);
    let err = fit(&constant, &y, 0.0).unwrap_err();
    assert!(
        err.to_string().contains("column 2 of X is constant (5)"),
        "{err}"
    );
    assert!(fit(&constant, &y, 1e-3).unwrap().correlations[0].is_finite());
    // NaN and infinity.
    let mut nan = y.clone();
    nan.data[7 * 3 + 1] = f64::NAN;
    let err = fit(&x, &nan, 0.0).unwrap_err();
    assert!(err.to_string().contains("Y[7, 1] is NaN"), "{err}");
    let mut inf = x.clone();
    inf.data[0] = f64::INFINITY;
    assert!(matches!(
        fit(&inf, &y, 0.3),
        Err(CcaError::NonFinite {
            view: "X",
            row: 0,
            col: 0,
            ..
        })
    ));
    // Out-of-range k and ridge.
    assert!(matches!(
        LinearCcaConfig::new(4).fit(tensor(&x), tensor(&y)),
        Err(CcaError::InvalidK { k: 4, max: 3 })
    ));
    assert!(matches!(fit(&x, &y, -1.0), Err(CcaError::InvalidRidge(_))));
}
