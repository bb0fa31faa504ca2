//! Self-critical sequence training (Rennie et al., 2017, "Self-critical Sequence Training for
//! Image Captioning"): after teacher-forced training, the captioner is tuned on the metric it
//! is judged by. Each step samples several captions of each image, scores each with CIDEr-D
//! against the image's references (document frequencies of the training references), and
//! raises the log-probability of the captions that beat the others of their image: the loss
//! is `-(reward - baseline) * log p(caption)`, where the baseline is the mean reward of the
//! image's other samples (the form of Luo, 2020, "A Better Variant of Self-Critical Sequence
//! Training"). Teacher forcing makes the model sure of the words of its references without
//! teaching it which whole caption scores best; this phase does, which is what lets beam
//! search, which looks for the most probable caption, find a good one.

use std::sync::Arc;

use burn::module::AutodiffModule;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use mm_core::train::{
    AdamWConfig, BatchSource, RunOptions, StepInfo, StepOutput, TrainError, WarmupCosine,
    complete_checkpoints, fit,
};
use mm_data::rng::SplitMix64;
use mm_text::WordPieceTokenizer;
use serde::{Deserialize, Serialize};

use super::batches::SourceDraw;
use super::data::CaptionSet;
use super::eval::reference_words;
use super::model::Captioner;
use super::sample::{Pick, repeat_rows, sample_captions};
use crate::metrics::{CiderD, caption_words};

/// The self-critical phase's settings (`scst` in the run's settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScstConfig {
    /// Steps of the phase (0: no self-critical phase).
    pub steps: usize,
    /// Images per step.
    pub batch: usize,
    /// Captions sampled per image (at least 2: each is judged against the others).
    pub samples: usize,
    /// Sampling temperature.
    pub temperature: f32,
    /// Peak AdamW learning rate.
    pub lr: f64,
    /// Warm-up steps before the cosine decay.
    pub warmup: usize,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
}

impl Default for ScstConfig {
    fn default() -> Self {
        Self {
            steps: 0,
            batch: 16,
            samples: 5,
            temperature: 1.0,
            lr: 5e-5,
            warmup: 20,
            checkpoint_every: 250,
        }
    }
}

impl ScstConfig {
    /// A clear error for settings the phase cannot run with.
    pub fn validate(&self) -> Result<(), String> {
        if self.steps == 0 {
            return Ok(());
        }
        if self.batch == 0 {
            return Err("scst.batch must be at least 1".into());
        }
        if self.samples < 2 {
            return Err(format!(
                "scst.samples must be at least 2 (each sample's baseline is the others' mean), not {}",
                self.samples
            ));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!(
                "scst.temperature must be a positive number, not {}",
                self.temperature
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!(
                "scst.lr must be a positive number, not {}",
                self.lr
            ));
        }
        Ok(())
    }
}

/// Scores sampled captions: CIDEr-D against each training image's references.
#[derive(Debug)]
pub struct Rewards {
    scorer: CiderD,
    references: Vec<Vec<Vec<String>>>,
    tokenizer: WordPieceTokenizer,
}

impl Rewards {
    /// Rewards against the references of `set`, with `set`'s document frequencies.
    pub fn new(set: &CaptionSet, tokenizer: WordPieceTokenizer) -> Self {
        let references = reference_words(set);
        Self {
            scorer: CiderD::new(&references),
            references,
            tokenizer,
        }
    }

    /// CIDEr-D of `tokens` (a decoded caption) as a caption of image `image`.
    pub fn reward(&self, image: usize, tokens: &[u32]) -> f64 {
        let text = self.tokenizer.decode(tokens).unwrap_or_default();
        self.scorer
            .score(&caption_words(&text), &self.references[image])
    }
}

/// One step's images (this device's share) and what scores their captions.
#[derive(Debug, Clone)]
pub struct ScstBatch<B: Backend> {
    /// `[rows, 3, size, size]`.
    pub pixels: Tensor<B, 4>,
    /// The training image of each row.
    pub images: Vec<usize>,
    /// Seed of this share's sampling.
    pub seed: u64,
    /// Where in the run this share is.
    pub at: StepInfo,
    /// The reward.
    pub rewards: Arc<Rewards>,
}

/// Draws [`ScstBatch`]es: each source as often as its weight says (as teacher forcing
/// draws), images shifted by a few pixels.
pub struct ScstBatches {
    set: Arc<CaptionSet>,
    draw: SourceDraw,
    rewards: Arc<Rewards>,
    batch: usize,
    seed: u64,
    max_shift: u32,
}

impl ScstBatches {
    /// Batches of `batch` images of `set`, its sources drawn by `draw`.
    pub fn new(
        set: Arc<CaptionSet>,
        draw: SourceDraw,
        rewards: Arc<Rewards>,
        batch: usize,
        seed: u64,
        max_shift: u32,
    ) -> Self {
        Self {
            set,
            draw,
            rewards,
            batch,
            seed,
            max_shift,
        }
    }
}

impl<B: Backend> BatchSource<B> for ScstBatches {
    type Batch = ScstBatch<B>;

    fn batch_size(&self) -> usize {
        self.batch
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> ScstBatch<B> {
        let mut rng = SplitMix64::stream(self.seed, at.step as u64);
        let mut below = |n: usize| (rng.next_u64() % n as u64) as usize;
        let m = self.max_shift as usize;
        let mut images = Vec::with_capacity(self.batch);
        let mut shifts = Vec::with_capacity(self.batch);
        for _ in 0..self.batch {
            let source = self.draw.pick(&mut below);
            images.push(source[below(source.len())]);
            let dx = below(2 * m + 1) as i64 - m as i64;
            let dy = below(2 * m + 1) as i64 - m as i64;
            shifts.push((dx, dy));
        }
        let rows = at.share.rows(self.batch);
        let images = images[rows.clone()].to_vec();
        ScstBatch {
            pixels: self.set.pixels(&images, &shifts[rows]).to_tensor(device),
            images,
            seed: SplitMix64::stream(self.seed ^ 0x5C57, at.step as u64).next_u64()
                ^ at.share.index as u64,
            at,
            rewards: self.rewards.clone(),
        }
    }
}

/// A captioner in its self-critical phase.
#[derive(burn::module::Module, Debug)]
pub struct ScstTraining<B: Backend> {
    /// The model.
    pub model: Captioner<B>,
    #[module(skip)]
    samples: usize,
    #[module(skip)]
    temperature: f32,
    #[module(skip)]
    max_new_tokens: usize,
    #[module(skip)]
    specials: (u32, u32),
}

impl<B: Backend> ScstTraining<B> {
    /// `model` sampling `config.samples` captions per image of at most `max_new_tokens`
    /// tokens between `specials` (start token, end token).
    pub fn new(
        model: Captioner<B>,
        config: &ScstConfig,
        max_new_tokens: usize,
        specials: (u32, u32),
    ) -> Self {
        Self {
            model,
            samples: config.samples,
            temperature: config.temperature,
            max_new_tokens,
            specials,
        }
    }
}

/// The self-critical loss of a batch, with the captions sampled by `sampler` (the same weights
/// as `model`, without autodiff) from `sampler_pixels`. Reports the mean reward of the samples
/// (`reward`) and of each image's best sample (`best_reward`).
fn scst_loss<B: Backend, S: Backend>(
    model: &Captioner<B>,
    sampler: &Captioner<S>,
    sampler_pixels: Tensor<S, 4>,
    batch: &ScstBatch<B>,
    settings: &ScstTraining<B>,
) -> (Tensor<B, 1>, StepOutput) {
    let k = settings.samples;
    let (start, eos) = settings.specials;
    let mut rng = SplitMix64::new(batch.seed);
    let captions = sample_captions(
        sampler,
        sampler_pixels,
        k,
        settings.max_new_tokens,
        Pick::Sample(settings.temperature),
        settings.specials,
        &mut rng,
    )
    .expect("the batch's pixels fit the model");
    let rewards: Vec<f64> = captions
        .iter()
        .enumerate()
        .map(|(r, c)| batch.rewards.reward(batch.images[r / k], c))
        .collect();
    let mut advantages = Vec::with_capacity(rewards.len());
    let mut best = 0.0;
    for group in rewards.chunks(k) {
        let total: f64 = group.iter().sum();
        best += group.iter().copied().fold(f64::MIN, f64::max);
        advantages.extend(
            group
                .iter()
                .map(|r| (r - (total - r) / (k - 1) as f64) as f32),
        );
    }
    let device = batch.pixels.device();
    let rows = captions.len();
    let width = captions.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let mut inputs = Vec::with_capacity(rows * width);
    let mut targets = Vec::with_capacity(rows * width);
    let mut mask = Vec::with_capacity(rows * width);
    for c in &captions {
        for t in 0..width {
            inputs.push(if t == 0 {
                start
            } else {
                *c.get(t - 1).unwrap_or(&eos)
            } as i64);
            targets.push(*c.get(t).unwrap_or(&eos) as i64);
            mask.push(if t < c.len() { 1.0f32 } else { 0.0 });
        }
    }
    let inputs = Tensor::<B, 2, Int>::from_data(TensorData::new(inputs, [rows, width]), &device);
    let targets =
        Tensor::<B, 3, Int>::from_data(TensorData::new(targets, [rows, width, 1]), &device);
    let mask = Tensor::<B, 2>::from_data(TensorData::new(mask, [rows, width]), &device);
    let advantages = Tensor::<B, 1>::from_data(TensorData::new(advantages, [rows]), &device);
    let memory = repeat_rows(model.encode(batch.pixels.clone()), k);
    let cross = model.decoder.cross_key_values(memory);
    let logits = model.decoder.forward(inputs, &cross);
    let picked = log_softmax(logits, 2)
        .gather(2, targets)
        .reshape([rows, width]);
    let log_p = (picked * mask).sum_dim(1).reshape([rows]);
    let loss = (log_p * advantages).mean().neg();
    let n = rewards.len().max(1) as f64;
    let out = batch
        .at
        .output(loss.clone().into_scalar().elem())
        .with("reward", rewards.iter().sum::<f64>() / n)
        .with("best_reward", best * k as f64 / n);
    (loss, out)
}

impl<B: AutodiffBackend> TrainStep for ScstTraining<B> {
    type Input = ScstBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: ScstBatch<B>) -> TrainOutput<StepOutput> {
        let sampler = self.model.valid();
        let pixels = batch.pixels.clone().inner();
        let (loss, out) = scst_loss(&self.model, &sampler, pixels, &batch, self);
        TrainOutput::new(self, (loss * batch.at.weight()).backward(), out)
    }
}

impl<B: Backend> InferenceStep for ScstTraining<B> {
    type Input = ScstBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: ScstBatch<B>) -> StepOutput {
        scst_loss(&self.model, &self.model, batch.pixels.clone(), &batch, self).1
    }
}

/// Runs the self-critical phase on `model` (teacher-forced already) over the training images
/// `set`, in `run.run_dir/scst` (its own checkpoints, `metrics.jsonl` and `loss.png`; with
/// `run.resume` it continues from its newest checkpoint when it has one, else starts).
/// `settings` is the whole run's configuration, recorded in that folder's `config.json`;
/// `draw` says how often each source is drawn (the teacher-forced phase's `source_weights`).
#[allow(clippy::too_many_arguments)]
pub fn self_critical<B: AutodiffBackend>(
    config: &ScstConfig,
    model: Captioner<B::InnerBackend>,
    set: Arc<CaptionSet>,
    draw: SourceDraw,
    tokenizer: &WordPieceTokenizer,
    (max_new_tokens, max_shift, seed): (usize, u32, u64),
    settings: &serde_json::Value,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<Captioner<B::InnerBackend>, TrainError> {
    config.validate().map_err(TrainError::Settings)?;
    let run_dir = run.run_dir.join("scst");
    let resume = run.resume && !complete_checkpoints(&run_dir.join("checkpoint")).is_empty();
    let phase = RunOptions {
        run_dir,
        resume,
        log_every: run.log_every,
    };
    let specials = (tokenizer.cls, tokenizer.sep);
    let training = ScstTraining::new(
        Captioner::<B>::from_inner(model),
        config,
        max_new_tokens,
        specials,
    );
    let optim = AdamWConfig::new().init::<B, ScstTraining<B>>();
    let rewards = Arc::new(Rewards::new(&set, tokenizer.clone()));
    let source = ScstBatches::new(set, draw, rewards, config.batch, seed ^ 0x5C57, max_shift);
    let spec = phase.spec(config.steps, config.checkpoint_every, 2);
    let schedule = WarmupCosine::new(config.lr, config.warmup, config.steps);
    let trained = fit(&spec, settings, training, optim, schedule, source, devices)?;
    Ok(trained.model)
}
