//! `cargo xtask bench diffusion`: the default `train diffusion` model (a 32 px pixel-space
//! UNet conditioned on the emoji CLIP's text tower, random weights) timed two ways: UNet
//! forward passes on a batch of noised images, and whole 50-step DDIM generations at guidance
//! 3 (text encoding, both guidance branches, scheduler steps). The bench writes the model as a
//! diffusers folder that `xtask/bench/diffusion_reference.py` runs with diffusers.

use std::path::PathBuf;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use mm_core::BackendJob;
use mm_generate::diffusion::config::SchedulerKind;
use mm_generate::diffusion::eval::seeded_noise;
use mm_generate::diffusion::text::TextConditioner;
use mm_generate::diffusion::train::DiffusionTrainConfig;
use mm_generate::diffusion::{GenerateOptions, TextToImage};
use mm_text::{ClipTextConfig, ClipTokenizer};

use super::{Figure, peak_rss_mib, rate};

/// Images per UNet forward.
pub const FORWARD_BATCH: usize = 16;
/// Prompts per generation.
pub const PROMPTS: [&str; 4] = [
    "a red circle",
    "a blue triangle",
    "a green rectangle",
    "a yellow circle",
];
/// Denoising steps per generation.
pub const STEPS: usize = 50;

/// Where the bench model is written for the reference script to load.
pub fn model_dir() -> PathBuf {
    std::env::temp_dir().join("mm-bench-diffusion-model")
}

/// Value `i` of the bench inputs (the reference script uses the same formula).
pub fn value(i: usize) -> f32 {
    ((i * 7919) % 255) as f32 / 127.5 - 1.0
}

/// Times UNet forwards and DDIM generations.
pub struct DiffusionBench {
    /// Seconds to time each case.
    pub min_seconds: f64,
}

impl BackendJob for DiffusionBench {
    type Output = anyhow::Result<Vec<Figure>>;

    fn run<A: AutodiffBackend>(self, device: A::Device) -> Self::Output {
        type B<A> = <A as AutodiffBackend>::InnerBackend;
        B::<A>::seed(&device, 0);
        // The emoji CLIP's text tower (configs/clip-emoji.json).
        let text_config = ClipTextConfig::new(128, 512, 128, 3, 4).with_max_position_embeddings(24);
        let text = TextConditioner::new(
            text_config.init::<B<A>>(&device)?,
            text_config,
            ClipTokenizer::bundled(),
        );
        let train = DiffusionTrainConfig::default();
        let mut scheduler = train.scheduler.clone();
        scheduler.class_name = SchedulerKind::Ddim;
        let pipeline = TextToImage {
            unet: train.unet.init::<B<A>>(&device),
            unet_config: train.unet.clone(),
            vae: None,
            text,
            scheduler,
        };
        pipeline.save(&model_dir())?;
        let side = train.image_size;
        let per = 3 * side * side;
        let sample = Tensor::<B<A>, 4>::from_data(
            TensorData::new(
                (0..FORWARD_BATCH * per).map(value).collect::<Vec<_>>(),
                [FORWARD_BATCH, 3, side, side],
            ),
            &device,
        );
        let timesteps = Tensor::<B<A>, 1>::from_data(
            TensorData::new(
                (0..FORWARD_BATCH)
                    .map(|i| (i * 61 % 1000) as f32)
                    .collect::<Vec<_>>(),
                [FORWARD_BATCH],
            ),
            &device,
        );
        let context = pipeline.text.encode(&vec![PROMPTS[0]; FORWARD_BATCH])?;
        let mut out = Vec::new();
        let forward = rate(FORWARD_BATCH, self.min_seconds, || {
            let y = pipeline
                .unet
                .forward(sample.clone(), timesteps.clone(), context.clone());
            let _ = y.into_data();
        });
        out.push(Figure::higher_is_better(
            "unet_forward_images_per_s",
            forward,
        ));
        let options = GenerateOptions {
            steps: STEPS,
            guidance: 3.0,
            scheduler: None,
            eta: 0.0,
            guidance_rescale: 0.0,
            thresholding: None,
        };
        let ids: Vec<u64> = (0..PROMPTS.len() as u64).collect();
        let mut failed = None;
        let generate = rate(PROMPTS.len(), self.min_seconds, || {
            let init = seeded_noise::<B<A>>(0, &ids, [3, side, side], &device);
            match pipeline.generate(
                &PROMPTS,
                init,
                &options,
                &mut |_| unreachable!("DDIM at eta 0 adds no noise"),
                &mut |_, _| {},
            ) {
                Ok(images) => drop(images.into_data()),
                Err(e) => failed = Some(e),
            }
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        out.push(Figure::higher_is_better("ddim50_images_per_s", generate));
        if let Some(mib) = peak_rss_mib() {
            out.push(Figure::lower_is_better("peak_rss_mib", mib));
        }
        Ok(out)
    }
}
