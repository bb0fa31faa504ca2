//! Teacher-forced captioner training through the house loop: each step draws a batch
//! ([`super::batches`]: images of each source as often as its weight says, one reference
//! each, shifted and optionally colour-jittered) and minimizes the cross-entropy of every next
//! token (`[CLS] words [SEP]`, padding ignored; with `word_dropout` set, some of the words fed
//! in are masked). With `ema_decay` set, a moving average of
//! the weights is kept beside them and replaces them when teacher forcing ends. With
//! `scst.steps` set, the self-critical phase ([`super::scst`]) follows in `run/scst/`. The
//! final model is written as an HF `VisionEncoderDecoderModel` folder with its tokenizer and
//! image processor.

use std::path::Path;
use std::sync::Arc;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use mm_core::train::AdamWConfig;
use mm_core::train::{
    EmaModule, RunOptions, StepOutput, TrainError, WarmupCosine, WithEma, fit, lerp_weights,
};
use mm_text::WordPieceTokenizer;
use serde_json::json;

pub use super::batches::{CaptionBatch, CaptionBatches, SourceDraw};
use super::data::CaptionSet;
use super::hf::export_hf_captioner;
use super::model::{Captioner, CaptionerConfig};
use super::scst::self_critical;
use super::select::{PenaltyChoice, choose_length_penalty};
pub use super::train_config::CaptionTrainConfig;

/// The mean next-token cross-entropy of a batch (padding ignored; `label_smoothing` in
/// `[0, 1)`, 0 for none) and its token accuracy.
pub fn caption_loss<B: Backend>(
    model: &Captioner<B>,
    batch: &CaptionBatch<B>,
    pad: u32,
    label_smoothing: f32,
) -> (Tensor<B, 1>, StepOutput) {
    let logits = model.forward(batch.pixels.clone(), batch.inputs.clone());
    let [n, t, v] = logits.dims();
    let logits = logits.reshape([n * t, v]);
    let targets = batch.targets.clone().reshape([n * t]);
    let loss = CrossEntropyLossConfig::new()
        .with_pad_tokens(Some(vec![pad as usize]))
        .with_smoothing((label_smoothing > 0.0).then_some(label_smoothing))
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

/// A captioner being trained, with the padding id its loss ignores and, when `ema_decay` is
/// set, the moving average of its weights.
#[derive(burn::module::Module, Debug)]
pub struct CaptionTraining<B: Backend> {
    /// The model.
    pub model: Captioner<B>,
    /// The weights' moving average: same structure, own parameter ids, no gradients.
    pub ema: Option<Captioner<B>>,
    #[module(skip)]
    pad: u32,
    #[module(skip)]
    label_smoothing: f32,
}

impl<B: AutodiffBackend> TrainStep for CaptionTraining<B> {
    type Input = CaptionBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: CaptionBatch<B>) -> TrainOutput<StepOutput> {
        let (loss, out) = caption_loss(&self.model, &batch, self.pad, self.label_smoothing);
        TrainOutput::new(self, (loss * batch.at.weight()).backward(), out)
    }
}

impl<B: AutodiffBackend> EmaModule<B> for CaptionTraining<B> {
    fn update_ema(self, decay: f64) -> Self {
        let ema = self.ema.map(|ema| lerp_weights(ema, &self.model, decay));
        Self { ema, ..self }
    }
}

impl<B: Backend> InferenceStep for CaptionTraining<B> {
    type Input = CaptionBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: CaptionBatch<B>) -> StepOutput {
        caption_loss(&self.model, &batch, self.pad, self.label_smoothing).1
    }
}

/// The training references' vocabulary as a tokenizer (BERT's specials, then every word).
pub fn caption_tokenizer(set: &CaptionSet) -> Result<WordPieceTokenizer, TrainError> {
    let texts: Vec<&String> = set.captions.iter().flatten().collect();
    WordPieceTokenizer::from_words(&texts).map_err(|e| TrainError::Settings(e.to_string()))
}

/// Trains on `train` less a validation split (`validation_fraction`), writing the run folder
/// and `final/` (an HF folder: config.json, model.safetensors, vocab.txt,
/// generation_config.json with the `length_penalty` the validation images chose,
/// preprocessor_config.json, mm_train_config.json, mm_length_penalty.json).
pub fn train_captioner<B: AutodiffBackend>(
    config: &CaptionTrainConfig,
    train: CaptionSet,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<TrainedCaptioner<B::InnerBackend>, TrainError> {
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
    if !(0.0..1.0).contains(&config.validation_fraction) {
        return Err(TrainError::Settings(format!(
            "validation_fraction must be in [0, 1), not {}",
            config.validation_fraction
        )));
    }
    if !(0.0..1.0).contains(&config.label_smoothing) {
        return Err(TrainError::Settings(format!(
            "label_smoothing must be in [0, 1), not {}",
            config.label_smoothing
        )));
    }
    if !(0.0..1.0).contains(&config.word_dropout) {
        return Err(TrainError::Settings(format!(
            "word_dropout must be in [0, 1), not {}",
            config.word_dropout
        )));
    }
    config.augment.validate().map_err(TrainError::Settings)?;
    if let Some(bad) = config.length_penalties.iter().find(|x| !x.is_finite()) {
        return Err(TrainError::Settings(format!(
            "length_penalties must be finite numbers, not {bad}"
        )));
    }
    let (train, validation) = if config.validation_fraction > 0.0 {
        train.split_validation(
            config.validation_fraction,
            config.validation_max_per_source,
            config.seed,
        )
    } else {
        let empty = train.subset(&[]);
        (train, empty)
    };
    let tokenizer = caption_tokenizer(&train)?;
    let mut config = config.clone();
    config.model.decoder.vocab_size = tokenizer.vocab_size();
    config.model.decoder_start_token_id = tokenizer.cls;
    config.model.eos_token_id = tokenizer.sep;
    config.model.pad_token_id = tokenizer.pad;
    if !(0.0..1.0).contains(&config.ema_decay) {
        return Err(TrainError::Settings(format!(
            "ema_decay must be in [0, 1), not {}",
            config.ema_decay
        )));
    }
    <B as Backend>::seed(main, config.seed);
    let weights = config
        .model
        .init::<B>(main)
        .map_err(|e| TrainError::Settings(e.to_string()))?;
    // The average starts as a copy with parameter ids of its own.
    let ema = if config.ema_decay > 0.0 {
        let fresh = config
            .model
            .init::<B>(main)
            .map_err(|e| TrainError::Settings(e.to_string()))?;
        Some(lerp_weights(fresh, &weights, 0.0))
    } else {
        None
    };
    let model = CaptionTraining {
        model: weights,
        ema,
        pad: tokenizer.pad,
        label_smoothing: config.label_smoothing,
    };
    let optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init::<B, CaptionTraining<B>>();
    config.scst.validate().map_err(TrainError::Settings)?;
    let mut json = serde_json::to_value(&config).expect("configs serialize");
    // The teacher-forced phase's folder records its own settings, so a finished run can be
    // resumed with a self-critical phase added or changed.
    let scst_json = json
        .as_object_mut()
        .and_then(|o| o.remove("scst"))
        .unwrap_or_default();
    for (key, unset) in [
        ("ema_decay", config.ema_decay == 0.0),
        ("word_dropout", config.word_dropout == 0.0),
    ] {
        if unset {
            json.as_object_mut().map(|o| o.remove(key));
        }
    }
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
    let train = Arc::new(train);
    let source = CaptionBatches::new(
        train.clone(),
        &tokenizer,
        config.model.decoder.max_position_embeddings,
        &config,
    )?;
    let schedule = WarmupCosine::new(config.lr, config.warmup, config.steps);
    let trained = if config.ema_decay > 0.0 {
        let optim = WithEma::new(optim, config.ema_decay);
        fit(&spec, &json, model, optim, schedule, source, devices)?
    } else {
        fit(&spec, &json, model, optim, schedule, source, devices)?
    };
    // With an average, it is the model from here on.
    let mut trained = CaptionTraining {
        model: trained.ema.unwrap_or(trained.model),
        ema: None,
        pad: trained.pad,
        label_smoothing: trained.label_smoothing,
    };
    if config.scst.steps > 0 {
        let settings = json!({"teacher_forced": json, "scst": scst_json});
        let draw = SourceDraw::new(&train, &config.source_weights)?;
        trained.model = self_critical::<B>(
            &config.scst,
            trained.model,
            train,
            draw,
            &tokenizer,
            (
                config.model.decoder.max_position_embeddings - 1,
                config.max_shift,
                config.seed,
            ),
            &settings,
            run,
            devices,
        )?;
    }
    let choice = if validation.is_empty() || config.length_penalties.is_empty() {
        None
    } else {
        let mut base = config.model.generation();
        base.max_new_tokens = config.model.decoder.max_position_embeddings - 1;
        let choice = choose_length_penalty(
            &trained.model,
            &tokenizer,
            &validation,
            &base,
            &config.length_penalties,
            main,
        )
        .map_err(|e| TrainError::Settings(format!("choosing the length penalty: {e}")))?;
        Some(choice)
    };
    save_captioner(
        &trained.model,
        &config,
        &tokenizer,
        &processor,
        choice.as_ref(),
        &run.run_dir.join("final"),
    )?;
    Ok(TrainedCaptioner {
        model: trained.model,
        config: config.model,
        tokenizer,
        length_penalty: choice,
    })
}

/// What [`train_captioner`] returns.
pub struct TrainedCaptioner<B: Backend> {
    /// The trained model.
    pub model: Captioner<B>,
    /// Its config (vocabulary size and special tokens set).
    pub config: CaptionerConfig,
    /// The training captions' tokenizer.
    pub tokenizer: WordPieceTokenizer,
    /// The validation sweep that chose beam search's `length_penalty` (`None` without
    /// validation images).
    pub length_penalty: Option<PenaltyChoice>,
}

/// Writes `model` as an HF folder at `dest`, replacing it atomically.
pub fn save_captioner<B: Backend>(
    model: &Captioner<B>,
    config: &CaptionTrainConfig,
    tokenizer: &WordPieceTokenizer,
    processor: &mm_vision::ClipImageProcessor,
    choice: Option<&PenaltyChoice>,
    dest: &Path,
) -> Result<(), TrainError> {
    let staging = dest.with_extension("export");
    let _ = std::fs::remove_dir_all(&staging);
    export_hf_captioner(model, &config.model, tokenizer, &staging)
        .map_err(|e| TrainError::Settings(e.to_string()))?;
    let mut extra = Vec::new();
    if let Some(choice) = choice {
        let path = staging.join("generation_config.json");
        let io = |source| TrainError::Io {
            path: path.clone(),
            source,
        };
        let mut generation: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).map_err(io)?)
                .map_err(|e| TrainError::Settings(format!("{}: {e}", path.display())))?;
        generation["length_penalty"] = json!(choice.chosen);
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&generation).expect("JSON values serialize"),
        )
        .map_err(io)?;
        extra.push((
            "mm_length_penalty.json".to_string(),
            serde_json::to_vec_pretty(choice).expect("reports serialize"),
        ));
    }
    let size = config.model.encoder.image_size;
    let pre = json!({
        "image_processor_type": "ViTImageProcessor",
        "do_resize": processor.do_resize, "size": {"height": size, "width": size},
        "resample": processor.resample.pillow_code(), "do_rescale": processor.do_rescale,
        "rescale_factor": processor.rescale_factor, "do_normalize": processor.do_normalize,
        "image_mean": processor.image_mean, "image_std": processor.image_std,
    });
    extra.extend([
        (
            "preprocessor_config.json".to_string(),
            serde_json::to_vec_pretty(&pre).expect("JSON values serialize"),
        ),
        (
            "mm_train_config.json".to_string(),
            serde_json::to_vec_pretty(config).expect("configs serialize"),
        ),
    ]);
    mm_data::fs::publish_staged_folder(&staging, dest, extra)
        .map_err(|(path, source)| TrainError::Io { path, source })
}
