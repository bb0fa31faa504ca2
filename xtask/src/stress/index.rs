//! Killing `index build`: 256 shapes in batches of 4, rerun with `--resume` after every kill.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mm_data::rng::SplitMix64;
use mm_retrieval::Found;

use super::{Ending, Run, TargetReport, args, moment, run_to_end, tail};

const IMAGES: usize = 256;
const BATCH: usize = 4;
/// Score difference allowed between a resumed build's entry and the uninterrupted build's (the
/// batches differ after a resume, so the sums run in another order).
pub const TOLERANCE: f32 = 1e-4;
/// The query whose scores compare the vectors of two folders.
pub const QUERY: &str = "a red circle";

/// Every entry of an index folder: id -> (metadata, score against [`QUERY`]), through
/// `xtask search` (so the folder must open as a user's would).
pub fn entries(index: &Path, model: &Path, log: &Path) -> Result<BTreeMap<u64, Found>> {
    let out = run_to_end(
        &args(&[
            &"search", &"--index", &index, &"--model", &model, &"--text", &QUERY, &"--k",
            &"1000000", &"--json",
        ]),
        log,
    )?;
    let found: Vec<Found> = serde_json::from_str(out.trim())
        .with_context(|| format!("`xtask search` printed no results: {out}"))?;
    Ok(found.into_iter().map(|f| (f.id, f)).collect())
}

/// `xtask index build` of the images of `manifest` into `out` with `model`, then `extra`.
pub fn build_command(model: &Path, manifest: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = args(&[
        &"index",
        &"build",
        &"--model",
        &model,
        &"--images",
        &manifest,
        &"--out",
        &out,
    ]);
    a.extend(extra.iter().map(|e| e.to_string()));
    a
}

/// The number in the last `indexed N, read R of M images` line.
fn acknowledged(stderr: &str) -> usize {
    stderr
        .lines()
        .filter_map(|l| {
            l.strip_prefix("indexed ")?
                .split_once(", read ")?
                .0
                .parse()
                .ok()
        })
        .next_back()
        .unwrap_or(0)
}

/// `have` holds ids `0..have.len()`, each the reference's entry, and at least `at_least` of them.
fn check(
    have: &BTreeMap<u64, Found>,
    reference: &BTreeMap<u64, Found>,
    at_least: usize,
    what: &str,
) -> Result<()> {
    if have.len() < at_least {
        bail!(
            "{what}: {at_least} images were reported indexed, the folder holds {}",
            have.len()
        );
    }
    for (i, (&id, f)) in have.iter().enumerate() {
        let Some(want) = reference.get(&id) else {
            bail!("{what}: id {id} is not in the uninterrupted build");
        };
        if id != i as u64 || f.metadata != want.metadata || (f.score - want.score).abs() > TOLERANCE
        {
            bail!("{what}: entry {id} is {f:?}, the uninterrupted build's is {want:?}");
        }
    }
    Ok(())
}

/// Kills `index build` `kills` times.
pub fn stress(work: &Path, model: &Path, kills: usize, seed: u64) -> Result<TargetReport> {
    let began = Instant::now();
    std::fs::create_dir_all(work)?;
    let manifest = mm_data::synth::shapes::write_shapes(&work.join("shapes"), 16, IMAGES)?;
    let batch = BATCH.to_string();
    let command =
        |out: &PathBuf| build_command(model, &manifest, out, &["--batch", &batch, "--resume"]);
    let reference_dir = work.join("reference");
    let start = Instant::now();
    run_to_end(&command(&reference_dir), &work.join("reference"))?;
    let window = start.elapsed();
    let reference = entries(&reference_dir, model, &work.join("search-reference"))?;
    if reference.len() != IMAGES {
        bail!("the uninterrupted build holds {} entries", reference.len());
    }

    let mut report = TargetReport::new("index");
    let mut rng = SplitMix64::stream(seed, 2);
    let mut out = work.join("build-0");
    let mut attempt = 0;
    // Entries found in the current build's folder after the last kill: acknowledged then.
    let mut known = 0;
    while report.kills < kills {
        let log = work.join(format!("attempt-{attempt}"));
        attempt += 1;
        let mut run = Run::start(&command(&out), &log)?;
        match run.kill_at(moment(&mut rng, window))? {
            Ending::Killed => {
                report.kills += 1;
                let reported = acknowledged(&run.stderr());
                report.count("acknowledged", reported.saturating_sub(known) as u64);
                let acked = reported.max(known);
                if out.join(mm_retrieval::durable::SNAPSHOT_FILE).exists() {
                    let have = entries(&out, model, &log.with_extension("search"))?;
                    check(&have, &reference, acked, &format!("kill {}", report.kills))?;
                    report.count("unacknowledged_but_kept", (have.len() - acked) as u64);
                    known = have.len();
                } else if acked > 0 {
                    bail!("{acked} images were reported indexed but the folder has no index");
                } else {
                    report.count("killed_before_the_folder_existed", 1);
                }
                report.checks += 1;
            }
            Ending::Exited(status) if status.success() => {
                let have = entries(&out, model, &log.with_extension("search"))?;
                check(&have, &reference, IMAGES, "a finished build")?;
                report.checks += 1;
                report.finished += 1;
                out = work.join(format!("build-{}", report.finished));
                known = 0;
            }
            Ending::Exited(status) => {
                bail!("`index build` failed ({status}): {}", tail(&run.stderr()))
            }
        }
    }
    // The loop ends on a kill; the build killed last still finishes, even when the kill came
    // before its folder existed (CI's slower start made all three kills land there once).
    run_to_end(&command(&out), &work.join("last"))?;
    check(
        &entries(&out, model, &work.join("search-last"))?,
        &reference,
        IMAGES,
        "the last build",
    )?;
    report.checks += 1;
    report.finished += 1;
    report.seconds = began.elapsed().as_secs_f64();
    Ok(report)
}
