//! `cargo xtask bench clip|cca|audio`: speed and memory, each figure beside the reference
//! implementation's on the same machine (committed JSON made by a script in `xtask/bench/`),
//! with the ratio oriented so that above 1 means mm is better.

mod audio;
mod cca;
mod clip;
mod index;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, ValueEnum};
use mm_core::dispatch;
use serde_json::Value;

use crate::common::DeviceArg;
use crate::common::workspace_root;

#[derive(Clone, Copy, ValueEnum)]
enum Target {
    /// CLIP ViT-B/32 towers vs PyTorch.
    Clip,
    /// Linear CCA on the 20,000 x 128 / 96 views vs scipy's closed form.
    Cca,
    /// Log-mel of 60 s of audio in two settings vs librosa.
    Audio,
    /// Exact and HNSW (ours, usearch's) search over random 512-d unit vectors vs FAISS.
    Index,
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
}

/// One measured figure.
pub struct Figure {
    key: String,
    value: f64,
    lower_is_better: bool,
}

impl Figure {
    /// A rate or other figure where more is better.
    pub fn higher_is_better(key: impl Into<String>, value: f64) -> Self {
        Self {
            key: key.into(),
            value,
            lower_is_better: false,
        }
    }

    /// A time or memory figure where less is better.
    pub fn lower_is_better(key: impl Into<String>, value: f64) -> Self {
        Self {
            key: key.into(),
            value,
            lower_is_better: true,
        }
    }
}

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

/// Runs `bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    let device = args.device.device;
    let (name, figures) = match args.target {
        Target::Clip => {
            let job = clip::ClipBench {
                min_seconds: args.min_seconds,
            };
            ("clip", dispatch(device, job)?)
        }
        Target::Cca => {
            let job = cca::CcaBench {
                min_seconds: args.min_seconds,
            };
            ("cca", dispatch(device, job)??)
        }
        Target::Audio => {
            let job = audio::AudioBench {
                min_seconds: args.min_seconds,
            };
            ("audio", dispatch(device, job)??)
        }
        Target::Index => {
            let job = {
                let ann = if args.skip_hnsw { "none" } else { &args.ann };
                index::IndexBench::from_flags(&args.sizes, ann, &args.ef_search)?
            };
            ("index", dispatch(device, job)??)
        }
    };
    let reference_path = args
        .reference
        .unwrap_or_else(|| workspace_root().join(format!("xtask/bench/{name}-reference.json")));
    let reference: Option<Value> = std::fs::read_to_string(&reference_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .map(|r| match args.target {
            Target::Index => index::flatten_reference(r),
            _ => r,
        });
    match args.target {
        Target::Clip => println!(
            "clip-vit-base-patch32, random weights, --device {device}, text batch {}",
            clip::BATCH_TEXT
        ),
        Target::Cca => println!("linear CCA, 20,000 x 128 / 96, k = 8, --device {device}"),
        Target::Index => println!(
            "{} random unit vectors of dimension {}, {} queries (single: {} one at a time), k = 10, M {}, efConstruction {}, --device {device}",
            args.sizes,
            index::DIM,
            index::QUERIES,
            index::SINGLE,
            index::M,
            index::EF_CONSTRUCTION
        ),
        Target::Audio => println!(
            "log-mel (dB) of 60 s: whisper = 16 kHz, n_fft 400, hop 160, 80 mels; librosa = 22.05 kHz, n_fft 2048, hop 512, 128 mels; host (one thread) and --device {device}"
        ),
    }
    match &reference {
        Some(r) => println!(
            "reference: {} ({}, {} threads, {})",
            reference_path.display(),
            r["implementation"].as_str().unwrap_or("?"),
            r["threads"],
            r["machine"].as_str().unwrap_or("?")
        ),
        None => println!(
            "no reference at {} (run the script beside it in xtask/bench/)",
            reference_path.display()
        ),
    }
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
        let ratio = theirs.map(|t| {
            if f.lower_is_better {
                t / f.value
            } else {
                f.value / t
            }
        });
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
