//! `cargo xtask eval clip|fusion|deep-cca|info`: evaluation commands, one file each.

mod clip;
mod deep_cca;
mod fusion;
mod info;

use anyhow::Result;
use clap::{Args, Subcommand};

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
        Target::Fusion(a) => fusion::run(a),
        Target::DeepCca(a) => deep_cca::run(a),
        Target::Info(a) => info::run(a),
    }
}
