//! Training a sound classifier through the house loop (`mm_core::train::fit`, on burn-train)
//! and evaluating it on held-out clips against the majority-class baseline.
//!
//! Each step draws `batch` random crops (clip, start frame) from an RNG seeded by
//! `(seed, step)`, so a resumed run sees the batches of an uninterrupted one.

use std::path::Path;

use burn::optim::AdamConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use mm_core::train::{
    BatchSource, RunOptions, StepInfo, StepOutput, append_eval, fit, load_weights, read_losses,
    read_model_config, save_model_dir,
};
use mm_data::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::classifier::{AudioClassifier, AudioClassifierConfig, ClassifierError, ClipSet, crop};

/// One device's share of a step: crops `[rows, 1, n_mels, crop_frames]` and class indices.
#[derive(Debug, Clone)]
pub struct AudioBatch<B: Backend> {
    /// Log-mel crops.
    pub x: Tensor<B, 4>,
    /// Class index per crop.
    pub y: Tensor<B, 1, Int>,
    /// The step, this device's share of it, and the step's size.
    pub at: StepInfo,
}

/// Builds any step's crops from the step number.
pub struct AudioBatches {
    clips: ClipSet,
    cfg: AudioClassifierConfig,
}

impl AudioBatches {
    /// Crops of `clips` as `cfg` describes them.
    pub fn new(clips: &ClipSet, cfg: &AudioClassifierConfig) -> Self {
        Self {
            clips: clips.clone(),
            cfg: cfg.clone(),
        }
    }
}

impl<B: Backend> BatchSource<B> for AudioBatches {
    type Batch = AudioBatch<B>;

    fn batch_size(&self) -> usize {
        self.cfg.batch
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> AudioBatch<B> {
        let (step, share) = (at.step, at.share);
        let (rows, frames, n) = (self.cfg.n_mels, self.cfg.crop_frames, self.cfg.batch);
        let mut rng = SplitMix64::stream(self.cfg.seed, step as u64);
        let len = self.clips.features.len() as u64;
        let picks: Vec<(usize, usize)> = (0..n)
            .map(|_| {
                let i = (rng.next_u64() % len) as usize;
                let f = &self.clips.features[i];
                let start =
                    (rng.next_u64() % (f.frames.saturating_sub(frames) as u64 + 1)) as usize;
                (i, start)
            })
            .collect();
        let mine = &picks[share.rows(n)];
        let x: Vec<f32> = mine
            .iter()
            .flat_map(|&(i, start)| crop(&self.clips.features[i], start, frames))
            .collect();
        let y: Vec<i64> = mine
            .iter()
            .map(|&(i, _)| self.clips.labels[i] as i64)
            .collect();
        let m = mine.len();
        AudioBatch {
            x: Tensor::from_data(TensorData::new(x, [m, 1, rows, frames]), device),
            y: Tensor::from_data(TensorData::new(y, [m]), device),
            at,
        }
    }
}

fn loss_and_output<B: Backend>(
    model: &AudioClassifier<B>,
    batch: &AudioBatch<B>,
) -> (Tensor<B, 1>, StepOutput) {
    batch
        .at
        .classification(model.forward(batch.x.clone()), batch.y.clone())
}

impl<B: AutodiffBackend> TrainStep for AudioClassifier<B> {
    type Input = AudioBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: AudioBatch<B>) -> TrainOutput<StepOutput> {
        let (loss, out) = loss_and_output(self, &batch);
        // Each device's gradient is weighted by its share, so their sum is the batch's.
        TrainOutput::new(self, (loss * batch.at.weight()).backward(), out)
    }
}

impl<B: Backend> InferenceStep for AudioClassifier<B> {
    type Input = AudioBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: AudioBatch<B>) -> StepOutput {
        loss_and_output(self, &batch).1
    }
}

/// What `final/config.json` of a classifier run holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifierFolder {
    /// The run's settings.
    pub config: AudioClassifierConfig,
    /// Class names, in the order of the head's outputs.
    pub classes: Vec<String>,
}

/// Trains on `train` on `devices`, writing the run folder and `final/`; returns the model.
pub fn train_classifier<B: AutodiffBackend>(
    cfg: &AudioClassifierConfig,
    classes: &[String],
    train: &ClipSet,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<AudioClassifier<B::InnerBackend>, ClassifierError> {
    if train.features.is_empty() {
        return Err(ClassifierError::Invalid(
            "the training split has no clips".into(),
        ));
    }
    let main = devices
        .first()
        .ok_or_else(|| ClassifierError::Invalid("no device to train on".into()))?;
    <B as Backend>::seed(main, cfg.seed);
    let model = AudioClassifier::<B>::new(cfg, classes.len(), main)?;
    let optim = AdamConfig::new().init::<B, AudioClassifier<B>>();
    let folder = ClassifierFolder {
        config: cfg.clone(),
        classes: classes.to_vec(),
    };
    let json = serde_json::to_value(&folder).expect("configs serialize");
    let spec = run.spec(cfg.steps, cfg.checkpoint_every, cfg.keep_checkpoints);
    let source = AudioBatches::new(train, cfg);
    let model = fit(&spec, &json, model, optim, cfg.lr, source, devices)?;
    save_model_dir(&run.run_dir.join("final"), &json, &model)?;
    Ok(model)
}

/// Loads a classifier's model folder (a run's `final/`).
pub fn load_classifier<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(AudioClassifier<B>, ClassifierFolder), ClassifierError> {
    let folder: ClassifierFolder =
        serde_json::from_value(read_model_config(dir)?).map_err(|e| {
            ClassifierError::Invalid(format!(
                "{}: not an audio classifier folder: {e}",
                dir.join("config.json").display()
            ))
        })?;
    let model = AudioClassifier::new(&folder.config, folder.classes.len(), device)?;
    Ok((load_weights(dir, model, device)?, folder))
}

/// Held-out figures of a classifier.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifierReport {
    /// Class names.
    pub classes: Vec<String>,
    /// Training clips.
    pub n_train: usize,
    /// Held-out clips.
    pub n_test: usize,
    /// Held-out accuracy (logits averaged over each clip's crops).
    pub test_accuracy: f64,
    /// Accuracy of always answering the most frequent training class.
    pub majority_baseline: f64,
    /// Mean training loss over the first and the last 20 steps (from `metrics.jsonl`).
    pub loss_first_last: (f64, f64),
}

/// Held-out accuracy of `model` on `test` (logits averaged over each clip's consecutive crops)
/// and of always answering `train`'s most frequent class.
pub fn evaluate_classifier<B: Backend>(
    model: &AudioClassifier<B>,
    cfg: &AudioClassifierConfig,
    classes: usize,
    train: &ClipSet,
    test: &ClipSet,
    device: &B::Device,
) -> Result<(f64, f64), ClassifierError> {
    if test.features.is_empty() {
        return Err(ClassifierError::Invalid(
            "the test split has no clips".into(),
        ));
    }
    let (rows, frames) = (cfg.n_mels, cfg.crop_frames);
    let mut correct = 0;
    for (f, &label) in test.features.iter().zip(&test.labels) {
        let starts: Vec<usize> = (0..f.frames.saturating_sub(frames) + 1)
            .step_by(frames)
            .collect();
        let x: Vec<f32> = starts.iter().flat_map(|&s| crop(f, s, frames)).collect();
        let x =
            Tensor::<B, 4>::from_data(TensorData::new(x, [starts.len(), 1, rows, frames]), device);
        let logits = model.forward(x).mean_dim(0); // [1, classes]
        let predicted = logits.argmax(1).into_scalar().elem::<i64>() as usize;
        correct += (predicted == label) as usize;
    }
    let mut counts = vec![0usize; classes];
    train.labels.iter().for_each(|&l| counts[l] += 1);
    let majority = (0..classes).max_by_key(|&c| counts[c]).unwrap_or(0);
    let baseline =
        test.labels.iter().filter(|&&l| l == majority).count() as f64 / test.labels.len() as f64;
    Ok((correct as f64 / test.features.len() as f64, baseline))
}

/// Trains, evaluates on `test`, and appends the figures to the run's `metrics.jsonl`.
pub fn train_and_evaluate<B: AutodiffBackend>(
    cfg: &AudioClassifierConfig,
    classes: &[String],
    train: &ClipSet,
    test: &ClipSet,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<ClassifierReport, ClassifierError> {
    let model = train_classifier::<B>(cfg, classes, train, run, devices)?;
    let (test_accuracy, majority_baseline) =
        evaluate_classifier(&model, cfg, classes.len(), train, test, &devices[0])?;
    let metrics = run.run_dir.join("metrics.jsonl");
    let losses: Vec<f64> = read_losses(&metrics)
        .map_err(|source| mm_core::train::TrainError::Io {
            path: metrics.clone(),
            source,
        })?
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let k = losses.len().min(20);
    let report = ClassifierReport {
        classes: classes.to_vec(),
        n_train: train.features.len(),
        n_test: test.features.len(),
        test_accuracy,
        majority_baseline,
        loss_first_last: (mean(&losses[..k]), mean(&losses[losses.len() - k..])),
    };
    let figures = serde_json::json!({
        "test_accuracy": test_accuracy,
        "majority_baseline": majority_baseline,
        "n_test": report.n_test,
    });
    append_eval(&metrics, &figures).map_err(|source| mm_core::train::TrainError::Io {
        path: metrics.clone(),
        source,
    })?;
    Ok(report)
}
