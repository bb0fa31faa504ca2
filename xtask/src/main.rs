//! `cargo xtask`: the mm command line. Each subcommand parses its flags and calls library
//! functions; no model code lives here.
//!
//! ```text
//! cargo xtask data fetch emoji
//! cargo xtask train clip [--config FILE] [--set train.steps=200] [--device cpu] [--resume]
//! cargo xtask data synth cca
//! cargo xtask data fetch sounds && cargo xtask train audio-classifier
//! cargo xtask audio mel --input clip.flac --out mel.npy [--sr 16000 --n-fft 400 --hop 160 --n-mels 80]
//! cargo xtask eval clip --checkpoint runs/clip/final [--out FILE]
//! cargo xtask eval info --checkpoint runs/clip/final
//! cargo xtask eval fusion
//! cargo xtask eval deep-cca
//! cargo xtask video info clip.mp4 [--json] [--ffmpeg PATH]
//! cargo xtask data synth av-sync && cargo xtask train av-sync [--data synth|film]
//! cargo xtask data fetch stamps && cargo xtask data synth scenes && cargo xtask train localizer
//! cargo xtask localize --model runs/localizer-attention/final --image P --audio A --out heat.png
//! cargo xtask data fetch vqa && cargo xtask train vqa && cargo xtask eval vqa --checkpoint runs/vqa/final
//! cargo xtask train vilt && cargo xtask eval vilt --checkpoint runs/vilt/pretrain/final
//! cargo xtask vqa --model runs/vqa/final --image a.png --question "what color is the shape?" [--json]
//! cargo xtask train caption && cargo xtask eval caption --checkpoint runs/caption/final --out caption.json
//! cargo xtask caption --model runs/caption/final --image a.png [--beams 5] [--length-penalty 1] [--json]
//! cargo xtask data fetch vqa && cargo xtask train diffusion && cargo xtask eval diffusion --checkpoint runs/diffusion/final
//! cargo xtask generate --model runs/diffusion/final --prompt "a red circle" --guidance 1,3,5 --out grid.png
//! cargo xtask cca --x x.npy --y y.npy -k 8 [--ridge 0.1] [--save-projections DIR]
//! cargo xtask export clip --checkpoint runs/clip/final --out DIR
//! cargo xtask embed --model DIR --image a.png --text "a cat" --json
//! cargo xtask classify --model DIR --image a.png --labels "dog,cat,bird"
//! cargo xtask index build --model DIR --images FOLDER|MANIFEST --out INDEX [--kind exact|hnsw] [--resume]
//! cargo xtask search --index INDEX --text "a red heart" | --image PATH [--k 10]
//! cargo xtask serve --model DIR --index INDEX [--addr 127.0.0.1:8080]
//! cargo xtask loadtest --url http://127.0.0.1:8080 --endpoint classify --image a.png --labels "a,b"
//! cargo xtask stress [--target all|train|index|serve] [--kills 50] [--seed 1]
//! cargo xtask bench clip|train-clip|cca|audio|index [--device cpu] [--threads 2]
//! ```

mod audio;
mod backend;
mod bench;
mod caption;
mod cca;
mod classify;
mod common;
mod data;
mod embed;
mod eval;
mod export;
mod generate;
mod index;
mod loadtest;
mod localize;
mod serve;
mod stress;
mod train;
mod video;
mod vqa;

use clap::{Parser, Subcommand};

/// The mm command line.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    version,
    about = "Fetch data, train and evaluate mm models"
)]
struct Cli {
    /// Worker threads for the tensor math (rayon's pool, which Flex's kernels and GEMM use);
    /// default: RAYON_NUM_THREADS, else every core. `bench` gives its reference as many.
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch and prepare datasets.
    Data(data::DataArgs),
    /// Train a model.
    Train(train::TrainArgs),
    /// Evaluate a trained model.
    Eval(eval::EvalArgs),
    /// Write a model as a HuggingFace folder.
    Export(export::ExportArgs),
    /// Embed images and texts with a CLIP (HF folder or ours).
    Embed(embed::EmbedArgs),
    /// Zero-shot classify an image.
    Classify(classify::ClassifyArgs),
    /// Measure speed and memory beside the reference implementation.
    Bench(bench::BenchArgs),
    /// Audio features (mel spectrograms) of a file.
    Audio(audio::AudioArgs),
    /// Video files: stream info (as ffprobe reports it).
    Video(video::VideoArgs),
    /// Linear CCA of two matrices (.npy or CSV); prints the canonical correlations as JSON.
    Cca(cca::CcaArgs),
    /// Build an embedding index of images.
    Index(index::IndexArgs),
    /// Search an index with a text or an image.
    Search(index::SearchArgs),
    /// Run the HTTP service.
    Serve(serve::ServeArgs),
    /// Load-test a running service.
    Loadtest(loadtest::LoadtestArgs),
    /// Kill train, index build and serve at random moments and check nothing was lost.
    Stress(stress::StressArgs),
    /// Where in a picture a sound comes from (a heatmap over the picture).
    Localize(localize::LocalizeArgs),
    /// Answer a question about an image with a trained VQA model.
    Vqa(vqa::VqaArgs),
    /// Caption an image (greedy, beam search or sampling).
    Caption(caption::CaptionArgs),
    /// Images from a text-to-image pipeline, as a grid across guidance scales and samplers.
    Generate(generate::GenerateArgs),
}

/// Runs `command` on the calling thread.
fn run_command(command: Command, threads: usize) -> anyhow::Result<()> {
    match command {
        Command::Data(args) => data::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => export::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Classify(args) => classify::run(args),
        Command::Bench(args) => bench::run(args, threads),
        Command::Cca(args) => cca::run(args),
        Command::Audio(args) => audio::run(args),
        Command::Video(args) => video::run(args),
        Command::Index(args) => index::run(args),
        Command::Search(args) => index::run_search(args),
        Command::Localize(args) => localize::run(args),
        Command::Vqa(args) => vqa::run(args),
        Command::Caption(args) => caption::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Loadtest(args) => loadtest::run(args),
        Command::Stress(args) => stress::run(args),
    }
}

/// Whether `command` keeps the main thread rather than running on one of rayon's workers.
fn keeps_main_thread(command: &Command) -> bool {
    match command {
        // Servers and the kill harness wait on sockets and child processes: no worker of the
        // pool is held waiting.
        Command::Serve(_) | Command::Loadtest(_) | Command::Stress(_) => true,
        // Data-parallel training drives each device from a thread of burn-train's own, and
        // those threads use the pool: every worker stays free for them.
        Command::Train(args) => args.devices() > 1,
        _ => false,
    }
}

fn main() {
    // Keep freed tensor memory in the process (mm_core::memory says why).
    mm_core::memory::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "info,burn_train=warn,symphonia=warn,symphonia_format_ogg=warn,usvg=error,tiny_skia=error"
                    .into()
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let threads = match common::set_threads(cli.threads) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    };
    // A system BLAS named by MM_BLAS (mm_core::blas): a bad name stops here, not mid-run.
    match mm_core::blas::from_env() {
        Ok(Some(lib)) => tracing::info!("matrix products on {}", lib.path()),
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {}: {e}", mm_core::blas::ENV);
            std::process::exit(1);
        }
    }
    let command = cli.command;
    let result = if keeps_main_thread(&command) {
        run_command(command, threads)
    } else {
        // The global pool has `threads` threads now (`set_threads`).
        mm_core::pool::on_pool(|| run_command(command, threads))
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
