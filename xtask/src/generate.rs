//! `cargo xtask generate --model DIR --prompt "a red circle" [--prompt ...] [--steps N]
//! [--guidance 1,3,5] [--guidance-rescale PHI] [--thresholding RATIO:MAX] [--scheduler ddim,euler]
//! [--seed S] [--count N] [--init-latents FILE.npy] --out grid.png`: images from a diffusers pipeline folder (ours,
//! or a Stable Diffusion-style one with a VAE), one grid row per prompt and image, one column
//! per (scheduler, guidance) pair, every column from the same starting noise.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mm_core::BackendJob;
use mm_generate::diffusion::eval::{save_grid, seeded_noise};
use mm_generate::diffusion::{GenerateOptions, SchedulerKind, TextToImage, Thresholding};

use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::eval::{parse_scheduler, parse_thresholding};

/// Flags of `generate`.
#[derive(Args)]
pub struct GenerateArgs {
    /// A diffusers pipeline folder.
    #[arg(long)]
    model: PathBuf,
    /// A prompt (repeatable).
    #[arg(long = "prompt", required = true)]
    prompts: Vec<String>,
    /// Denoising steps.
    #[arg(long, default_value_t = 25)]
    steps: usize,
    /// Guidance scales, one grid column each.
    #[arg(long, value_delimiter = ',', default_value = "3")]
    guidance: Vec<f32>,
    /// Samplers, one grid column each per scale (default: the folder's own).
    #[arg(long, value_delimiter = ',')]
    scheduler: Vec<String>,
    /// Seed of the starting noise (and of DDPM's step noise).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per prompt.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Starting noise as a float32 `.npy` `[prompts * count, channels, h, w]` (or one row for
    /// all), instead of `--seed`'s.
    #[arg(long)]
    init_latents: Option<PathBuf>,
    /// Image side in pixels (default: the UNet's `sample_size` times the VAE's scale).
    #[arg(long)]
    size: Option<usize>,
    /// Eta of DDIM (0: deterministic).
    #[arg(long, default_value_t = 0.0)]
    eta: f32,
    /// Guidance rescale phi in [0, 1] (diffusers' `guidance_rescale`; 0: off): pulls the
    /// guided prediction's spread back to the conditional one's, against over-saturation.
    #[arg(long, default_value_t = 0.0)]
    guidance_rescale: f32,
    /// Dynamic thresholding (DDPM, DDIM), `RATIO:MAX` (diffusers' `thresholding` with its
    /// `dynamic_thresholding_ratio` and `sample_max_value`), e.g. `0.995:1.5`.
    #[arg(long, value_name = "RATIO:MAX", value_parser = parse_thresholding)]
    thresholding: Option<Thresholding>,
    /// The grid (PNG).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
}

struct GenerateJob {
    args: GenerateArgs,
    schedulers: Vec<Option<SchedulerKind>>,
    init: Option<(Vec<usize>, Vec<f32>)>,
}

impl BackendJob for GenerateJob {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let a = self.args;
        let pipeline = TextToImage::<B::InnerBackend>::load(&a.model, &device)
            .with_context(|| format!("loading the pipeline {}", a.model.display()))?;
        let scale = match &pipeline.vae {
            Some((_, c)) => 1 << (c.block_out_channels.len() - 1),
            None => 1,
        };
        let size = a
            .size
            .unwrap_or(pipeline.unet_config.sample_size.unwrap_or(64) * scale);
        let rows = a.prompts.len() * a.count.max(1);
        let shape = pipeline.latent_shape(rows, size, size);
        let init = match self.init {
            Some((dims, data)) => {
                let want = &shape[1..];
                if dims.len() != 4 || &dims[1..] != want || (dims[0] != rows && dims[0] != 1) {
                    bail!(
                        "--init-latents has shape {dims:?}; expected [{rows} or 1, {}, {}, {}]",
                        want[0],
                        want[1],
                        want[2]
                    );
                }
                let t = Tensor::<B::InnerBackend, 4>::from_data(
                    TensorData::new(data, [dims[0], dims[1], dims[2], dims[3]]),
                    &device,
                );
                t.expand(shape)
            }
            None => {
                let ids: Vec<u64> = (0..rows as u64).collect();
                seeded_noise::<B::InnerBackend>(
                    a.seed,
                    &ids,
                    [shape[1], shape[2], shape[3]],
                    &device,
                )
            }
        };
        let prompts: Vec<&str> = a
            .prompts
            .iter()
            .flat_map(|p| std::iter::repeat_n(p.as_str(), a.count.max(1)))
            .collect();
        let columns = self.schedulers.len() * a.guidance.len();
        let bar = ProgressBar::new((columns * a.steps) as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} step {pos}/{len} [{elapsed} < {eta}] {msg}")
                .expect("template"),
        );
        let mut images = Vec::new();
        for scheduler in &self.schedulers {
            for &w in &a.guidance {
                let name = scheduler.map_or("default".to_string(), |k| format!("{k:?}"));
                bar.set_message(format!("{name}, guidance {w}"));
                let options = GenerateOptions {
                    steps: a.steps,
                    guidance: w,
                    scheduler: *scheduler,
                    eta: a.eta,
                    guidance_rescale: a.guidance_rescale,
                    thresholding: a.thresholding,
                };
                let mut k = 0u64;
                let mut noise = |s: [usize; 4]| {
                    k += 1;
                    let ids: Vec<u64> = (0..s[0] as u64).map(|i| (k << 32) + i).collect();
                    seeded_noise::<B::InnerBackend>(
                        a.seed ^ 0x5eed,
                        &ids,
                        [s[1], s[2], s[3]],
                        &device,
                    )
                };
                let start = bar.position();
                let image = pipeline.generate(
                    &prompts,
                    init.clone(),
                    &options,
                    &mut noise,
                    &mut |i, _| bar.set_position(start + i as u64),
                )?;
                images.push(image);
            }
        }
        bar.finish_and_clear();
        // Interleave so each row is one prompt image across every column.
        let [_, c, h, w] = images[0].dims();
        let stacked = Tensor::stack::<5>(images, 1).reshape([rows * columns, c, h, w]);
        save_grid(&stacked, columns, 1.max(64 / h.max(1)), &a.out)
            .with_context(|| format!("writing {}", a.out.display()))?;
        Ok(())
    }
}

/// Runs `generate`.
pub fn run(args: GenerateArgs) -> Result<()> {
    let schedulers = if args.scheduler.is_empty() {
        vec![None]
    } else {
        args.scheduler
            .iter()
            .map(|s| parse_scheduler(s).map(Some))
            .collect::<Result<_>>()?
    };
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.guidance_rescale) {
        bail!(
            "--guidance-rescale {}: expected a value in [0, 1]",
            args.guidance_rescale
        );
    }
    let init = match &args.init_latents {
        Some(path) => Some(mm_data::matrix::read_npy(path)?),
        None => None,
    };
    let out = args.out.clone();
    let device = args.device.device;
    dispatch(
        device,
        GenerateJob {
            args,
            schedulers,
            init,
        },
    )??;
    println!("wrote {}", out.display());
    Ok(())
}
