//! Training a ViLT here: pre-training with ITM + MLM on captioned images, then fine-tuning for
//! VQA from the pre-trained weights, both through the house loop. Each phase's `final/` is an
//! HF ViLT folder (weights, config, `vocab.txt`, preprocessing) that transformers loads, with
//! `mm_train_config.json` beside it.

use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use mm_core::train::AdamWConfig;
use mm_core::train::{RunOptions, StepOutput, TrainError, WarmupCosine, fit};
use mm_text::WordPieceTokenizer;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::heads::{Heads, Vilt};
use super::hf::{export_hf_vilt, load_hf_vilt};
use super::model::ViltConfig;
use super::pretrain::{CaptionSet, PretrainBatch, PretrainBatches, PretrainSettings, Pretraining};
use crate::vqa::data::{VqaSet, answer_vocabulary};
use crate::vqa::eval::AnswerModel;
use crate::vqa::train::{VqaBatch, VqaBatches, loss_and_output};

/// ViLT's own image normalization (transformers `ViltImageProcessor`): mean and std 0.5.
pub const VILT_MEAN_STD: ([f32; 3], [f32; 3]) = ([0.5; 3], [0.5; 3]);

/// One phase's optimization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Steps.
    pub steps: usize,
    /// Peak AdamW learning rate.
    pub lr: f64,
    /// Warm-up steps before the cosine decay.
    pub warmup: usize,
    /// Rows per step (images in pre-training, questions in fine-tuning).
    pub batch: usize,
}

/// Everything a ViLT run is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViltTrainConfig {
    /// The transformer (`vocab_size` is set from the tokenizer).
    pub model: ViltConfig,
    /// Pre-training (ITM + MLM).
    pub pretrain: Phase,
    /// Probability of masking each caption token for MLM.
    pub mask_prob: f64,
    /// Weight of the MLM loss beside ITM.
    pub mlm_weight: f64,
    /// Fine-tuning for VQA.
    pub finetune: Phase,
    /// Most answers kept.
    pub max_answers: usize,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Seed of weights and batches.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
}

impl Default for ViltTrainConfig {
    fn default() -> Self {
        ViltTrainConfig {
            model: ViltConfig {
                vocab_size: 0,
                type_vocab_size: 2,
                modality_type_vocab_size: 2,
                max_position_embeddings: 16,
                hidden_size: 128,
                num_hidden_layers: 4,
                num_attention_heads: 4,
                intermediate_size: 256,
                hidden_act: mm_core::nn::Activation::Gelu,
                layer_norm_eps: 1e-12,
                image_size: 64,
                patch_size: 8,
                num_channels: 3,
                qkv_bias: true,
                initializer_range: 0.02,
            },
            pretrain: Phase {
                steps: 1500,
                lr: 5e-4,
                warmup: 100,
                batch: 32,
            },
            mask_prob: 0.3,
            mlm_weight: 1.0,
            finetune: Phase {
                steps: 4000,
                lr: 1e-3,
                warmup: 200,
                batch: 64,
            },
            max_answers: 1000,
            weight_decay: 0.01,
            seed: 23,
            checkpoint_every: 1000,
            keep_checkpoints: 2,
        }
    }
}

/// The masks `[batch, tokens]` (1 up to and including `last`, then 0) of padded questions.
pub fn mask_from_last<B: Backend>(
    ids: &Tensor<B, 2, Int>,
    last: Tensor<B, 1, Int>,
) -> Tensor<B, 2, Int> {
    let [b, t] = ids.dims();
    let positions = Tensor::<B, 1, Int>::arange(0..t as i64, &ids.device())
        .reshape([1, t])
        .expand([b, t]);
    positions
        .lower_equal(last.reshape([b, 1]).expand([b, t]))
        .int()
}

/// A ViLT with a question-answering head answers from its pooled output.
impl<B: Backend> AnswerModel<B> for Vilt<B> {
    fn answer_logits(
        &self,
        pixels: Tensor<B, 4>,
        ids: Tensor<B, 2, Int>,
        last: Tensor<B, 1, Int>,
    ) -> Tensor<B, 2> {
        let mask = mask_from_last(&ids, last);
        let out = self.vilt.forward(ids, mask, pixels);
        self.vqa_logits(&out)
            .expect("VQA folders are checked for their head when loaded")
    }
}

impl<B: AutodiffBackend> TrainStep for Pretraining<B> {
    type Input = PretrainBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: PretrainBatch<B>) -> TrainOutput<StepOutput> {
        let (loss, out) = self
            .loss(&batch)
            .expect("batches are sized for the model before training");
        TrainOutput::new(self, (loss * batch.at.weight()).backward(), out)
    }
}

impl<B: Backend> InferenceStep for Pretraining<B> {
    type Input = PretrainBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: PretrainBatch<B>) -> StepOutput {
        self.loss(&batch)
            .expect("batches are sized for the model before training")
            .1
    }
}

/// The ViLT being fine-tuned for VQA.
#[derive(Module, Debug)]
pub struct Finetuning<B: Backend> {
    /// The model, with its question-answering head.
    pub vilt: Vilt<B>,
}

impl<B: AutodiffBackend> TrainStep for Finetuning<B> {
    type Input = VqaBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: VqaBatch<B>) -> TrainOutput<StepOutput> {
        let (loss, out) = loss_and_output(&self.vilt, &batch);
        TrainOutput::new(self, (loss * batch.at.weight()).backward(), out)
    }
}

impl<B: Backend> InferenceStep for Finetuning<B> {
    type Input = VqaBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: VqaBatch<B>) -> StepOutput {
        loss_and_output(&self.vilt, &batch).1
    }
}

/// Writes `model` as an HF ViLT folder at `dest`, atomically: weights and config, the
/// tokenizer's `vocab.txt`, ViLT preprocessing at the model's size, and the run's settings.
pub fn save_vilt_folder<B: Backend>(
    model: &Vilt<B>,
    config: &ViltConfig,
    answers: &[String],
    tokenizer: &WordPieceTokenizer,
    train_config: &ViltTrainConfig,
    dest: &Path,
) -> Result<(), TrainError> {
    let staging = dest.with_extension("export");
    let _ = std::fs::remove_dir_all(&staging);
    export_hf_vilt(model, config, answers, &staging)
        .map_err(|e| TrainError::Settings(e.to_string()))?;
    tokenizer
        .save(&staging, config.max_position_embeddings)
        .map_err(|e| TrainError::Settings(e.to_string()))?;
    let (mean, std) = VILT_MEAN_STD;
    let pre = json!({
        "image_processor_type": "ViltImageProcessor", "processor_class": "ViltProcessor",
        "do_resize": true, "size": {"shortest_edge": config.image_size},
        "size_divisor": config.patch_size, "resample": 3, "do_rescale": true,
        "rescale_factor": 1.0 / 255.0, "do_normalize": true,
        "image_mean": mean, "image_std": std, "do_pad": true,
    });
    let extra = vec![
        (
            "preprocessor_config.json".to_string(),
            serde_json::to_vec_pretty(&pre).expect("JSON values serialize"),
        ),
        (
            "mm_train_config.json".to_string(),
            serde_json::to_vec_pretty(train_config).expect("configs serialize"),
        ),
    ];
    mm_data::fs::publish_staged_folder(&staging, dest, extra)
        .map_err(|(path, source)| TrainError::Io { path, source })
}

fn settings(e: impl std::fmt::Display) -> TrainError {
    TrainError::Settings(e.to_string())
}

/// Pre-trains a ViLT with ITM and MLM heads on `captions`; writes `run/final/`.
pub fn pretrain_vilt<B: AutodiffBackend>(
    config: &ViltTrainConfig,
    captions: CaptionSet,
    tokenizer: &WordPieceTokenizer,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<Vilt<B::InnerBackend>, TrainError> {
    let main = devices
        .first()
        .ok_or_else(|| settings("no device to train on"))?;
    let mut config = config.clone();
    config.model.vocab_size = tokenizer.vocab_size();
    if captions.size != config.model.image_size
        || captions.max_text > config.model.max_position_embeddings
    {
        return Err(settings(format!(
            "the captions hold {}-pixel images and {}-token texts; the model takes {} and at most {}",
            captions.size,
            captions.max_text,
            config.model.image_size,
            config.model.max_position_embeddings
        )));
    }
    if config.pretrain.batch == 0 || !(0.0..=1.0).contains(&config.mask_prob) {
        return Err(settings(
            "pretrain.batch must be at least 1 and mask_prob in [0, 1]",
        ));
    }
    <B as Backend>::seed(main, config.seed);
    let heads = Heads {
        itm: true,
        mlm: true,
        answers: None,
    };
    let model = Pretraining {
        vilt: config
            .model
            .init_with_heads::<B>(heads, main)
            .map_err(settings)?,
        mlm_weight: config.mlm_weight,
    };
    let optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init::<B, Pretraining<B>>();
    let json = serde_json::to_value(&config).expect("configs serialize");
    let p = &config.pretrain;
    let spec = run.spec(p.steps, config.checkpoint_every, config.keep_checkpoints);
    let source = PretrainBatches {
        set: std::sync::Arc::new(captions),
        settings: PretrainSettings {
            batch: p.batch,
            mask_prob: config.mask_prob,
        },
        mask_id: tokenizer.mask,
        vocab: tokenizer.vocab_size(),
        seed: config.seed,
    };
    let schedule = WarmupCosine::new(p.lr, p.warmup, p.steps);
    let trained = fit(&spec, &json, model, optim, schedule, source, devices)?.vilt;
    save_vilt_folder(
        &trained,
        &config.model,
        &[],
        tokenizer,
        &config,
        &run.run_dir.join("final"),
    )?;
    Ok(trained)
}

/// Fine-tunes the pre-trained ViLT folder `pretrained` for VQA on `train`; writes
/// `run/final/` and returns the model with its answers.
pub fn finetune_vilt<B: AutodiffBackend>(
    config: &ViltTrainConfig,
    pretrained: &Path,
    train: VqaSet,
    tokenizer: &WordPieceTokenizer,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<(Vilt<B::InnerBackend>, Vec<String>), TrainError> {
    let main = devices
        .first()
        .ok_or_else(|| settings("no device to train on"))?;
    let loaded = load_hf_vilt::<B>(pretrained, main).map_err(settings)?;
    if train.size != loaded.config.image_size
        || train.context_length > loaded.config.max_position_embeddings
    {
        return Err(settings(
            "the questions do not fit the pre-trained model's sizes",
        ));
    }
    let f = &config.finetune;
    if f.batch == 0 || config.max_answers == 0 {
        return Err(settings(
            "finetune.batch and max_answers must be at least 1",
        ));
    }
    let answers = answer_vocabulary(&train, config.max_answers);
    <B as Backend>::seed(main, config.seed + 1);
    let model = Finetuning {
        vilt: loaded.model.with_answer_head(answers.len(), main),
    };
    let optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init::<B, Finetuning<B>>();
    let mut json = serde_json::to_value(config).expect("configs serialize");
    json["answers"] = json!(answers);
    let spec = run.spec(f.steps, config.checkpoint_every, config.keep_checkpoints);
    let source = VqaBatches::new(train, answers.clone(), f.batch, config.seed + 1);
    let schedule = WarmupCosine::new(f.lr, f.warmup, f.steps);
    let trained = fit(&spec, &json, model, optim, schedule, source, devices)?.vilt;
    save_vilt_folder(
        &trained,
        &loaded.config,
        &answers,
        tokenizer,
        config,
        &run.run_dir.join("final"),
    )?;
    Ok((trained, answers))
}
