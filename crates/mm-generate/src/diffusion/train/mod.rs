//! Training a pixel-space text-to-image UNet through the house loop: a frozen CLIP text tower
//! conditions it, captions are dropped (replaced by the empty prompt) for a fraction of the
//! images so that one model learns both the conditional and the unconditional prediction
//! that classifier-free guidance mixes, an EMA of the weights is kept for sampling, and the
//! result is saved as a diffusers pipeline folder ([`TextToImage::save`]).

mod data;

use std::path::Path;
use std::sync::Arc;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::tensor::ElementConversion;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use mm_core::train::AdamWConfig;
use mm_core::train::{
    EmaModule, RunOptions, StepOutput, TrainError, WarmupCosine, WithEma, fit, lerp_weights,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use data::{DiffusionBatch, DiffusionBatches, PromptStates, without_prompts};

use super::TextToImage;
use super::config::{SchedulerConfig, SchedulerKind};
use super::schedule::NoiseSchedule;
use super::text::TextConditioner;
use super::unet::{UNet2DConditionConfig, UNet2DConditionModel};
use crate::caption::CaptionSet;

/// Everything a diffusion run is made of (`final/mm_train_config.json` holds it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffusionTrainConfig {
    /// The UNet; `cross_attention_dim` is set from the text tower.
    pub unet: UNet2DConditionConfig,
    /// The noise schedule and the prediction target (the saved pipeline samples with DDIM on
    /// the same schedule by default).
    pub scheduler: SchedulerConfig,
    /// Image side in pixels.
    pub image_size: usize,
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
    /// Gradient norm clip.
    pub grad_clip_norm: f32,
    /// Fraction of images trained with the empty prompt (classifier-free guidance).
    pub cond_dropout: f64,
    /// Long-run EMA decay.
    pub ema_decay: f64,
    /// Prompts whose images are left out of training (scored apart by the evaluation).
    pub held_out: Vec<String>,
    /// Seed of weights, batches and noise.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
    /// Min-SNR-gamma loss weighting (Hang et al. 2023; diffusers' training scripts take
    /// `--snr_gamma`, 5.0 recommended). Default 5: on the shapes it took prompt-following at
    /// guidance 1 from 56% to 89% in the same 3,000 steps (docs/generation.md). `null`: every
    /// timestep weighs the same, which is also how a config written before the setting
    /// existed reads.
    #[serde(default)]
    pub snr_gamma: Option<f64>,
}

impl Default for DiffusionTrainConfig {
    fn default() -> Self {
        let unet = json!({
            "sample_size": 32,
            "in_channels": 3,
            "out_channels": 3,
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            "block_out_channels": [16, 32, 64],
            "layers_per_block": 1,
            "norm_num_groups": 8,
            "cross_attention_dim": 128,
            "attention_head_dim": 4,
        });
        let mut scheduler = SchedulerConfig::defaults(SchedulerKind::Ddpm);
        scheduler.timestep_spacing = super::config::TimestepSpacing::Trailing;
        // v rather than the noise: at large t, recovering the image from predicted noise
        // divides by sqrt(alpha_t) (about 0.006 at t = 999), and the epsilon runs sampled
        // grainy or saturated images (docs/generation.md, "Measured again").
        scheduler.prediction_type = super::config::PredictionType::VPrediction;
        Self {
            unet: UNet2DConditionConfig::from_json(&unet).expect("the default UNet is valid"),
            scheduler,
            image_size: 32,
            batch: 32,
            steps: 3000,
            lr: 1e-3,
            warmup: 200,
            weight_decay: 0.0,
            grad_clip_norm: 1.0,
            cond_dropout: 0.1,
            ema_decay: 0.995,
            held_out: vec!["a blue triangle".into()],
            seed: 21,
            checkpoint_every: 500,
            keep_checkpoints: 2,
            snr_gamma: Some(5.0),
        }
    }
}

/// The UNet being trained and its EMA (which the saved pipeline uses).
#[derive(Module, Debug)]
pub struct DiffusionTraining<B: Backend> {
    /// The trained weights.
    pub unet: UNet2DConditionModel<B>,
    /// Their moving average: same structure, own parameter ids, no gradients.
    pub ema: UNet2DConditionModel<B>,
}

impl<B: Backend> DiffusionTraining<B> {
    /// A fresh model from `config`, the average starting as a copy.
    pub fn new(config: &UNet2DConditionConfig, device: &B::Device) -> Self {
        let unet = config.init::<B>(device);
        let ema = lerp_weights(config.init::<B>(device), &unet, 0.0);
        Self { unet, ema }
    }
}

impl<B: AutodiffBackend> EmaModule<B> for DiffusionTraining<B> {
    fn update_ema(self, decay: f64) -> Self {
        let ema = lerp_weights(self.ema, &self.unet, decay);
        Self {
            unet: self.unet,
            ema,
        }
    }
}

/// The mean squared error between the UNet's prediction and the batch's target.
pub fn diffusion_loss<B: Backend>(
    unet: &UNet2DConditionModel<B>,
    batch: &DiffusionBatch<B>,
) -> (Tensor<B, 1>, StepOutput) {
    let prediction = unet.forward(
        batch.noisy.clone(),
        batch.timesteps.clone(),
        batch.context.clone(),
    );
    let loss = weighted_mse(prediction, batch.target.clone(), batch.weights.as_ref());
    let value: f64 = loss.clone().into_scalar().elem();
    (loss, batch.at.output(value))
}

/// Mean squared error over everything (`weights` `None`), or each row's mean squared error
/// times its weight, averaged over the rows.
pub fn weighted_mse<B: Backend>(
    prediction: Tensor<B, 4>,
    target: Tensor<B, 4>,
    weights: Option<&Tensor<B, 1>>,
) -> Tensor<B, 1> {
    let squared = (prediction - target).powi_scalar(2);
    match weights {
        None => squared.mean(),
        Some(weights) => {
            let rows = squared.dims()[0];
            let per_row: Tensor<B, 2> = squared.reshape([rows as i32, -1]).mean_dim(1);
            (per_row.flatten::<1>(0, 1) * weights.clone()).mean()
        }
    }
}

impl<B: AutodiffBackend> TrainStep for DiffusionTraining<B> {
    type Input = DiffusionBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: DiffusionBatch<B>) -> TrainOutput<StepOutput> {
        let (loss, out) = diffusion_loss(&self.unet, &batch);
        TrainOutput::new(self, (loss * batch.at.weight()).backward(), out)
    }
}

impl<B: Backend> InferenceStep for DiffusionTraining<B> {
    type Input = DiffusionBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: DiffusionBatch<B>) -> StepOutput {
        diffusion_loss(&self.ema, &batch).1
    }
}

/// Trains on the captioned images of `train` (pixels in [-1, 1] at `image_size`), conditioned
/// on `text`'s token states, writing the run folder and `final/` (a diffusers pipeline folder
/// with the EMA weights, sampling with DDIM on the training schedule). Returns the pipeline.
pub fn train_diffusion<B: AutodiffBackend>(
    config: &DiffusionTrainConfig,
    train: CaptionSet,
    text: TextConditioner<B::InnerBackend>,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<TextToImage<B::InnerBackend>, TrainError> {
    let main = devices
        .first()
        .ok_or_else(|| TrainError::Settings("no device to train on".into()))?;
    let settings = |m: String| TrainError::Settings(m);
    if config.batch == 0 {
        return Err(settings("batch must be at least 1".into()));
    }
    if let Some(gamma) = config.snr_gamma
        && !(gamma.is_finite() && gamma > 0.0)
    {
        return Err(settings(format!(
            "snr_gamma must be a positive number, not {gamma}"
        )));
    }
    let size = config.image_size as u32;
    if train.processor.output_size() != (size, size) {
        return Err(settings(format!(
            "the set holds {:?} images; the model takes {size}x{size}",
            train.processor.output_size()
        )));
    }
    let mut config = config.clone();
    config.unet.cross_attention_dim = text.config.hidden_size;
    config.unet.sample_size = Some(config.image_size);
    config.unet.validate().map_err(settings)?;
    if config.unet.in_channels != 3 || config.unet.out_channels != 3 {
        return Err(settings(
            "a pixel-space UNet takes and gives 3 channels".into(),
        ));
    }
    if !config
        .image_size
        .is_multiple_of(1 << (config.unet.block_out_channels.len() - 1))
    {
        return Err(settings(format!(
            "image_size {} is not divisible by the UNet's {} halvings",
            config.image_size,
            config.unet.block_out_channels.len() - 1
        )));
    }
    let train = without_prompts(train, &config.held_out);
    if train.is_empty() {
        return Err(settings(
            "no training image is left after the held-out prompts".into(),
        ));
    }
    let (prompts, prompt_of) = PromptStates::encode(&train, &text)?;
    <B as Backend>::seed(main, config.seed);
    let model = DiffusionTraining::<B>::new(&config.unet, main);
    let adam = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(config.grad_clip_norm)))
        .init::<B, DiffusionTraining<B>>();
    let optim = WithEma::new(adam, config.ema_decay);
    let json = serde_json::to_value(&config).expect("configs serialize");
    let spec = run.spec(
        config.steps,
        config.checkpoint_every,
        config.keep_checkpoints,
    );
    let source = DiffusionBatches::new(
        Arc::new(train),
        Arc::new(prompts),
        prompt_of,
        NoiseSchedule::new(&config.scheduler),
        config.scheduler.prediction_type,
        config.batch,
        config.cond_dropout,
        config.seed,
    )
    .with_snr_gamma(config.snr_gamma);
    let schedule = WarmupCosine::new(config.lr, config.warmup, config.steps);
    let trained = fit(&spec, &json, model, optim, schedule, source, devices)?;
    let mut sampler = config.scheduler.clone();
    sampler.class_name = SchedulerKind::Ddim;
    let pipeline = TextToImage {
        unet: trained.ema,
        unet_config: config.unet.clone(),
        vae: None,
        text,
        scheduler: sampler,
    };
    save_pipeline(&pipeline, &config, &run.run_dir.join("final"))?;
    Ok(pipeline)
}

/// Writes `pipeline` (with `config` as `mm_train_config.json`) at `dest`: written whole
/// beside it first, then renamed into place, so a crash leaves the previous folder or the new
/// one, never a mix.
pub fn save_pipeline<B: Backend>(
    pipeline: &TextToImage<B>,
    config: &DiffusionTrainConfig,
    dest: &Path,
) -> Result<(), TrainError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Io { path, source }
    };
    let staging = dest.with_extension("export");
    let _ = std::fs::remove_dir_all(&staging);
    pipeline
        .save(&staging)
        .map_err(|e| TrainError::Settings(format!("saving the pipeline: {e}")))?;
    let config_path = staging.join("mm_train_config.json");
    let bytes = serde_json::to_vec_pretty(config).expect("configs serialize");
    mm_data::fs::atomic_write(&config_path, &bytes).map_err(io(&config_path))?;
    let old = dest.with_extension("old");
    let _ = std::fs::remove_dir_all(&old);
    if dest.exists() {
        std::fs::rename(dest, &old).map_err(io(dest))?;
    }
    std::fs::rename(&staging, dest).map_err(io(dest))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::{Tensor, TensorData};

    use super::weighted_mse;

    #[test]
    fn row_weights_scale_each_rows_error() {
        let device = Default::default();
        // Row 0 misses every value by 1, row 1 by 3.
        let prediction = Tensor::<Flex, 4>::zeros([2, 1, 2, 2], &device);
        let target = Tensor::<Flex, 4>::from_data(
            TensorData::new(
                vec![1.0f32, 1.0, -1.0, 1.0, 3.0, -3.0, 3.0, 3.0],
                [2, 1, 2, 2],
            ),
            &device,
        );
        let loss = |w: Option<[f32; 2]>| -> f32 {
            let w =
                w.map(|w| Tensor::<Flex, 1>::from_data(TensorData::new(w.to_vec(), [2]), &device));
            weighted_mse(prediction.clone(), target.clone(), w.as_ref()).into_scalar()
        };
        assert_eq!(loss(None), 5.0);
        assert_eq!(loss(Some([1.0, 1.0])), 5.0);
        assert_eq!(loss(Some([1.0, 0.0])), 0.5);
        assert_eq!(loss(Some([0.0, 2.0])), 9.0);
    }
}
