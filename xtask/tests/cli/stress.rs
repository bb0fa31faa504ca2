//! `cargo xtask stress` at a small count: `train clip`, `index build` and the service are each
//! killed three times at seeded moments, and every check after every kill passes.

use serde_json::Value;

use crate::common::{ok, xtask};

#[test]
fn killed_commands_lose_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let out = tmp.path().join("report.json");
    let stdout = ok(&xtask(&[
        "stress",
        "--kills",
        "3",
        "--seed",
        "7",
        "--work",
        work.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    let report: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let targets = report["targets"].as_array().unwrap();
    let names: Vec<&str> = targets
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["train", "index", "serve"], "{stdout}");
    for t in targets {
        assert_eq!(t["kills"], 3, "{t}");
        // A check after every kill, and one at each finish (train, index) or final start.
        assert!(t["checks"].as_u64().unwrap() > 3, "{t}");
    }
    // Every killed training run was resumed or restarted until it finished.
    assert!(
        targets[0]["finished"].as_u64().unwrap() >= 1,
        "{}",
        targets[0]
    );
    assert!(
        targets[1]["finished"].as_u64().unwrap() >= 1,
        "{}",
        targets[1]
    );
    // Zero kills is refused by name.
    let none = xtask(&["stress", "--kills", "0", "--work", work.to_str().unwrap()]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("--kills"));
}
