//! `cargo xtask cca` end to end: CSV and `.npy` in, one JSON object out, projections saved, and
//! bad input reported by name with a failing exit code.

use std::path::Path;
use std::process::{Command, Output};

use mm_data::matrix::{HostMatrix, read_matrix, write_npy_f32, write_npy_f64};
use mm_data::synth::cca::correlated_views;

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .unwrap()
}

fn write_csv(path: &Path, m: &HostMatrix) {
    let mut text = (0..m.cols)
        .map(|c| format!("f{c}"))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for r in 0..m.rows {
        let row: Vec<String> = (0..m.cols).map(|c| format!("{:e}", m.get(r, c))).collect();
        text += &(row.join(",") + "\n");
    }
    std::fs::write(path, text).unwrap();
}

fn correlations(out: &Output) -> Vec<f64> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["correlations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn csv_and_npy_inputs_give_the_same_correlations() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = correlated_views(2000, 6, 4, &[0.9, 0.5], 9);
    let p = |name: &str| dir.path().join(name);
    write_csv(&p("x.csv"), &x);
    write_csv(&p("y.csv"), &y);
    write_npy_f64(&p("x.npy"), &x).unwrap();
    write_npy_f32(&p("y.npy"), &[y.rows, y.cols], &y.to_f32()).unwrap();
    let s = |path: &Path| path.to_str().unwrap().to_string();
    let from_csv = correlations(&xtask(&[
        "cca",
        "--x",
        &s(&p("x.csv")),
        "--y",
        &s(&p("y.csv")),
        "-k",
        "3",
    ]));
    let proj = p("proj");
    let from_npy = correlations(&xtask(&[
        "cca",
        "--x",
        &s(&p("x.npy")),
        "--y",
        &s(&p("y.npy")),
        "-k",
        "3",
        "--save-projections",
        &s(&proj),
    ]));
    assert_eq!(from_csv.len(), 3);
    for (a, b) in from_csv.iter().zip(&from_npy) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    assert!(
        (from_csv[0] - 0.9).abs() < 0.05 && (from_csv[1] - 0.5).abs() < 0.05,
        "{from_csv:?}"
    );
    let wx = read_matrix(&proj.join("wx.npy")).unwrap();
    assert_eq!((wx.rows, wx.cols), (6, 3));
    assert!(proj.join("correlations.json").exists());
}

#[test]
fn bad_input_fails_with_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.csv");
    let y = dir.path().join("y.csv");
    std::fs::write(&x, "1,2\n3,4\n5,nan\n7,9\n").unwrap();
    std::fs::write(&y, "1\n2\n3\n5\n").unwrap();
    let out = xtask(&[
        "cca",
        "--x",
        x.to_str().unwrap(),
        "--y",
        y.to_str().unwrap(),
        "-k",
        "1",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("X[2, 1] is NaN"), "{err}");
    let missing = xtask(&[
        "cca",
        "--x",
        "/nonexistent.npy",
        "--y",
        y.to_str().unwrap(),
        "-k",
        "1",
    ]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.npy"));
}

/// Built without its GPU features (the README's test command), the CLI refuses a GPU or
/// ndarray device by naming the cargo feature, whatever backends the libraries were built with.
#[cfg(not(any(feature = "wgpu", feature = "cuda", feature = "ndarray")))]
#[test]
fn a_device_the_binary_was_not_built_for_names_its_feature() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = correlated_views(200, 4, 3, &[0.9], 1);
    let (xp, yp) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    write_npy_f32(&xp, &[x.rows, x.cols], &x.to_f32()).unwrap();
    write_npy_f32(&yp, &[y.rows, y.cols], &y.to_f32()).unwrap();
    let (xs, ys) = (xp.to_str().unwrap(), yp.to_str().unwrap());
    for (device, feature) in [("wgpu", "wgpu"), ("cuda:0", "cuda"), ("ndarray", "ndarray")] {
        let out = xtask(&["cca", "--x", xs, "--y", ys, "-k", "1", "--device", device]);
        assert!(!out.status.success(), "{device} ran");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("--features {feature}")),
            "{device}: {err}"
        );
    }
    let out = xtask(&["cca", "--x", xs, "--y", ys, "-k", "1", "--device", "cpu"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
