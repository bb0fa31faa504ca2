//! `cargo xtask eval clip|audio-classifier|fusion|deep-cca|info|video|av-sync|localizer|vqa|vilt|caption|diffusion|zero-shot`: evaluation commands, one
//! file each.

mod audio;
mod av_sync;
mod caption;
mod clip;
mod deep_cca;
mod diffusion;
mod fusion;
mod info;
mod localizer;
mod video;
mod vilt;
mod vqa;
mod zero_shot;

pub(crate) use diffusion::{parse_scheduler, parse_thresholding};
pub(crate) use zero_shot::read_templates;

use std::path::Path;

use anyhow::Result;
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::{Args, Subcommand};
use mm_data::manifest::{ImageCaption, Manifest};
use mm_vision::ClipImageProcessor;
use mm_vl::Clip;
use mm_vl::checkpoint::load_model;
use mm_vl::data::ImageTextSet;

use crate::train::report_skipped;

/// Flags of `eval`.
#[derive(Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    target: Target,
}

#[derive(Subcommand)]
enum Target {
    /// Retrieval Recall@K and zero-shot accuracy of a trained CLIP on its test set.
    Clip(clip::ClipEvalArgs),
    /// Zero-shot transfer of a CLIP (ours or HF) to the Tux Paint stamps, with a template
    /// ablation.
    ZeroShot(zero_shot::ZeroShotEvalArgs),
    /// Held-out accuracy of a trained sound classifier beside the majority class.
    AudioClassifier(audio::AudioEvalArgs),
    /// Held-out accuracy and confusion of a video classifier.
    Video(video::VideoEvalArgs),
    /// Offset accuracy, in-sync AUC and the shuffled-sound control of a sync model.
    AvSync(av_sync::AvSyncEvalArgs),
    /// Pointing game, cIoU and baselines of a sound-source localizer.
    Localizer(localizer::LocalizerEvalArgs),
    /// VQA accuracy per answer type beside the question-only baseline and blanked images.
    Vqa(vqa::VqaEvalArgs),
    /// A captioner: greedy vs beam 3 vs beam 5 (BLEU, CIDEr-D, exact match).
    Caption(caption::CaptionEvalArgs),
    /// ITM AUC and masked-word accuracy (with and without the image) of a pre-trained ViLT.
    Vilt(vilt::ViltEvalArgs),
    /// Whether a text-to-image pipeline draws the asked colour and shape, by guidance scale.
    Diffusion(diffusion::DiffusionEvalArgs),
    /// Train every fusion strategy on a synergy task and a redundancy task; print a table.
    Fusion(fusion::FusionEvalArgs),
    /// Deep CCA against linear CCA on a nonlinear two-view problem.
    DeepCca(deep_cca::DeepCcaEvalArgs),
    /// The InfoNCE lower bound on I(image; caption) of a trained CLIP on its test set.
    Info(info::InfoEvalArgs),
}

/// Runs `eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    match args.target {
        Target::Clip(a) => clip::run(a),
        Target::ZeroShot(a) => zero_shot::run(a),
        Target::AudioClassifier(a) => audio::run(a),
        Target::Video(a) => video::run(a),
        Target::AvSync(a) => av_sync::run(a),
        Target::Localizer(a) => localizer::run(a),
        Target::Vqa(a) => vqa::run(a),
        Target::Caption(a) => caption::run(a),
        Target::Vilt(a) => vilt::run(a),
        Target::Diffusion(a) => diffusion::run(a),
        Target::Fusion(a) => fusion::run(a),
        Target::DeepCca(a) => deep_cca::run(a),
        Target::Info(a) => info::run(a),
    }
}

/// A trained CLIP, the same architecture freshly initialized with `seed` (the baseline every
/// CLIP evaluation prints beside it), and the test set preprocessed for them.
type EvalInputs<B> = (Clip<B>, Clip<B>, ImageTextSet);

/// Loads [`EvalInputs`] for a checkpoint and a test manifest.
pub(crate) fn trained_untrained_and_data<B: AutodiffBackend>(
    checkpoint: &Path,
    manifest: &Path,
    seed: u64,
    device: &B::Device,
) -> Result<EvalInputs<B::InnerBackend>> {
    let (model, config) = load_model::<B::InnerBackend>(checkpoint, device)?;
    let manifest = Manifest::<ImageCaption>::read(manifest)?;
    let processor = ClipImageProcessor::clip(config.vision_config.image_size as u32);
    let data = ImageTextSet::load(&manifest, &processor, None)?;
    report_skipped(&data);
    B::InnerBackend::seed(device, seed);
    let untrained = config.init::<B>(device)?.valid();
    Ok((model, untrained, data))
}
