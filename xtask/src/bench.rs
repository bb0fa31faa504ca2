//! `cargo xtask bench clip`: throughput of the exact `clip-vit-base-patch32` architecture
//! (random weights) and peak memory, each beside the PyTorch reference measured on the same
//! machine by `xtask/bench/clip_reference.py`, as a ratio (higher is better for mm).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use clap::{Args, ValueEnum};
use mm_core::{BackendJob, DeviceSpec, dispatch};
use mm_text::TextBatch;
use mm_vl::ClipConfig;
use serde_json::Value;

use crate::common::workspace_root;

#[derive(Clone, Copy, ValueEnum)]
enum Target {
    Clip,
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
    /// Reference figures (JSON); defaults to xtask/bench/clip-reference.json.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// cpu | ndarray | wgpu[:N] | cuda[:N]
    #[arg(long, default_value = "cpu")]
    device: String,
}

const BATCH_TEXT: usize = 32;

/// Items per second of `f` (which must return only once its work is done).
fn rate(items: usize, min_seconds: f64, mut f: impl FnMut()) -> f64 {
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

/// Peak resident memory of this process in MiB (Linux), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

struct BenchJob {
    min_seconds: f64,
}

impl BackendJob for BenchJob {
    type Output = Vec<(&'static str, f64)>;

    fn run<A: AutodiffBackend>(self, device: A::Device) -> Self::Output {
        type B<A> = <A as AutodiffBackend>::InnerBackend;
        B::<A>::seed(&device, 0);
        let model = ClipConfig::vit_base_patch32().init::<B<A>>(&device);
        let mut out = Vec::new();
        for (key, batch) in [("images_per_s_b1", 1), ("images_per_s_b32", 32)] {
            let px = Tensor::<B<A>, 4>::random(
                [batch, 3, 224, 224],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let r = rate(batch, self.min_seconds, || {
                model.image_features(px.clone()).into_data();
            });
            out.push((key, r));
        }
        for (key, tokens) in [("texts_per_s_t77", 77), ("texts_per_s_t12", 12)] {
            let ids: Vec<i64> = (0..BATCH_TEXT * tokens)
                .map(|i| {
                    if i % tokens == tokens - 1 {
                        49407
                    } else {
                        (i * 7919 % 49406) as i64
                    }
                })
                .collect();
            let ids = Tensor::<B<A>, 2, Int>::from_data(
                TensorData::new(ids, [BATCH_TEXT, tokens]),
                &device,
            );
            let eot = Tensor::<B<A>, 1, Int>::from_data(
                TensorData::new(vec![tokens as i64 - 1; BATCH_TEXT], [BATCH_TEXT]),
                &device,
            );
            let r = rate(BATCH_TEXT, self.min_seconds, || {
                let batch = TextBatch {
                    ids: ids.clone(),
                    eot_positions: eot.clone(),
                };
                model.text_features(batch).into_data();
            });
            out.push((key, r));
        }
        if let Some(mib) = peak_rss_mib() {
            out.push(("peak_rss_mib", mib));
        }
        out
    }
}

/// Runs `bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    let Target::Clip = args.target;
    let device: DeviceSpec = args.device.parse()?;
    let reference_path = args
        .reference
        .unwrap_or_else(|| workspace_root().join("xtask/bench/clip-reference.json"));
    let reference: Option<Value> = std::fs::read_to_string(&reference_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let figures = dispatch(
        device,
        BenchJob {
            min_seconds: args.min_seconds,
        },
    )?;
    println!("clip-vit-base-patch32, random weights, --device {device}, text batch {BATCH_TEXT}");
    match &reference {
        Some(r) => println!(
            "reference: {} (torch {}, {} threads, {})",
            reference_path.display(),
            r["torch"].as_str().unwrap_or("?"),
            r["threads"],
            r["machine"].as_str().unwrap_or("?")
        ),
        None => println!(
            "no reference at {} (run xtask/bench/clip_reference.py)",
            reference_path.display()
        ),
    }
    println!(
        "{:<20} {:>10} {:>11} {:>8}",
        "figure", "mm", "reference", "ratio"
    );
    for (key, ours) in figures {
        let theirs = reference.as_ref().and_then(|r| r[key].as_f64());
        // For memory, a ratio above 1 means mm uses less.
        let ratio = theirs.map(|t| {
            if key == "peak_rss_mib" {
                t / ours
            } else {
                ours / t
            }
        });
        println!(
            "{key:<20} {ours:>10.2} {:>11} {:>8}",
            theirs
                .map(|t| format!("{t:.2}"))
                .unwrap_or_else(|| "-".into()),
            ratio
                .map(|r| format!("{r:.2}x"))
                .unwrap_or_else(|| "-".into())
        );
    }
    Ok(())
}
