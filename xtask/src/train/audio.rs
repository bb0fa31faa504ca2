//! `cargo xtask train audio-classifier`: a spectrogram CNN (or audio transformer) trained on
//! the sonic-pi-samples sound groups through the house loop, reporting held-out accuracy
//! beside the majority class.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};
use mm_audio::classifier::{AudioClassifierConfig, ClipSet, EncoderKind, load_clips};
use mm_audio::classifier_train::{ClassifierReport, train_and_evaluate};
use mm_audio::datasets::read_manifest;
use mm_core::train::RunOptions;
use mm_core::{BackendJob, replicas};

use crate::backend::dispatch;
use crate::common::{DeviceArg, DevicesArg, RunFlags, datasets_dir};

#[derive(Clone, Copy, ValueEnum)]
enum Encoder {
    Cnn,
    Transformer,
}

/// Flags of `train audio-classifier`.
#[derive(Args)]
pub struct AudioTrainArgs {
    /// An audio manifest (.jsonl with audio, label, split); defaults to datasets/sounds/sounds.jsonl.
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    run: RunFlags,
    /// Encoder.
    #[arg(long, value_enum)]
    encoder: Option<Encoder>,
    /// Optimizer steps (default 1000: about 7 minutes on 2 CPU cores).
    #[arg(long)]
    steps: Option<usize>,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Folder for checkpoints, metrics and the final model.
    #[arg(long, default_value = "runs/audio-classifier")]
    run_dir: PathBuf,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    pub(super) devices: DevicesArg,
}

/// Reads a sound manifest and splits it: class names, training clips, held-out clips.
pub fn load_sound_data(
    manifest: Option<PathBuf>,
    cfg: &AudioClassifierConfig,
) -> Result<(Vec<String>, ClipSet, ClipSet)> {
    let manifest = manifest.unwrap_or_else(|| datasets_dir().join("sounds/sounds.jsonl"));
    if !manifest.exists() {
        bail!(
            "{} not found: run `cargo xtask data fetch sounds` first",
            manifest.display()
        );
    }
    let records = read_manifest(&manifest)?;
    let classes: Vec<String> = records
        .iter()
        .map(|(_, r)| r.label.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (train, test): (Vec<_>, Vec<_>) = records.into_iter().partition(|(_, r)| r.split != "test");
    eprintln!(
        "decoding and featurizing {} + {} clips...",
        train.len(),
        test.len()
    );
    let train = load_clips(&train, &classes, cfg).context("training clips")?;
    let test = load_clips(&test, &classes, cfg).context("test clips")?;
    Ok((classes, train, test))
}

struct AudioJob {
    cfg: AudioClassifierConfig,
    classes: Vec<String>,
    train: ClipSet,
    test: ClipSet,
    run: RunOptions,
    devices: usize,
}

impl BackendJob for AudioJob {
    type Output = Result<ClassifierReport>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let devices = replicas(&device, self.devices);
        Ok(train_and_evaluate::<B>(
            &self.cfg,
            &self.classes,
            &self.train,
            &self.test,
            &self.run,
            &devices,
        )?)
    }
}

fn settings(args: &AudioTrainArgs) -> Result<AudioClassifierConfig> {
    let mut cfg = args
        .run
        .settings(AudioClassifierConfig::new(), "an audio classifier")?;
    if let Some(e) = args.encoder {
        cfg.encoder = match e {
            Encoder::Cnn => EncoderKind::Cnn,
            Encoder::Transformer => EncoderKind::Transformer,
        };
    }
    if let Some(steps) = args.steps {
        cfg.steps = steps;
    }
    if let Some(seed) = args.seed {
        cfg.seed = seed;
    }
    Ok(cfg)
}

/// Prints a report and writes it to `out`.
pub fn print_report(report: &ClassifierReport, out: Option<&Path>) -> Result<()> {
    println!(
        "{} classes ({}), {} training clips, {} held-out clips",
        report.classes.len(),
        report.classes.join(", "),
        report.n_train,
        report.n_test
    );
    println!(
        "training loss: {:.3} -> {:.3}",
        report.loss_first_last.0, report.loss_first_last.1
    );
    println!(
        "held-out accuracy: {:.1}% (majority-class baseline {:.1}%)",
        100.0 * report.test_accuracy,
        100.0 * report.majority_baseline
    );
    if let Some(out) = out {
        mm_data::fs::atomic_write(out, serde_json::to_string_pretty(report)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

/// Runs `train audio-classifier`.
pub fn run(args: AudioTrainArgs) -> Result<()> {
    let cfg = settings(&args)?;
    let (classes, train, test) = load_sound_data(args.data.clone(), &cfg)?;
    let run = RunOptions {
        resume: args.run.resume,
        ..RunOptions::new(&args.run_dir)
    };
    let job = AudioJob {
        cfg,
        classes,
        train,
        test,
        run,
        devices: args.devices.devices as usize,
    };
    let report = dispatch(args.device.device, job)??;
    println!("final model: {}", args.run_dir.join("final").display());
    print_report(&report, args.out.as_deref())
}
