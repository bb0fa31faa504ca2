//! `cargo xtask train clip|audio-classifier|deep-cca|fusion|video|av-sync|localizer|vqa|vilt|caption|diffusion`: training commands, one file
//! each. Every one takes `--config FILE`, `--set KEY=VALUE`, `--run-dir DIR`, `--resume`,
//! `--device D` and `--devices N`; `eval NAME --checkpoint DIR` scores what it saved.

mod audio;
mod av_sync;
mod caption;
mod clip;
mod deep_cca;
mod diffusion;
mod fusion;
mod localizer;
mod video;
mod vilt;
mod vqa;

use anyhow::Result;
use clap::{Args, Subcommand};

pub use audio::{load_sound_data, print_report};
pub use av_sync::{av_clips, av_sync_manifest, print_sync_report};
pub use caption::{
    caption_sources, parse_source as parse_caption_source, print_caption_report, source_captions,
};
pub use clip::report_skipped;
pub use localizer::{
    bridge_figures, print_localizer_report, scenes_manifest, sound_embeddings, sound_input,
};
pub use video::{print_report as print_video_report, strips as video_strips, task_manifest};
pub use vilt::{captions_manifest, print_pretrain_report};
pub use vqa::{print_vqa_report, vqa_manifest};

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
    /// The two deep CCA encoders on the nonlinear two-view problem.
    DeepCca(deep_cca::DeepCcaTrainArgs),
    /// Every fusion strategy on the synergy and the redundancy task.
    Fusion(fusion::FusionTrainArgs),
    /// A video classifier (CNN+LSTM, R3D-18, 3D CNN or single-frame) on arrow of time,
    /// playback speed or motion direction.
    Video(video::VideoTrainArgs),
    /// The audio-visual synchronization model (contrastive, with offset estimation).
    AvSync(av_sync::AvSyncTrainArgs),
    /// A sound-source localizer (the guide's concat fusion or audio-patch attention).
    Localizer(localizer::LocalizerTrainArgs),
    /// The two-tower VQA model (cross-attention fusion) on easy-VQA or a question-answer manifest.
    Vqa(vqa::VqaTrainArgs),
    /// ViLT: ITM + MLM pre-training on captions, then VQA fine-tuning.
    Vilt(vilt::ViltTrainArgs),
    /// The image captioner (ViT encoder, BERT decoder) on stamps, emoji and easy-VQA captions.
    Caption(caption::CaptionTrainArgs),
    /// A pixel-space text-to-image UNet (classifier-free guidance, EMA) on easy-VQA shapes.
    Diffusion(diffusion::DiffusionTrainArgs),
}

impl TrainArgs {
    /// How many devices the run trains on (`--devices`).
    pub fn devices(&self) -> u16 {
        let devices = match &self.target {
            Target::Clip(a) => a.devices,
            Target::AudioClassifier(a) => a.devices,
            Target::DeepCca(a) => a.devices,
            Target::Fusion(a) => a.devices,
            Target::Video(a) => a.devices,
            Target::AvSync(a) => a.devices,
            Target::Localizer(a) => a.devices,
            Target::Vqa(a) => a.devices,
            Target::Vilt(a) => a.devices,
            Target::Caption(a) => a.devices,
            Target::Diffusion(a) => a.devices,
        };
        devices.devices
    }
}

/// Runs `train`.
pub fn run(args: TrainArgs) -> Result<()> {
    match args.target {
        Target::Clip(a) => clip::run(a),
        Target::AudioClassifier(a) => audio::run(a),
        Target::DeepCca(a) => deep_cca::run(a),
        Target::Fusion(a) => fusion::run(a),
        Target::Video(a) => video::run(a),
        Target::AvSync(a) => av_sync::run(a),
        Target::Localizer(a) => localizer::run(a),
        Target::Vqa(a) => vqa::run(a),
        Target::Vilt(a) => vilt::run(a),
        Target::Caption(a) => caption::run(a),
        Target::Diffusion(a) => diffusion::run(a),
    }
}
