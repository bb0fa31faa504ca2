//! Entropy, mutual information, both PIDs and the InfoNCE bound against dit, cvxpy and torch
//! (reference made by `tests/fixtures/info/generate.py`), plus the textbook cases exactly.

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use mm_core::info::infonce::{InfoNceError, infonce_bound};
use mm_core::info::{
    InfoError, Pid, Trivariate, broja, entropy, mutual_information, williams_beer,
};
use serde_json::Value;

use crate::floats;

fn expected() -> Value {
    crate::fixture_json("info")
}

fn case(c: &Value) -> Trivariate {
    let s = floats(&c["shape"]);
    Trivariate::from_probabilities(
        (s[0] as usize, s[1] as usize, s[2] as usize),
        floats(&c["p"]),
    )
    .unwrap()
}

fn close_pid(name: &str, method: &str, got: Pid, want: &Value, tol: f64) {
    for (atom, g) in [
        ("redundancy", got.redundancy),
        ("unique_x", got.unique_x),
        ("unique_y", got.unique_y),
        ("synergy", got.synergy),
    ] {
        let w = want[atom].as_f64().unwrap();
        assert!(
            (g - w).abs() < tol,
            "{name} {method} {atom}: {g} vs dit {w}"
        );
    }
}

#[test]
fn entropies_and_mutual_informations_match_dit() {
    for (name, c) in expected()["cases"].as_object().unwrap() {
        let d = case(c);
        let close = |got: f64, key: &str| {
            let want = c[key].as_f64().unwrap();
            assert!(
                (got - want).abs() < 1e-10,
                "{name} {key}: {got} vs dit {want}"
            );
        };
        close(entropy(&d.t()), "h_t");
        close(entropy(&d.p), "h_txy");
        close(d.i_tx(), "i_tx");
        close(d.i_ty(), "i_ty");
        close(d.i_txy(), "i_txy");
        close(d.i_tx_given_y(), "i_tx_given_y");
    }
}

#[test]
fn decompositions_match_dit_and_add_up() {
    for (name, c) in expected()["cases"].as_object().unwrap() {
        let d = case(c);
        let wb = williams_beer(&d);
        close_pid(name, "williams_beer", wb, &c["williams_beer"], 1e-10);
        let br = broja(&d);
        // The reference is an interior-point solve of the same convex program (1e-12 gaps).
        close_pid(name, "broja", br, &c["broja"], 1e-7);
        for pid in [wb, br] {
            let total = pid.redundancy + pid.unique_x + pid.unique_y + pid.synergy;
            assert!(
                (total - d.i_txy()).abs() < 1e-8,
                "{name}: atoms sum to {total}"
            );
            assert!((pid.redundancy + pid.unique_x - d.i_tx()).abs() < 1e-8);
            assert!((pid.redundancy + pid.unique_y - d.i_ty()).abs() < 1e-8);
        }
    }
}

fn gate(f: impl Fn(usize, usize) -> usize, nt: usize) -> Trivariate {
    let samples: Vec<_> = (0..2)
        .flat_map(|x| (0..2).map(move |y| (x, y)))
        .map(|(x, y)| (f(x, y), x, y))
        .collect();
    let d = Trivariate::from_samples(&samples).unwrap();
    assert_eq!(d.shape.0, nt);
    d
}

#[test]
fn textbook_cases_are_exact() {
    let exact = |got: f64, want: f64, what: &str| {
        assert!((got - want).abs() < 1e-9, "{what}: {got} vs {want}")
    };
    // XOR: one bit, purely synergistic, in both decompositions.
    let xor = gate(|x, y| x ^ y, 2);
    for pid in [williams_beer(&xor), broja(&xor)] {
        exact(pid.synergy, 1.0, "XOR synergy");
        exact(
            pid.redundancy + pid.unique_x + pid.unique_y,
            0.0,
            "XOR other atoms",
        );
    }
    // A duplicated bit (T = X = Y): one bit of redundancy.
    let rdn = Trivariate::from_samples(&[(0, 0, 0), (1, 1, 1)]).unwrap();
    for pid in [williams_beer(&rdn), broja(&rdn)] {
        exact(pid.redundancy, 1.0, "RDN redundancy");
        exact(
            pid.unique_x + pid.unique_y + pid.synergy,
            0.0,
            "RDN other atoms",
        );
    }
    // COPY of two independent bits, T = (X, Y): BROJA gives one bit unique to each source;
    // Williams-Beer's I_min famously calls it one bit of redundancy plus one of synergy.
    let copy = gate(|x, y| 2 * x + y, 4);
    let b = broja(&copy);
    exact(b.unique_x, 1.0, "COPY unique X");
    exact(b.unique_y, 1.0, "COPY unique Y");
    exact(b.redundancy + b.synergy, 0.0, "COPY redundancy + synergy");
    let wb = williams_beer(&copy);
    exact(wb.redundancy, 1.0, "COPY I_min redundancy");
    exact(wb.synergy, 1.0, "COPY I_min synergy");
    // Independent variables share nothing.
    let independent = [0.12, 0.18, 0.28, 0.42]; // (0.4, 0.6) x (0.3, 0.7)
    exact(
        mutual_information(&independent, 2, 2),
        0.0,
        "MI of independent variables",
    );
    exact(entropy(&[0.25; 4]), 2.0, "entropy of two fair bits");
}

#[test]
fn malformed_tables_are_named_errors() {
    assert_eq!(
        Trivariate::from_probabilities((2, 2, 2), vec![0.5; 8]).unwrap_err(),
        InfoError::NotNormalized(4.0)
    );
    assert!(matches!(
        Trivariate::from_counts((2, 2, 2), vec![1.0; 7]),
        Err(InfoError::Shape { len: 7, .. })
    ));
    let mut bad = vec![0.125; 8];
    bad[3] = -0.1;
    assert!(matches!(
        Trivariate::from_counts((2, 2, 2), bad),
        Err(InfoError::Invalid { index: 3, .. })
    ));
    assert_eq!(
        Trivariate::from_counts((1, 1, 1), vec![0.0]).unwrap_err(),
        InfoError::Empty
    );
    assert_eq!(Trivariate::from_samples(&[]).unwrap_err(), InfoError::Empty);
}

#[test]
fn infonce_matches_torch_cross_entropy() {
    let reference = expected()["infonce"].clone();
    let rows = |v: &Value| -> (Vec<f64>, usize, usize) {
        let r = v.as_array().unwrap();
        let cols = r[0].as_array().unwrap().len();
        (r.iter().flat_map(floats).collect(), r.len(), cols)
    };
    let device = Default::default();
    let t = |(data, n, d): (Vec<f64>, usize, usize)| {
        Tensor::<Flex, 2>::from_data(TensorData::new(data, [n, d]).convert::<f32>(), &device)
    };
    let (x, y) = (t(rows(&reference["x"])), t(rows(&reference["y"])));
    let n = x.dims()[0];
    let scale = reference["scale"].as_f64().unwrap();
    // One batch of all pairs: the order of pairs does not matter.
    let bound = infonce_bound(x.clone(), y.clone(), scale, n, 0).unwrap();
    let want_xy = reference["loss_x_to_y"].as_f64().unwrap();
    let want_yx = reference["loss_y_to_x"].as_f64().unwrap();
    assert!(
        (bound.loss_x_to_y - want_xy).abs() < 1e-5,
        "{} vs torch {want_xy}",
        bound.loss_x_to_y
    );
    assert!(
        (bound.loss_y_to_x - want_yx).abs() < 1e-5,
        "{} vs torch {want_yx}",
        bound.loss_y_to_x
    );
    assert!((bound.bound_x_to_y - ((n as f64).ln() - want_xy)).abs() < 1e-5);
    assert!(bound.bound_x_to_y <= bound.log_n);
    // Smaller batches average several bounds, each at most log N.
    let half = infonce_bound(x.clone(), y.clone(), scale, n / 2, 1).unwrap();
    assert_eq!(half.batches, 2);
    assert!(half.bound_x_to_y <= (n as f64 / 2.0).ln());
    assert_eq!(
        infonce_bound(x.clone(), y.clone(), scale, 1, 0).unwrap_err(),
        InfoNceError::Batch { batch: 1, n }
    );
    let short = y.narrow(0, 0, 3);
    assert_eq!(
        infonce_bound(x, short, scale, 2, 0).unwrap_err(),
        InfoNceError::Rows { x: n, y: 3 }
    );
}
