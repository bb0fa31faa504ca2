//! The `train NAME` / `eval NAME --checkpoint DIR` convention end to end for the models whose
//! training is quick: deep CCA and the fusion strategies. Each trains a few steps into a run
//! folder, is scored from its saved `final/` alone, and writes its JSON report.

use std::path::Path;
use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xtask {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn deep_cca_trains_then_is_scored_from_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let run_s = run.to_str().unwrap();
    xtask(&[
        "train",
        "deep-cca",
        "--run-dir",
        run_s,
        "--set",
        "steps=30",
        "--set",
        "n_train=600",
        "--set",
        "n_test=300",
        "--set",
        "batch=200",
    ]);
    assert!(run.join("final/model.mpk").is_file());
    assert_eq!(read_json(&run.join("final/config.json"))["steps"], 30);
    let out = tmp.path().join("eval.json");
    let stdout = xtask(&[
        "eval",
        "deep-cca",
        "--checkpoint",
        run.join("final").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .stdout;
    let report = &read_json(&out)["report"];
    for method in ["linear", "deep"] {
        let rho = report[method].as_array().unwrap();
        assert_eq!(rho.len(), 2, "{method}");
        assert!(
            rho.iter()
                .all(|r| (0.0..=1.0 + 1e-9).contains(&r.as_f64().unwrap())),
            "{method}: {rho:?}"
        );
    }
    assert!(report["loss_first_last"].is_array(), "{report}");
    // The figures join the run's log.
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["eval"]["deep"], report["deep"], "{last}");
    assert!(String::from_utf8_lossy(&stdout).contains("linear CCA"));
    // A folder that holds no model is named.
    let bad = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "eval",
            "deep-cca",
            "--checkpoint",
            tmp.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("config.json"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn fusion_trains_then_is_scored_from_its_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("fusion");
    let run_s = run.to_str().unwrap();
    xtask(&[
        "train",
        "fusion",
        "--run-dir",
        run_s,
        "--set",
        "steps=5",
        "--set",
        "n_train=200",
        "--set",
        "n_test=100",
    ]);
    assert!(run.join("synergy/bilinear/final/model.mpk").is_file());
    let out = tmp.path().join("eval.json");
    xtask(&[
        "eval",
        "fusion",
        "--checkpoint",
        run_s,
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = read_json(&out);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 14, "7 strategies x 2 tasks");
    for row in rows {
        let acc = row["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{row}");
        assert!(row["train_seconds"].as_f64().unwrap() >= 0.0, "{row}");
    }
}

/// Run directly (no `cargo`, so no `CARGO_MANIFEST_DIR`), the binary finds its workspace from
/// the current folder: the checkout above it that holds `xtask/Cargo.toml`, not the one it was
/// built in. Here that workspace has no `configs/`, so `train clip` names the file it looked for.
#[test]
fn the_workspace_is_found_from_the_current_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("checkout");
    std::fs::create_dir_all(root.join("xtask")).unwrap();
    std::fs::create_dir_all(root.join("runs/deeper")).unwrap();
    std::fs::write(
        root.join("xtask/Cargo.toml"),
        "[package]\nname = \"xtask\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["train", "clip"])
        .env_remove("CARGO_MANIFEST_DIR")
        .current_dir(root.join("runs/deeper"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let wanted = root.join("configs/clip-emoji.json");
    assert!(err.contains(wanted.to_str().unwrap()), "{err}");
}
