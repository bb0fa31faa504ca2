//! `cargo xtask localize --model DIR --image P --audio A --out heatmap.png`: where in the
//! picture the sound comes from, as a heatmap laid over the picture (at its own size).

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_video::av::localizer_eval::{load_localizer, localize_picture};
use mm_video::av::scenes::sound_features;

use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::train::{sound_embeddings, sound_input};

/// Flags of `localize`.
#[derive(Args)]
pub struct LocalizeArgs {
    /// A trained localizer folder (a run's `final/`).
    #[arg(long)]
    model: PathBuf,
    /// The picture.
    #[arg(long)]
    image: PathBuf,
    /// The sound (WAV, FLAC or Ogg Vorbis; its first 2 s are heard).
    #[arg(long)]
    audio: PathBuf,
    /// Where to write the picture with the heatmap over it (PNG).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
}

struct LocalizeJob {
    args: LocalizeArgs,
}

impl BackendJob for LocalizeJob {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let a = &self.args;
        let (model, config) = load_localizer::<B::InnerBackend>(&a.model, &device)?;
        let picture = image::open(&a.image)
            .with_context(|| format!("{}: not a readable image", a.image.display()))?
            .to_rgb8();
        let embeddings = sound_embeddings(&config)?;
        let mel = sound_features(&a.audio, sound_input(embeddings.as_ref()))?;
        let (out, peak) = localize_picture(&model, &config, &picture, &mel, &device)?;
        out.save(&a.out)
            .with_context(|| format!("writing {}", a.out.display()))?;
        let (w, h) = picture.dimensions();
        println!(
            "wrote {} (peak at x {}, y {} of {}x{})",
            a.out.display(),
            peak.0,
            peak.1,
            w,
            h
        );
        Ok(())
    }
}

/// Runs `localize`.
pub fn run(args: LocalizeArgs) -> Result<()> {
    let device = args.device.device;
    dispatch(device, LocalizeJob { args })?
}
