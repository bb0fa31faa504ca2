//! The reference side of `cargo xtask bench`: the committed figures of a reference script, or
//! (`--run-reference`) the script itself run in the same sitting, alternating with mm, so a
//! machine whose speed drifts between hours compares like with like.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::common::workspace_root;
use mm_xtask::figure::{Figure, median, ratio};

/// How to run a target's reference script.
pub struct ReferenceScript {
    /// The target's name (`clip`): the script is `xtask/bench/<name>_reference.py`.
    pub name: &'static str,
    /// The Python to run it with.
    pub python: String,
    /// Threads it may use (`--threads`).
    pub threads: usize,
    /// Flags of its own (`--min-seconds 3`, `--sizes ...`).
    pub args: Vec<String>,
}

impl ReferenceScript {
    /// `xtask/bench/<name>_reference.py`.
    pub fn path(&self) -> PathBuf {
        workspace_root().join(format!("xtask/bench/{}_reference.py", self.name))
    }

    /// Runs the script once and returns its figures (the JSON it writes to `--out`).
    pub fn run(&self, scratch: &Path) -> Result<Value> {
        let out = scratch.join(format!("{}-reference.json", self.name));
        let status = Command::new(&self.python)
            .arg(self.path())
            .arg("--threads")
            .arg(self.threads.to_string())
            .arg("--out")
            .arg(&out)
            .args(&self.args)
            .env("OMP_NUM_THREADS", self.threads.to_string())
            .env("MKL_NUM_THREADS", self.threads.to_string())
            .stdout(std::process::Stdio::null())
            .status()
            .with_context(|| format!("cannot run {} (--python)", self.python))?;
        if !status.success() {
            bail!(
                "{} {} failed ({status}); it needs the packages pinned in its docstring",
                self.python,
                self.path().display()
            );
        }
        let text = std::fs::read_to_string(&out)
            .with_context(|| format!("the reference script wrote no {}", out.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", out.display()))
    }
}

/// Rounds of (mm figures, reference figures) measured alternately: each figure's value per
/// round, the ratio of each pair and the median ratio.
pub fn print_rounds(rounds: &[(Vec<Figure>, Value)]) {
    let Some((first, _)) = rounds.first() else {
        return;
    };
    println!(
        "{:<34} {:>10} {:>11} {:>24} {:>8}",
        "figure (median of rounds)", "mm", "reference", "ratio per round", "median"
    );
    for (i, f) in first.iter().enumerate() {
        let ours: Vec<f64> = rounds.iter().map(|(figs, _)| figs[i].value).collect();
        let theirs: Vec<f64> = rounds
            .iter()
            .map(|(_, r)| r[f.key.as_str()].as_f64().unwrap_or(f64::NAN))
            .collect();
        let ratios: Vec<f64> = rounds
            .iter()
            .zip(&theirs)
            .map(|((figs, _), &t)| ratio(&figs[i], t))
            .collect();
        let per_round = ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" ");
        if theirs.iter().all(|t| t.is_nan()) {
            println!(
                "{:<34} {:>10.3} {:>11} {:>24} {:>8}",
                f.key,
                median(&ours),
                "-",
                "-",
                "-"
            );
            continue;
        }
        println!(
            "{:<34} {:>10.3} {:>11.3} {:>24} {:>7.3}x",
            f.key,
            median(&ours),
            median(&theirs),
            per_round,
            median(&ratios)
        );
    }
}
