//! Teacher-forced captioner training through the house loop: each step draws images (each
//! source equally often, so the small stamp set is not drowned), one of each image's
//! references at random, shifts the images by a few pixels, and minimizes the cross-entropy
//! of every next token (`[CLS] words [SEP]`, padding ignored). The final model is written as
//! an HF `VisionEncoderDecoderModel` folder with its tokenizer and image processor.

use std::path::Path;
use std::sync::Arc;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::AdamWConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use mm_core::train::{
    BatchSource, RunOptions, StepInfo, StepOutput, TrainError, WarmupCosine, fit,
};
use mm_data::rng::SplitMix64;
use mm_text::WordPieceTokenizer;
use mm_vision::ViTConfig;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::data::CaptionSet;
use super::decoder::BertDecoderConfig;
use super::hf::export_hf_captioner;
use super::model::{Captioner, CaptionerConfig};

/// Everything a captioning run is made of (`final/mm_train_config.json` holds it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionTrainConfig {
    /// The model; the decoder's vocabulary and the special tokens are set from the tokenizer.
    pub model: CaptionerConfig,
    /// Images per step.
    pub batch: usize,
    /// Steps.
    pub steps: usize,
    /// Peak AdamW learning rate.
    pub lr: f64,
    /// Warm-up steps before the cosine decay.
    pub warmup: usize,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Largest random shift of a training image, in pixels.
    pub max_shift: u32,
    /// Seed of weights and batches.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
}

impl Default for CaptionTrainConfig {
    fn default() -> Self {
        let encoder = ViTConfig {
            image_size: 64,
            patch_size: 8,
            num_channels: 3,
            hidden_size: 128,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            intermediate_size: 512,
            hidden_act: mm_core::nn::Activation::Gelu,
            layer_norm_eps: 1e-12,
            qkv_bias: true,
            initializer_range: 0.02,
        };
        let decoder = BertDecoderConfig {
            vocab_size: 0,
            hidden_size: 128,
            num_hidden_layers: 3,
            num_attention_heads: 4,
            intermediate_size: 512,
            max_position_embeddings: 24,
            type_vocab_size: 2,
            hidden_act: mm_core::nn::Activation::Gelu,
            layer_norm_eps: 1e-12,
            initializer_range: 0.02,
        };
        Self {
            model: CaptionerConfig {
                encoder,
                decoder,
                decoder_start_token_id: 0,
                eos_token_id: 0,
                pad_token_id: 0,
            },
            batch: 48,
            steps: 5000,
            lr: 5e-4,
            warmup: 200,
            weight_decay: 0.05,
            max_shift: 3,
            seed: 20,
            checkpoint_every: 1000,
            keep_checkpoints: 2,
        }
    }
}

/// A training batch: pixels, the caption tokens in (`[CLS] w1 .. wn`) and the tokens out
/// (`w1 .. wn [SEP]`), padded.
#[derive(Debug, Clone)]
pub struct CaptionBatch<B: Backend> {
    /// `[rows, 3, size, size]`.
    pub pixels: Tensor<B, 4>,
    /// `[rows, tokens]`.
    pub inputs: Tensor<B, 2, Int>,
    /// `[rows, tokens]`, padding where nothing is predicted.
    pub targets: Tensor<B, 2, Int>,
    /// Where in the step this share is.
    pub at: StepInfo,
}

/// Draws [`CaptionBatch`]es from a [`CaptionSet`].
pub struct CaptionBatches {
    set: Arc<CaptionSet>,
    /// `[CLS] .. [SEP] [PAD]..` ids of every reference of every image.
    tokens: Vec<Vec<Vec<u32>>>,
    by_source: Vec<Vec<usize>>,
    batch: usize,
    seed: u64,
    max_shift: u32,
}

impl CaptionBatches {
    /// Tokenizes every reference to `max_tokens` (longer ones are cut, keeping `[SEP]`).
    pub fn new(
        set: Arc<CaptionSet>,
        tokenizer: &WordPieceTokenizer,
        max_tokens: usize,
        batch: usize,
        seed: u64,
        max_shift: u32,
    ) -> Result<Self, TrainError> {
        let mut tokens = Vec::with_capacity(set.len());
        for refs in &set.captions {
            let mut row = Vec::new();
            for r in refs {
                let (ids, _) = tokenizer
                    .encode(r, max_tokens)
                    .map_err(|e| TrainError::Settings(format!("caption {r:?}: {e}")))?;
                row.push(ids);
            }
            tokens.push(row);
        }
        let by_source = set
            .by_source()
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        Ok(Self {
            tokens,
            by_source,
            set,
            batch,
            seed,
            max_shift,
        })
    }
}

impl<B: Backend> BatchSource<B> for CaptionBatches {
    type Batch = CaptionBatch<B>;

    fn batch_size(&self) -> usize {
        self.batch
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> CaptionBatch<B> {
        let mut rng = SplitMix64::stream(self.seed, at.step as u64);
        let mut below = |n: usize| (rng.next_u64() % n as u64) as usize;
        let mut picks = Vec::with_capacity(self.batch);
        let mut shifts = Vec::with_capacity(self.batch);
        let m = self.max_shift as usize;
        for _ in 0..self.batch {
            let source = &self.by_source[below(self.by_source.len())];
            let image = source[below(source.len())];
            let caption = below(self.tokens[image].len());
            let dx = below(2 * m + 1) as i64 - m as i64;
            let dy = below(2 * m + 1) as i64 - m as i64;
            picks.push((image, caption));
            shifts.push((dx, dy));
        }
        let rows = at.share.rows(self.batch);
        let picks = &picks[rows.clone()];
        let images: Vec<usize> = picks.iter().map(|p| p.0).collect();
        let pixels = self.set.pixels(&images, &shifts[rows]).to_tensor(device);
        let width = self.tokens[0][0].len() - 1;
        let mut inputs = Vec::with_capacity(picks.len() * width);
        let mut targets = Vec::with_capacity(picks.len() * width);
        for &(i, c) in picks {
            let ids = &self.tokens[i][c];
            inputs.extend(ids[..width].iter().map(|&x| x as i64));
            targets.extend(ids[1..].iter().map(|&x| x as i64));
        }
        let n = picks.len();
        CaptionBatch {
            pixels,
            inputs: Tensor::from_data(TensorData::new(inputs, [n, width]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n, width]), device),
            at,
        }
    }
}

/// The mean next-token cross-entropy of a batch (padding ignored) and its token accuracy.
pub fn caption_loss<B: Backend>(
    model: &Captioner<B>,
    batch: &CaptionBatch<B>,
    pad: u32,
) -> (Tensor<B, 1>, StepOutput) {
    let logits = model.forward(batch.pixels.clone(), batch.inputs.clone());
    let [n, t, v] = logits.dims();
    let logits = logits.reshape([n * t, v]);
    let targets = batch.targets.clone().reshape([n * t]);
    let loss = CrossEntropyLossConfig::new()
        .with_pad_tokens(Some(vec![pad as usize]))
        .init(&logits.device())
        .forward(logits.clone(), targets.clone());
    let real = targets.clone().not_equal_elem(pad as i64);
    let hits: i64 = logits
        .argmax(1)
        .reshape([n * t])
        .equal(targets)
        .bool_and(real.clone())
        .int()
        .sum()
        .into_scalar()
        .elem();
    let total: i64 = real.int().sum().into_scalar().elem();
    let value: f64 = loss.clone().into_scalar().elem();
    let out = batch
        .at
        .output(value)
        .with("token_accuracy", hits as f64 / total.max(1) as f64);
    (loss, out)
}

/// A captioner being trained, with the padding id its loss ignores.
#[derive(burn::module::Module, Debug)]
pub struct CaptionTraining<B: Backend> {
    /// The model.
    pub model: Captioner<B>,
    #[module(skip)]
    pad: u32,
}

impl<B: AutodiffBackend> TrainStep for CaptionTraining<B> {
    type Input = CaptionBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: CaptionBatch<B>) -> TrainOutput<StepOutput> {
        let (loss, out) = caption_loss(&self.model, &batch, self.pad);
        TrainOutput::new(self, (loss * batch.at.weight()).backward(), out)
    }
}

impl<B: Backend> InferenceStep for CaptionTraining<B> {
    type Input = CaptionBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: CaptionBatch<B>) -> StepOutput {
        caption_loss(&self.model, &batch, self.pad).1
    }
}

/// The training references' vocabulary as a tokenizer (BERT's specials, then every word).
pub fn caption_tokenizer(set: &CaptionSet) -> Result<WordPieceTokenizer, TrainError> {
    let texts: Vec<&String> = set.captions.iter().flatten().collect();
    WordPieceTokenizer::from_words(&texts).map_err(|e| TrainError::Settings(e.to_string()))
}

/// Trains on `train`, writing the run folder and `final/` (an HF folder: config.json,
/// model.safetensors, vocab.txt, generation_config.json, preprocessor_config.json,
/// mm_train_config.json); returns the model and its config.
pub fn train_captioner<B: AutodiffBackend>(
    config: &CaptionTrainConfig,
    train: CaptionSet,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<
    (
        Captioner<B::InnerBackend>,
        CaptionerConfig,
        WordPieceTokenizer,
    ),
    TrainError,
> {
    let main = devices
        .first()
        .ok_or_else(|| TrainError::Settings("no device to train on".into()))?;
    if config.batch == 0 {
        return Err(TrainError::Settings("batch must be at least 1".into()));
    }
    let size = config.model.encoder.image_size as u32;
    if train.processor.output_size() != (size, size) {
        return Err(TrainError::Settings(format!(
            "the set holds {:?} images; the model takes {size}x{size}",
            train.processor.output_size()
        )));
    }
    let tokenizer = caption_tokenizer(&train)?;
    let mut config = config.clone();
    config.model.decoder.vocab_size = tokenizer.vocab_size();
    config.model.decoder_start_token_id = tokenizer.cls;
    config.model.eos_token_id = tokenizer.sep;
    config.model.pad_token_id = tokenizer.pad;
    <B as Backend>::seed(main, config.seed);
    let model = CaptionTraining {
        model: config
            .model
            .init::<B>(main)
            .map_err(|e| TrainError::Settings(e.to_string()))?,
        pad: tokenizer.pad,
    };
    let optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init::<B, CaptionTraining<B>>();
    let mut json = serde_json::to_value(&config).expect("configs serialize");
    json["vocabulary"] = json!(
        (0..tokenizer.vocab_size() as u32)
            .map(|i| tokenizer.token(i).unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    );
    let spec = run.spec(
        config.steps,
        config.checkpoint_every,
        config.keep_checkpoints,
    );
    let processor = train.processor.clone();
    let source = CaptionBatches::new(
        Arc::new(train),
        &tokenizer,
        config.model.decoder.max_position_embeddings,
        config.batch,
        config.seed,
        config.max_shift,
    )?;
    let schedule = WarmupCosine::new(config.lr, config.warmup, config.steps);
    let trained = fit(&spec, &json, model, optim, schedule, source, devices)?;
    save_captioner(
        &trained.model,
        &config,
        &tokenizer,
        &processor,
        &run.run_dir.join("final"),
    )?;
    Ok((trained.model, config.model, tokenizer))
}

/// Writes `model` as an HF folder at `dest`, replacing it atomically.
pub fn save_captioner<B: Backend>(
    model: &Captioner<B>,
    config: &CaptionTrainConfig,
    tokenizer: &WordPieceTokenizer,
    processor: &mm_vision::ClipImageProcessor,
    dest: &Path,
) -> Result<(), TrainError> {
    let staging = dest.with_extension("export");
    let _ = std::fs::remove_dir_all(&staging);
    export_hf_captioner(model, &config.model, tokenizer, &staging)
        .map_err(|e| TrainError::Settings(e.to_string()))?;
    let size = config.model.encoder.image_size;
    let pre = json!({
        "image_processor_type": "ViTImageProcessor",
        "do_resize": processor.do_resize, "size": {"height": size, "width": size},
        "resample": processor.resample.pillow_code(), "do_rescale": processor.do_rescale,
        "rescale_factor": processor.rescale_factor, "do_normalize": processor.do_normalize,
        "image_mean": processor.image_mean, "image_std": processor.image_std,
    });
    let extra = vec![
        (
            "preprocessor_config.json".to_string(),
            serde_json::to_vec_pretty(&pre).expect("JSON values serialize"),
        ),
        (
            "mm_train_config.json".to_string(),
            serde_json::to_vec_pretty(config).expect("configs serialize"),
        ),
    ];
    mm_data::fs::publish_staged_folder(&staging, dest, extra)
        .map_err(|(path, source)| TrainError::Io { path, source })
}
