//! Training the VQA model through the house loop: random (image, question) pairs each step,
//! cross-entropy against the answer distribution of the references (one-hot for a single
//! answer, VQA-style soft targets for several).

use std::sync::Arc;

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use mm_core::train::AdamWConfig;
use mm_core::train::{
    BatchSource, RunOptions, StepInfo, StepOutput, TrainError, WarmupCosine, fit, save_model_dir,
};
use mm_data::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use super::data::{VqaItem, VqaSet};
use super::eval::AnswerModel;
use super::model::{VqaConfig, VqaModel};

/// Everything a VQA run is made of (`final/config.json` holds it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VqaTrainConfig {
    /// The model (its `answers` are set from the training answers).
    pub model: VqaConfig,
    /// Most answers kept in the vocabulary (the most frequent).
    pub max_answers: usize,
    /// Questions per step.
    pub batch: usize,
    /// Steps.
    pub steps: usize,
    /// Peak AdamW learning rate.
    pub lr: f64,
    /// Warm-up steps before the cosine decay.
    pub warmup: usize,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Seed of weights and batches.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
}

impl Default for VqaTrainConfig {
    fn default() -> Self {
        VqaTrainConfig {
            model: VqaConfig::small(64, Vec::new()),
            max_answers: 1000,
            batch: 64,
            steps: 6000,
            lr: 5e-4,
            warmup: 200,
            weight_decay: 0.05,
            seed: 19,
            checkpoint_every: 1000,
            keep_checkpoints: 2,
        }
    }
}

/// A batch of questions on the device.
#[derive(Debug, Clone)]
pub struct VqaBatch<B: Backend> {
    /// `[rows, 3, size, size]`.
    pub pixels: Tensor<B, 4>,
    /// `[rows, context]`.
    pub ids: Tensor<B, 2, Int>,
    /// `[rows]`.
    pub eot: Tensor<B, 1, Int>,
    /// Target answer distribution, `[rows, answers]`.
    pub targets: Tensor<B, 2>,
    /// Where in the step this share is.
    pub at: StepInfo,
}

/// Pixels `[n, 3, size, size]`, token ids `[n, context]`, last positions `[n]` and answer
/// targets `[n, answers]` of a batch.
pub type BatchTensors<B> = (
    Tensor<B, 4>,
    Tensor<B, 2, Int>,
    Tensor<B, 1, Int>,
    Tensor<B, 2>,
);

/// Pixels, tokens and targets of `items` as tensors (`blank`: every pixel at the mean colour,
/// i.e. zero after normalization).
pub fn batch_tensors<B: Backend>(
    set: &VqaSet,
    items: &[&VqaItem],
    answers: &[String],
    blank: bool,
    device: &B::Device,
) -> BatchTensors<B> {
    let n = items.len();
    let (s, t, a) = (set.size, set.context_length, answers.len());
    let mut pixels = Vec::with_capacity(n * 3 * s * s);
    let mut ids = Vec::with_capacity(n * t);
    let mut eot = Vec::with_capacity(n);
    let mut targets = vec![0f32; n * a];
    for (row, item) in items.iter().enumerate() {
        if blank {
            pixels.extend(std::iter::repeat_n(0.0, 3 * s * s));
        } else {
            pixels.extend_from_slice(&set.images[item.image]);
        }
        ids.extend(item.tokens.iter().map(|&x| x as i64));
        eot.push(item.eot as i64);
        let known: Vec<usize> = item
            .answers
            .iter()
            .filter_map(|x| answers.iter().position(|y| y == x))
            .collect();
        for &k in &known {
            targets[row * a + k] += 1.0 / known.len() as f32;
        }
    }
    (
        Tensor::from_data(TensorData::new(pixels, [n, 3, s, s]), device),
        Tensor::from_data(TensorData::new(ids, [n, t]), device),
        Tensor::from_data(TensorData::new(eot, [n]), device),
        Tensor::from_data(TensorData::new(targets, [n, a]), device),
    )
}

/// Draws each step's questions at random (seeded by the step) from the training set.
pub struct VqaBatches {
    set: Arc<VqaSet>,
    answers: Vec<String>,
    batch: usize,
    seed: u64,
}

impl VqaBatches {
    /// Batches of `batch` questions of `set`, targets over `answers`.
    pub fn new(set: VqaSet, answers: Vec<String>, batch: usize, seed: u64) -> Self {
        VqaBatches {
            set: Arc::new(set),
            answers,
            batch,
            seed,
        }
    }
}

impl<B: Backend> BatchSource<B> for VqaBatches {
    type Batch = VqaBatch<B>;

    fn batch_size(&self) -> usize {
        self.batch
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> VqaBatch<B> {
        let mut rng = SplitMix64::stream(self.seed, at.step as u64);
        let n = self.set.items.len() as u64;
        let picks: Vec<usize> = (0..self.batch)
            .map(|_| (rng.next_u64() % n) as usize)
            .collect();
        let items: Vec<&VqaItem> = picks[at.share.rows(self.batch)]
            .iter()
            .map(|&i| &self.set.items[i])
            .collect();
        let (pixels, ids, eot, targets) =
            batch_tensors(&self.set, &items, &self.answers, false, device);
        VqaBatch {
            pixels,
            ids,
            eot,
            targets,
            at,
        }
    }
}

/// The cross-entropy of a batch against its answer distributions, with the step's figures.
pub fn loss_and_output<B: Backend, M: AnswerModel<B>>(
    model: &M,
    batch: &VqaBatch<B>,
) -> (Tensor<B, 1>, StepOutput) {
    let logits = model.answer_logits(batch.pixels.clone(), batch.ids.clone(), batch.eot.clone());
    let [n, _] = logits.dims();
    let loss = (log_softmax(logits.clone(), 1) * batch.targets.clone())
        .sum_dim(1)
        .mean()
        .neg();
    let predicted = logits.argmax(1).into_data().convert::<i64>();
    let truth = batch.targets.clone().argmax(1).into_data().convert::<i64>();
    let correct = predicted
        .iter::<i64>()
        .zip(truth.iter::<i64>())
        .filter(|(p, t)| p == t)
        .count();
    let value = loss
        .clone()
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .unwrap_or_default()[0];
    let out = batch
        .at
        .output(value)
        .with("accuracy", correct as f64 / n.max(1) as f64);
    (loss, out)
}

impl<B: AutodiffBackend> TrainStep for VqaModel<B> {
    type Input = VqaBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: VqaBatch<B>) -> TrainOutput<StepOutput> {
        let (loss, out) = loss_and_output(self, &batch);
        TrainOutput::new(self, (loss * batch.at.weight()).backward(), out)
    }
}

impl<B: Backend> InferenceStep for VqaModel<B> {
    type Input = VqaBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: VqaBatch<B>) -> StepOutput {
        loss_and_output(self, &batch).1
    }
}

/// Trains on `train` on `devices`, writing the run folder and `final/` (whose `config.json`
/// is the [`VqaTrainConfig`] with the answer vocabulary filled in); returns the model and that
/// vocabulary.
pub fn train_vqa<B: AutodiffBackend>(
    config: &VqaTrainConfig,
    train: VqaSet,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<(VqaModel<B::InnerBackend>, Vec<String>), TrainError> {
    let main = devices
        .first()
        .ok_or_else(|| TrainError::Settings("no device to train on".into()))?;
    let mut config = config.clone();
    if config.batch == 0 || config.max_answers == 0 {
        return Err(TrainError::Settings(
            "batch and max_answers must be at least 1".into(),
        ));
    }
    if train.size != config.model.vision.image_size
        || train.context_length != config.model.text.max_position_embeddings
    {
        return Err(TrainError::Settings(format!(
            "the set holds {}-pixel images and {}-token questions; the model takes {} and {}",
            train.size,
            train.context_length,
            config.model.vision.image_size,
            config.model.text.max_position_embeddings
        )));
    }
    config.model.answers = super::data::answer_vocabulary(&train, config.max_answers);
    <B as Backend>::seed(main, config.seed);
    let model = config
        .model
        .init::<B>(main)
        .map_err(|e| TrainError::Settings(e.to_string()))?;
    let optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init::<B, VqaModel<B>>();
    let json = serde_json::to_value(&config).expect("configs serialize");
    let spec = run.spec(
        config.steps,
        config.checkpoint_every,
        config.keep_checkpoints,
    );
    let source = VqaBatches::new(
        train,
        config.model.answers.clone(),
        config.batch,
        config.seed,
    );
    let schedule = WarmupCosine::new(config.lr, config.warmup, config.steps);
    let model = fit(&spec, &json, model, optim, schedule, source, devices)?;
    save_model_dir(&run.run_dir.join("final"), &json, &model)?;
    Ok((model, config.model.answers))
}
