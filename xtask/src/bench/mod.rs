//! `cargo xtask bench clip|train-clip|cca|audio|index|video|generate|diffusion`: speed and memory, each figure beside the reference
//! implementation's on the same machine (committed JSON made by a script in `xtask/bench/`),
//! with the ratio oriented so that above 1 means mm is better. `--run-reference` runs the
//! script in the same sitting instead, alternating with mm (see [`reference`]).

mod audio;
mod cca;
mod clip;
mod diffusion;
mod generate;
mod index;
mod reference;
mod train_clip;
mod video;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::common::workspace_root;
use mm_core::DeviceSpec;
use mm_xtask::figure::same_kind_of_device;
use reference::{ReferenceScript, print_rounds};

#[derive(Clone, Copy, ValueEnum)]
enum Target {
    /// CLIP ViT-B/32 towers vs PyTorch.
    Clip,
    /// Training steps of the emoji CLIP vs PyTorch running the same.
    TrainClip,
    /// Linear CCA on the 20,000 x 128 / 96 views vs scipy's closed form.
    Cca,
    /// Log-mel of 60 s of audio in two settings vs librosa.
    Audio,
    /// Exact and HNSW (ours, usearch's) search over random 512-d unit vectors vs FAISS.
    Index,
    /// R3D-18 and CNN+LSTM forward, and training steps of the small video models, vs PyTorch.
    Video,
    /// Greedy and beam-5 captioning vs transformers' generate() on the same model.
    Generate,
    /// UNet forward and 50-step DDIM generation of the default diffusion model vs diffusers.
    Diffusion,
}

/// Flags of `bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// What to benchmark.
    #[arg(value_enum)]
    target: Target,
    /// Seconds to time each case (after one warm-up run).
    #[arg(long, default_value_t = 3.0)]
    min_seconds: f64,
    /// Reference figures (JSON); defaults to xtask/bench/<target>-reference.json.
    #[arg(long)]
    reference: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
    /// `bench index`: database sizes, comma-separated.
    #[arg(long, default_value = "100000")]
    sizes: String,
    /// `bench index`: HNSW efSearch values to sweep, comma-separated.
    #[arg(long, default_value = "128,512,1024,2048,4096")]
    ef_search: String,
    /// `bench index`: approximate indexes to measure beside the exact one, comma-separated
    /// (hnsw = ours, usearch = the usearch library's; none = the exact index only).
    #[arg(long, default_value = "hnsw,usearch")]
    ann: String,
    /// `bench index`: the exact index only (the same as `--ann none`).
    #[arg(long)]
    skip_hnsw: bool,
    /// Run the reference script in this sitting, alternating with mm, instead of reading its
    /// committed figures; prints each round's ratio and the median.
    #[arg(long)]
    run_reference: bool,
    /// The Python that runs the reference script (with the packages its docstring pins).
    #[arg(long, default_value = "python3")]
    python: String,
    /// `--run-reference`: rounds of (mm, reference).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

pub use mm_xtask::figure::Figure;

/// Items per second of `f` (which must return only once its work is done).
pub fn rate(items: usize, min_seconds: f64, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut n = 0;
    loop {
        f();
        n += 1;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= min_seconds && n >= 2 {
            return (items * n) as f64 / elapsed;
        }
    }
}

/// Best wall time in seconds of `f` over repeated runs for at least `min_seconds` (after
/// one warm-up run).
pub fn best_seconds(min_seconds: f64, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut best = f64::INFINITY;
    while start.elapsed().as_secs_f64() < min_seconds || best.is_infinite() {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

/// Peak resident memory of this process in MiB (Linux), if known.
pub fn peak_rss_mib() -> Option<f64> {
    crate::common::proc_status_mib("self", "VmHWM")
}

impl BenchArgs {
    fn name(&self) -> &'static str {
        match self.target {
            Target::Clip => "clip",
            Target::TrainClip => "train_clip",
            Target::Video => "video",
            Target::Cca => "cca",
            Target::Audio => "audio",
            Target::Index => "index",
            Target::Generate => "generate",
            Target::Diffusion => "diffusion",
        }
    }

    /// One measurement of mm's figures.
    fn measure(&self) -> Result<Vec<Figure>> {
        let device = self.device.device;
        let min_seconds = self.min_seconds;
        Ok(match self.target {
            Target::Clip => dispatch(device, clip::ClipBench { min_seconds })?,
            Target::TrainClip => dispatch(device, train_clip::TrainClipBench { min_seconds })??,
            Target::Video => dispatch(device, video::VideoBench { min_seconds })??,
            Target::Cca => dispatch(device, cca::CcaBench { min_seconds })??,
            Target::Audio => dispatch(device, audio::AudioBench { min_seconds })??,
            Target::Generate => dispatch(device, generate::GenerateBench { min_seconds })??,
            Target::Diffusion => dispatch(device, diffusion::DiffusionBench { min_seconds })??,
            Target::Index => {
                let ann = if self.skip_hnsw { "none" } else { &self.ann };
                let job = index::IndexBench::from_flags(&self.sizes, ann, &self.ef_search)?;
                dispatch(device, job)??
            }
        })
    }

    /// The reference script's own flags matching this run's.
    fn script_args(&self) -> Vec<String> {
        match self.target {
            Target::Index => {
                let mut a = vec![
                    "--sizes".into(),
                    self.sizes.clone(),
                    "--ef-search".into(),
                    self.ef_search.clone(),
                ];
                if self.skip_hnsw || self.ann == "none" {
                    a.push("--skip-hnsw".into());
                }
                a
            }
            Target::Generate => vec![
                "--min-seconds".into(),
                self.min_seconds.to_string(),
                "--model".into(),
                generate::model_dir().display().to_string(),
            ],
            Target::Diffusion => vec![
                "--min-seconds".into(),
                self.min_seconds.to_string(),
                "--model".into(),
                diffusion::model_dir().display().to_string(),
            ],
            Target::Clip if matches!(self.device.device, DeviceSpec::Cuda(_)) => vec![
                "--min-seconds".into(),
                self.min_seconds.to_string(),
                "--device".into(),
                "cuda".into(),
            ],
            _ => vec!["--min-seconds".into(), self.min_seconds.to_string()],
        }
    }

    fn print_header(&self, threads: usize) {
        let device = &self.device.device;
        match self.target {
            Target::Clip => println!(
                "clip-vit-base-patch32, random weights, --device {device}, text batch {}",
                clip::BATCH_TEXT
            ),
            Target::TrainClip => println!(
                "emoji CLIP training steps (configs/clip-emoji.json: batch, AdamW, clipping), random inputs, --device {device}"
            ),
            Target::Cca => println!("linear CCA, 20,000 x 128 / 96, k = 8, --device {device}"),
            Target::Video => println!(
                "R3D-18 and CNN+LSTM (ResNet-18, LSTM 512) forward on {} clips of 8 x 112x112, {} classes; training steps of the width-16 models (batch 16, 8 x 64x64, AdamW), --device {device}",
                video::FORWARD_BATCH,
                video::CLASSES
            ),
            Target::Index => println!(
                "{} random unit vectors of dimension {}, {} queries (single: {} one at a time), k = 10, M {}, efConstruction {}, --device {device}",
                self.sizes,
                index::DIM,
                index::QUERIES,
                index::SINGLE,
                index::M,
                index::EF_CONSTRUCTION
            ),
            Target::Generate => println!(
                "captioning {} images of 64x64 with the default captioner's architecture (random weights, {} words), at most {} new tokens, length_penalty 1, early_stopping false, --device {device}",
                generate::IMAGES,
                generate::VOCAB,
                generate::MAX_NEW_TOKENS
            ),
            Target::Diffusion => println!(
                "the default diffusion model (32 px pixel-space UNet, emoji-CLIP-sized text tower; random weights): UNet forward on {} images, and {}-step DDIM generation of {} prompts at guidance 3, --device {device}",
                diffusion::FORWARD_BATCH,
                diffusion::STEPS,
                diffusion::PROMPTS.len()
            ),
            Target::Audio => println!(
                "log-mel (dB) of 60 s: whisper = 16 kHz, n_fft 400, hop 160, 80 mels; librosa = 22.05 kHz, n_fft 2048, hop 512, 128 mels; host (one thread) and --device {device}"
            ),
        }
        println!("threads: {threads} (mm and reference)");
        match mm_core::blas::active() {
            Some(lib) => println!("mm's matrix products: {} (MM_BLAS)", lib.path()),
            None => println!("mm's matrix products: the gemm crate (no MM_BLAS)"),
        }
    }

    fn flatten(&self, reference: Value) -> Value {
        match self.target {
            Target::Index => index::flatten_reference(reference),
            _ => reference,
        }
    }
}

/// Runs `bench` with `threads` worker threads on both sides (the global `--threads`).
pub fn run(args: BenchArgs, threads: usize) -> Result<()> {
    let name = args.name();
    args.print_header(threads);
    if args.run_reference {
        let script = ReferenceScript {
            name,
            python: args.python.clone(),
            threads,
            args: args.script_args(),
        };
        let scratch = std::env::temp_dir().join(format!("mm-bench-{}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        println!(
            "reference: {} run by {} in this sitting, {} rounds alternating with mm",
            script.path().display(),
            args.python,
            args.rounds
        );
        let mut rounds = Vec::new();
        for round in 1..=args.rounds.max(1) {
            eprintln!("round {round}: mm");
            let ours = args.measure()?;
            eprintln!("round {round}: reference");
            let theirs = args.flatten(script.run(&scratch)?);
            rounds.push((ours, theirs));
        }
        std::fs::remove_dir_all(&scratch).ok();
        print_rounds(&rounds);
        return Ok(());
    }
    let figures = args.measure()?;
    let reference_path = args
        .reference
        .clone()
        .unwrap_or_else(|| workspace_root().join(format!("xtask/bench/{name}-reference.json")));
    let reference: Option<Value> = std::fs::read_to_string(&reference_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .map(|r| args.flatten(r));
    match &reference {
        Some(r) => println!(
            "reference: {} ({}, {} threads, {}; measured in another sitting: --run-reference for one run side by side)",
            reference_path.display(),
            r["implementation"].as_str().unwrap_or("?"),
            r["threads"],
            r["machine"].as_str().unwrap_or("?")
        ),
        None => println!(
            "no reference at {} (run the script beside it in xtask/bench/, or --run-reference)",
            reference_path.display()
        ),
    }
    let reference = reference.filter(|r| {
        let run_on_gpu = matches!(
            args.device.device,
            DeviceSpec::Cuda(_) | DeviceSpec::Wgpu(_)
        );
        let comparable = same_kind_of_device(run_on_gpu, r["device"].as_str());
        if !comparable {
            println!(
                "ratios withheld: that reference was measured on the {}, this run is on {}; \
                 --run-reference measures the reference on the same device",
                r["device"].as_str().unwrap_or("cpu"),
                args.device.device
            );
        }
        comparable
    });
    print_table(&figures, reference.as_ref());
    Ok(())
}

/// Prints each figure beside its reference and the ratio (above 1: mm is better).
fn print_table(figures: &[Figure], reference: Option<&Value>) {
    println!(
        "{:<34} {:>10} {:>11} {:>8}",
        "figure", "mm", "reference", "ratio"
    );
    for f in figures {
        let theirs = reference.and_then(|r| r[f.key.as_str()].as_f64());
        let ratio = theirs.map(|t| mm_xtask::figure::ratio(f, t));
        let show = |v: Option<f64>, suffix: &str| {
            v.map(|v| format!("{v:.3}{suffix}"))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{:<34} {:>10.3} {:>11} {:>8}",
            f.key,
            f.value,
            show(theirs, ""),
            show(ratio, "x")
        );
    }
}
