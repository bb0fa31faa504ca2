//! `cargo xtask train clip|audio-classifier`: training commands, one file each.

mod audio;
mod clip;

use anyhow::Result;
use clap::{Args, Subcommand};

pub use audio::{load_sound_data, print_report};
pub use clip::report_skipped;

/// Flags of `train`.
#[derive(Args)]
pub struct TrainArgs {
    #[command(subcommand)]
    target: Target,
}

#[derive(Subcommand)]
enum Target {
    /// Contrastive CLIP training from a JSON config.
    Clip(clip::ClipTrainArgs),
    /// A sound classifier on the sonic-pi-samples groups (or an audio manifest).
    AudioClassifier(audio::AudioTrainArgs),
}

/// Runs `train`.
pub fn run(args: TrainArgs) -> Result<()> {
    match args.target {
        Target::Clip(a) => clip::run(a),
        Target::AudioClassifier(a) => audio::run(a),
    }
}
