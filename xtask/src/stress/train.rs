//! Killing `train clip`: a tiny CLIP on 16 shapes, rerun with `--resume` after every kill.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mm_core::train::{complete_checkpoints, read_losses};
use mm_data::rng::SplitMix64;
use mm_text::ClipTextConfig;
use mm_vision::ClipVisionConfig;
use mm_vl::ClipConfig;
use mm_vl::train::{ClipTrainConfig, TrainSettings};

use super::{Ending, Run, TargetReport, args, moment, run_to_end, tail};

/// Steps of the run; a checkpoint every [`CHECKPOINT_EVERY`].
const STEPS: usize = 40;
const CHECKPOINT_EVERY: usize = 4;
/// Loss difference allowed between a resumed run and the uninterrupted one.
const TOLERANCE: f64 = 1e-5;

/// A CLIP with two-layer towers of width 32 over 16 px images, trained on one batch of 16.
fn config() -> ClipTrainConfig {
    let model = ClipConfig::new(
        ClipTextConfig::new(32, 64, 16, 2, 4).with_max_position_embeddings(12),
        ClipVisionConfig::new(32, 64, 16, 2, 4, 16, 4),
        16,
    );
    let train = TrainSettings::new()
        .with_batch_size(16)
        .with_steps(STEPS)
        .with_lr(3e-3)
        .with_warmup_steps(2)
        .with_checkpoint_every(CHECKPOINT_EVERY)
        .with_max_shift(0);
    ClipTrainConfig::new(model, train)
}

/// The data, the config file and the command line of a run into `run_dir`.
struct Setup {
    manifest: PathBuf,
    config: PathBuf,
    work: PathBuf,
}

impl Setup {
    fn new(work: &Path) -> Result<Self> {
        std::fs::create_dir_all(work)?;
        let manifest = mm_data::synth::shapes::write_shapes(&work.join("shapes"), 16, 16)?;
        let config = work.join("config.json");
        std::fs::write(&config, serde_json::to_vec_pretty(&config_json()?)?)?;
        Ok(Self {
            manifest,
            config,
            work: work.to_path_buf(),
        })
    }

    fn command(&self, run_dir: &Path, resume: bool) -> Vec<String> {
        let mut a = args(&[
            &"train",
            &"clip",
            &"--config",
            &self.config,
            &"--data",
            &self.manifest,
            &"--run-dir",
            &run_dir,
        ]);
        if resume {
            a.push("--resume".into());
        }
        a
    }
}

fn config_json() -> Result<serde_json::Value> {
    Ok(serde_json::to_value(config())?)
}

/// Trains the uninterrupted reference run; returns its final model folder.
pub fn reference_model(work: &Path) -> Result<PathBuf> {
    let setup = Setup::new(work)?;
    Ok(Reference::train(&setup)?.dir.join("final"))
}

/// The uninterrupted run.
struct Reference {
    dir: PathBuf,
    losses: Vec<(usize, f64)>,
    took: std::time::Duration,
}

impl Reference {
    fn train(setup: &Setup) -> Result<Self> {
        let dir = setup.work.join("reference");
        let began = Instant::now();
        run_to_end(&setup.command(&dir, false), &setup.work.join("reference"))?;
        let took = began.elapsed();
        let losses = read_losses(&dir.join("metrics.jsonl"))?;
        if losses.len() != STEPS {
            bail!("the reference run logged {} of {STEPS} steps", losses.len());
        }
        Ok(Self { dir, losses, took })
    }
}

/// Every step logged in `run_dir` has the reference's loss; returns how many were logged.
fn check_losses(run_dir: &Path, reference: &[(usize, f64)]) -> Result<usize> {
    let path = run_dir.join("metrics.jsonl");
    let losses = if path.exists() {
        read_losses(&path).with_context(|| format!("cannot read {}", path.display()))?
    } else {
        Vec::new()
    };
    for (i, &(step, loss)) in losses.iter().enumerate() {
        let Some(&(want_step, want)) = reference.get(i) else {
            bail!("{}: more steps than the reference", path.display());
        };
        if step != want_step || (loss - want).abs() > TOLERANCE {
            bail!(
                "{}: line {} is step {step} loss {loss}, the reference's is step {want_step} loss {want}",
                path.display(),
                i + 1
            );
        }
    }
    Ok(losses.len())
}

/// Kills `train clip` `kills` times; returns the report and the reference's final model.
pub fn stress(work: &Path, kills: usize, seed: u64) -> Result<(TargetReport, PathBuf)> {
    let began = Instant::now();
    let setup = Setup::new(work)?;
    let Reference {
        dir: reference_dir,
        losses,
        took: window,
    } = Reference::train(&setup)?;
    let mut report = TargetReport::new("train");
    let mut rng = SplitMix64::stream(seed, 1);
    let mut attempt = 0;
    let mut run_dir = work.join("run-0");
    while report.kills < kills {
        let saved = complete_checkpoints(&run_dir.join("checkpoint"));
        let resume = !saved.is_empty();
        report.count(if resume { "resumed" } else { "started_over" }, 1);
        let mut run = Run::start(
            &setup.command(&run_dir, resume),
            &work.join(format!("attempt-{attempt}")),
        )?;
        attempt += 1;
        match run.kill_at(moment(&mut rng, window))? {
            Ending::Killed => {
                report.kills += 1;
                check_losses(&run_dir, &losses)?;
                report.checks += 1;
            }
            Ending::Exited(status) if status.success() => {
                finished(&run_dir, &losses)?;
                report.checks += 1;
                report.finished += 1;
                run_dir = work.join(format!("run-{}", report.finished));
            }
            Ending::Exited(status) => bail!(
                "`xtask {}` failed ({status}): {}",
                setup.command(&run_dir, resume).join(" "),
                tail(&run.stderr())
            ),
        }
    }
    // The loop ends on a kill; the run killed last still finishes, even when the kill came
    // before it wrote anything (then it starts over).
    let resume = !complete_checkpoints(&run_dir.join("checkpoint")).is_empty();
    run_to_end(&setup.command(&run_dir, resume), &work.join("last"))?;
    finished(&run_dir, &losses)?;
    report.checks += 1;
    report.finished += 1;
    report.seconds = began.elapsed().as_secs_f64();
    Ok((report, reference_dir.join("final")))
}

/// A finished run logged every step with the reference's loss and saved its final model.
fn finished(run_dir: &Path, losses: &[(usize, f64)]) -> Result<()> {
    let logged = check_losses(run_dir, losses)?;
    if logged != STEPS {
        bail!(
            "{} finished with {logged} of {STEPS} steps logged",
            run_dir.display()
        );
    }
    let model = run_dir.join("final/model.mpk");
    if !model.is_file() {
        bail!("{} finished without {}", run_dir.display(), model.display());
    }
    Ok(())
}
