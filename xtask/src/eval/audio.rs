//! `cargo xtask eval audio-classifier --checkpoint DIR`: held-out accuracy of a trained sound
//! classifier beside the majority class.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_audio::classifier_train::{ClassifierReport, evaluate_classifier, load_classifier};
use mm_core::BackendJob;
use mm_core::train::read_losses;

use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::train::{load_sound_data, print_report};

/// Flags of `eval audio-classifier`.
#[derive(Args)]
pub struct AudioEvalArgs {
    /// A trained model folder (a run's `final/`).
    #[arg(long, default_value = "runs/audio-classifier/final")]
    checkpoint: PathBuf,
    /// An audio manifest; defaults to datasets/sounds/sounds.jsonl.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

struct EvalJob {
    args: AudioEvalArgs,
}

impl BackendJob for EvalJob {
    type Output = Result<ClassifierReport>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let (model, folder) = load_classifier::<B::InnerBackend>(&self.args.checkpoint, &device)?;
        let (classes, train, test) = load_sound_data(self.args.data.clone(), &folder.config)?;
        anyhow::ensure!(
            classes == folder.classes,
            "the data's classes {:?} are not the model's {:?}",
            classes,
            folder.classes
        );
        let (test_accuracy, majority_baseline) = evaluate_classifier(
            &model,
            &folder.config,
            classes.len(),
            &train,
            &test,
            &device,
        )?;
        // The training loss, when the model sits in its run folder.
        let losses: Vec<f64> = self
            .args
            .checkpoint
            .parent()
            .and_then(|run| read_losses(&run.join("metrics.jsonl")).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let k = losses.len().min(20);
        Ok(ClassifierReport {
            classes,
            n_train: train.features.len(),
            n_test: test.features.len(),
            test_accuracy,
            majority_baseline,
            loss_first_last: (mean(&losses[..k]), mean(&losses[losses.len() - k..])),
        })
    }
}

/// Runs `eval audio-classifier`.
pub fn run(args: AudioEvalArgs) -> Result<()> {
    let device = args.device.device;
    let out = args.out.clone();
    let report = dispatch(device, EvalJob { args })??;
    print_report(&report, out.as_deref())
}
