//! `cargo xtask train audio-classifier`: a spectrogram CNN (or audio transformer) trained on
//! the sonic-pi-samples sound groups, reporting held-out accuracy beside the majority class.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use mm_audio::classifier::{
    AudioClassifierConfig, ClassifierError, ClassifierReport, ClipSet, EncoderKind, load_clips,
    train_classifier,
};
use mm_audio::datasets::read_manifest;
use mm_core::{BackendJob, dispatch};

use crate::common::DeviceArg;
use crate::common::datasets_dir;

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
    /// Encoder.
    #[arg(long, value_enum, default_value = "cnn")]
    encoder: Encoder,
    /// Optimizer steps (1000: about 7 minutes on 2 CPU cores).
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

struct AudioJob {
    cfg: AudioClassifierConfig,
    classes: Vec<String>,
    train: ClipSet,
    test: ClipSet,
}

impl BackendJob for AudioJob {
    type Output = Result<ClassifierReport, ClassifierError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let bar = ProgressBar::new(self.cfg.steps as u64).with_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} loss {msg} [{elapsed} < {eta}]")
                .expect("valid template"),
        );
        let report = train_classifier::<B>(
            &self.cfg,
            &self.classes,
            &self.train,
            &self.test,
            &device,
            |_, loss| {
                bar.set_message(format!("{loss:.3}"));
                bar.inc(1);
            },
        );
        bar.finish();
        report
    }
}

/// Runs `train audio-classifier`.
pub fn run(args: AudioTrainArgs) -> Result<()> {
    let manifest = args
        .data
        .unwrap_or_else(|| datasets_dir().join("sounds/sounds.jsonl"));
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
    let cfg = AudioClassifierConfig::new()
        .with_encoder(match args.encoder {
            Encoder::Cnn => EncoderKind::Cnn,
            Encoder::Transformer => EncoderKind::Transformer,
        })
        .with_steps(args.steps)
        .with_seed(args.seed);
    eprintln!(
        "decoding and featurizing {} + {} clips...",
        train.len(),
        test.len()
    );
    let train = load_clips(&train, &classes, &cfg).context("training clips")?;
    let test = load_clips(&test, &classes, &cfg).context("test clips")?;
    let device = args.device.device;
    let report = dispatch(
        device,
        AudioJob {
            cfg,
            classes,
            train,
            test,
        },
    )??;
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
    if let Some(out) = args.out {
        mm_core::checkpoint::atomic_write(&out, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
