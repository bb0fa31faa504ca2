//! Text to image: the sampling loop with classifier-free guidance, in pixel space or through
//! the VAE's latents (diffusers `pipeline_stable_diffusion.py`, `StableDiffusionPipeline.__call__`).

use std::path::Path;

use burn::tensor::{Tensor, backend::Backend};
use serde_json::json;

use super::folder::FolderError;
use super::scheduler::Scheduler;
use super::text::TextConditioner;
use super::unet::{UNet2DConditionConfig, UNet2DConditionModel, load_unet, save_unet};
use super::vae::{AutoencoderKL, AutoencoderKLConfig, load_vae, save_vae};
use super::{SchedulerConfig, SchedulerError, SchedulerKind, Thresholding};

/// The models of a text-to-image pipeline.
#[derive(Debug, Clone)]
pub struct TextToImage<B: Backend> {
    /// The noise predictor.
    pub unet: UNet2DConditionModel<B>,
    /// Its settings.
    pub unet_config: UNet2DConditionConfig,
    /// The autoencoder and its settings (`scaling_factor`, `shift_factor`); none for a
    /// pixel-space model.
    pub vae: Option<(AutoencoderKL<B>, AutoencoderKLConfig)>,
    /// The text side.
    pub text: TextConditioner<B>,
    /// The scheduler settings (`scheduler/scheduler_config.json`).
    pub scheduler: SchedulerConfig,
}

/// Why a pipeline could not run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A folder could not be loaded.
    #[error(transparent)]
    Load(#[from] FolderError),
    /// The scheduler could not be set up or stepped.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// A prompt could not be tokenized.
    #[error("prompt: {0}")]
    Prompt(#[from] mm_text::TokenizerError),
    /// The starting noise has the wrong shape.
    #[error("initial latents {got:?}: expected {expected:?}")]
    Latents {
        /// What was given.
        got: Vec<usize>,
        /// What the model needs.
        expected: Vec<usize>,
    },
    /// An evaluation was asked for something it cannot do; the message says what.
    #[error("{0}")]
    Invalid(String),
}

/// One generation's settings.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Denoising steps.
    pub steps: usize,
    /// Guidance scale w: `uncond + w * (cond - uncond)`. At 1 only the conditional prediction
    /// is computed (as diffusers does for w <= 1); at any other w both are, so w = 0 is the
    /// unconditional model (diffusers would ignore w < 1).
    pub guidance: f32,
    /// The sampler (none: the folder's own class).
    pub scheduler: Option<SchedulerKind>,
    /// DDIM's eta.
    pub eta: f32,
    /// Guidance rescale phi (diffusers' `guidance_rescale`, Lin et al. 2023, section 3.4): the
    /// guided prediction is rescaled to the conditional one's standard deviation and mixed
    /// back, `phi * rescaled + (1 - phi) * guided`, against the over-saturation of high
    /// guidance. 0 (the default) leaves guidance as the guide writes it; applied only when
    /// guidance is on (w != 1).
    pub guidance_rescale: f32,
    /// Dynamic thresholding (DDPM, DDIM; Imagen's guard for pixel-space models at high
    /// guidance) turned on with these settings over the folder's scheduler config; `None`
    /// keeps the folder's own.
    pub thresholding: Option<Thresholding>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            steps: 50,
            guidance: 7.5,
            scheduler: None,
            eta: 0.0,
            guidance_rescale: 0.0,
            thresholding: None,
        }
    }
}

impl<B: Backend> TextToImage<B> {
    /// Loads a diffusers pipeline folder: `unet/`, `text_encoder/`, `tokenizer/`,
    /// `scheduler/` and, for latent diffusion, `vae/`.
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self, PipelineError> {
        let (unet, unet_config) = load_unet::<B>(&dir.join("unet"), device)?;
        let vae = match dir.join("vae").is_dir() {
            true => Some(load_vae::<B>(&dir.join("vae"), device)?),
            false => None,
        };
        let text =
            TextConditioner::load(&dir.join("text_encoder"), &dir.join("tokenizer"), device)?;
        let scheduler =
            SchedulerConfig::from_file(&dir.join("scheduler/scheduler_config.json"), None)
                .or_else(|e| match e {
                    // A pipeline saved with a scheduler we lack runs under DDIM's reading of it.
                    SchedulerError::Unsupported { ref key, .. } if key == "_class_name" => {
                        SchedulerConfig::from_file(
                            &dir.join("scheduler/scheduler_config.json"),
                            Some(SchedulerKind::Ddim),
                        )
                    }
                    e => Err(e),
                })?;
        Ok(Self {
            unet,
            unet_config,
            vae,
            text,
            scheduler,
        })
    }

    /// Writes the pipeline as a diffusers folder: `unet/`, `vae/` (if any), `text_encoder/`
    /// (`CLIPTextModel`), `tokenizer/` (`CLIPTokenizerFast`), `scheduler/` and
    /// `model_index.json`. A folder with a VAE is a `StableDiffusionPipeline` to diffusers; a
    /// pixel-space one loads here whole and in diffusers component by component.
    pub fn save(&self, dir: &Path) -> Result<(), FolderError> {
        save_unet(&self.unet, &self.unet_config, &dir.join("unet"))?;
        if let Some((model, config)) = &self.vae {
            save_vae(model, config, &dir.join("vae"))?;
        }
        self.text
            .save(&dir.join("text_encoder"), &dir.join("tokenizer"))?;
        let io = |path: &Path, e: std::io::Error| FolderError::Config {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let scheduler_dir = dir.join("scheduler");
        std::fs::create_dir_all(&scheduler_dir).map_err(|e| io(&scheduler_dir, e))?;
        let class = serde_json::to_value(self.scheduler.class_name).expect("kinds serialize");
        let files = [
            (
                scheduler_dir.join("scheduler_config.json"),
                serde_json::to_value(&self.scheduler).expect("configs serialize"),
            ),
            (
                dir.join("model_index.json"),
                json!({
                    "_class_name": "StableDiffusionPipeline",
                    "_diffusers_version": "0.35.2",
                    "unet": ["diffusers", "UNet2DConditionModel"],
                    "vae": if self.vae.is_some() { json!(["diffusers", "AutoencoderKL"]) } else { json!([null, null]) },
                    "text_encoder": ["transformers", "CLIPTextModel"],
                    "tokenizer": ["transformers", "CLIPTokenizerFast"],
                    "scheduler": ["diffusers", class],
                    "safety_checker": [null, null],
                    "feature_extractor": [null, null],
                    "image_encoder": [null, null],
                    "requires_safety_checker": false,
                }),
            ),
        ];
        for (path, value) in files {
            mm_data::fs::atomic_write(&path, &serde_json::to_vec_pretty(&value).expect("json"))
                .map_err(|e| io(&path, e))?;
        }
        Ok(())
    }

    /// The starting noise's shape for `batch` images of `height` x `width` pixels.
    pub fn latent_shape(&self, batch: usize, height: usize, width: usize) -> [usize; 4] {
        let [_, channels, _, _] = self.unet.conv_in.weight.dims();
        let down = match &self.vae {
            Some((_, c)) => 1 << (c.block_out_channels.len() - 1),
            None => 1,
        };
        [batch, channels, height / down, width / down]
    }

    /// Images for `prompts` from the standard normal `init` (one per prompt, shaped by
    /// [`Self::latent_shape`]); `noise` draws a standard normal tensor of a shape whenever a
    /// step adds noise (DDPM, DDIM with eta > 0). `progress` is called after every step.
    ///
    /// # Shapes
    /// - `init`: `[prompts, latent channels, h, w]`; output `[prompts, channels, H, W]` in [0, 1].
    pub fn generate(
        &self,
        prompts: &[&str],
        init: Tensor<B, 4>,
        options: &GenerateOptions,
        noise: &mut dyn FnMut([usize; 4]) -> Tensor<B, 4>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Tensor<B, 4>, PipelineError> {
        let shape = init.dims();
        if shape[0] != prompts.len() || shape[1] != self.unet.conv_in.weight.dims()[1] {
            return Err(PipelineError::Latents {
                got: shape.to_vec(),
                expected: vec![
                    prompts.len(),
                    self.unet.conv_in.weight.dims()[1],
                    shape[2],
                    shape[3],
                ],
            });
        }
        let multiple = self.unet.size_multiple();
        if !shape[2].is_multiple_of(multiple) || !shape[3].is_multiple_of(multiple) {
            return Err(PipelineError::Latents {
                got: shape.to_vec(),
                expected: vec![
                    shape[0],
                    shape[1],
                    shape[2].div_ceil(multiple) * multiple,
                    shape[3].div_ceil(multiple) * multiple,
                ],
            });
        }
        let mut config = self.scheduler.clone();
        if let Some(kind) = options.scheduler {
            config.class_name = kind;
        }
        if let Some(t) = options.thresholding {
            config = config
                .with_thresholding(t)
                .map_err(PipelineError::Invalid)?;
        }
        if !(0.0..=1.0).contains(&options.guidance_rescale) {
            return Err(PipelineError::Invalid(format!(
                "guidance rescale {}: expected a value in [0, 1]",
                options.guidance_rescale
            )));
        }
        let scheduler = Scheduler::new(config, options.steps)?.with_eta(options.eta);
        let guided = options.guidance != 1.0;
        let cond = self.text.encode(prompts)?;
        let context = if guided {
            let empty = vec![""; prompts.len()];
            Tensor::cat(vec![self.text.encode(&empty)?, cond], 0)
        } else {
            cond
        };
        let device = init.device();
        let mut latents = init.mul_scalar(scheduler.init_noise_sigma());
        let total = scheduler.timesteps().len();
        for (i, &t) in scheduler.timesteps().iter().enumerate() {
            let input = if guided {
                Tensor::cat(vec![latents.clone(), latents.clone()], 0)
            } else {
                latents.clone()
            };
            let input = scheduler.scale_model_input(input, i);
            let rows = input.dims()[0];
            let timesteps = Tensor::<B, 1>::from_floats([t].as_slice(), &device).expand([rows]);
            let prediction = self.unet.forward(input, timesteps, context.clone());
            let prediction = if guided {
                // The guide's rule: uncond + w * (cond - uncond).
                let b = prompts.len();
                let [_, c, h, w] = prediction.dims();
                let uncond = prediction.clone().slice([0..b, 0..c, 0..h, 0..w]);
                let text = prediction.slice([b..2 * b, 0..c, 0..h, 0..w]);
                let guided = uncond.clone() + (text.clone() - uncond).mul_scalar(options.guidance);
                rescale_guidance(guided, text, options.guidance_rescale)
            } else {
                prediction
            };
            let step_noise = scheduler.needs_noise(i).then(|| noise(shape));
            latents = scheduler
                .step(i, prediction, latents, step_noise)?
                .prev_sample;
            progress(i + 1, total);
        }
        let image = match &self.vae {
            Some((vae, c)) => vae.decode(
                latents
                    .div_scalar(c.scaling_factor)
                    .add_scalar(c.shift_factor.unwrap_or(0.0)),
            ),
            None => latents,
        };
        Ok(image.div_scalar(2.0).add_scalar(0.5).clamp(0.0, 1.0))
    }
}

/// Diffusers' `rescale_noise_cfg`: the guided prediction scaled to the conditional one's
/// per-sample standard deviation (unbiased, over channels and pixels), mixed with the
/// unscaled one by `phi`. `phi = 0` returns `guided` untouched.
///
/// # Shapes
/// - `guided`, `text`: `[batch, channels, h, w]`; output likewise.
pub fn rescale_guidance<B: Backend>(
    guided: Tensor<B, 4>,
    text: Tensor<B, 4>,
    phi: f32,
) -> Tensor<B, 4> {
    if phi == 0.0 {
        return guided;
    }
    let [b, c, h, w] = guided.dims();
    let std = |t: Tensor<B, 4>| {
        t.reshape([b, c * h * w])
            .var(1)
            .sqrt()
            .reshape([b, 1, 1, 1])
    };
    let ratio = std(text) / std(guided.clone());
    let rescaled = guided.clone() * ratio;
    rescaled.mul_scalar(phi) + guided.mul_scalar(1.0 - phi)
}
