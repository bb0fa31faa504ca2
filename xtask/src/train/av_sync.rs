//! `cargo xtask train av-sync`: the audio-visual synchronization model trained through the
//! house loop on in-sync windows of the controlled set (`data synth av-sync`) or any manifest of
//! clips with sound, then evaluated on the held-out clips (offset top-1, AUC, shuffled control).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::train::{RunOptions, append_eval};
use mm_core::{BackendJob, replicas};
use mm_video::Ffmpeg;
use mm_video::av::{AvClip, SyncReport, SyncTrainConfig, evaluate_sync, load_av_clips, train_sync};

use crate::backend::dispatch;
use crate::common::{DeviceArg, DevicesArg, RunFlags, datasets_dir};

/// Flags of `train av-sync`.
#[derive(Args)]
pub struct AvSyncTrainArgs {
    /// `synth` (the controlled set, datasets/synth/av-sync/av-sync.jsonl), `film` (3 s windows
    /// of the film with its soundtrack, datasets/video/film-av.jsonl: test minutes 8-10, mostly
    /// end credits), `film-story` (the same windows tested inside the story, minutes
    /// 6:06-8:09: film-av-story.jsonl) or a manifest of clips with sound (.jsonl of video,
    /// optional audio, start, end, split).
    #[arg(long, default_value = "synth")]
    data: String,
    #[command(flatten)]
    run: RunFlags,
    /// Optimizer steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Folder for checkpoints, metrics and the final model (default runs/av-sync-<data>).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    pub(super) devices: DevicesArg,
}

/// The manifest `data` names (`synth`, `film` or a path), checked to exist.
pub fn av_sync_manifest(data: &str) -> Result<PathBuf> {
    let (path, make) = match data {
        "synth" => (
            datasets_dir().join("synth/av-sync/av-sync.jsonl"),
            "cargo xtask data synth av-sync",
        ),
        "film" => (
            datasets_dir().join("video/film-av.jsonl"),
            "cargo xtask data fetch video",
        ),
        "film-story" => (
            datasets_dir().join("video/film-av-story.jsonl"),
            "cargo xtask data fetch video",
        ),
        path => (PathBuf::from(path), "it"),
    };
    if !path.exists() {
        bail!("{} not found: run `{make}` first", path.display());
    }
    Ok(path)
}

/// Decodes one split of an audio-visual manifest at `size` x `size`.
pub fn av_clips(manifest: &Path, split: &str, size: u32) -> Result<Vec<AvClip>> {
    Ok(load_av_clips(manifest, split, size, &Ffmpeg::default())?)
}

/// Prints a sync report and writes it to `out`.
pub fn print_sync_report(report: &SyncReport, out: Option<&Path>) -> Result<()> {
    println!(
        "offset within +-1 frame: {:.1}% of {} clips (chance {:.1}%; mean error {:.2} frames)",
        100.0 * report.offset_top1,
        report.n_test,
        100.0 * report.chance_offset_top1,
        report.offset_mae
    );
    println!("in-sync vs shifted AUC: {:.3}", report.auc);
    println!(
        "control, another clip's sound: offset {:.1}%, AUC {:.3}",
        100.0 * report.shuffled_offset_top1,
        report.shuffled_auc
    );
    if let Some(b) = &report.motion_onset {
        println!(
            "baseline that learns nothing, motion against sound onsets: offset {:.1}%, AUC {:.3} (another clip's sound: {:.1}%, {:.3})",
            100.0 * b.offset_top1,
            b.auc,
            100.0 * b.shuffled_offset_top1,
            b.shuffled_auc
        );
    }
    if let Some(out) = out {
        mm_data::fs::atomic_write(out, serde_json::to_string_pretty(report)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

struct SyncJob {
    config: SyncTrainConfig,
    train: Vec<AvClip>,
    test: Vec<AvClip>,
    run: RunOptions,
    devices: usize,
}

impl BackendJob for SyncJob {
    type Output = Result<SyncReport>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let devices = replicas(&device, self.devices);
        let model = train_sync::<B>(&self.config, self.train, &self.run, &devices)?;
        let (_, config) =
            mm_video::av::load_sync::<B::InnerBackend>(&self.run.run_dir.join("final"), &device)?;
        Ok(evaluate_sync(&model, &config, &self.test, &device)?)
    }
}

/// Runs `train av-sync`.
pub fn run(args: AvSyncTrainArgs) -> Result<()> {
    let mut config = args
        .run
        .settings(SyncTrainConfig::default(), "an audio-visual sync model")?;
    if let Some(steps) = args.steps {
        config.steps = steps;
    }
    let manifest = av_sync_manifest(&args.data)?;
    let run_dir = args.run_dir.clone().unwrap_or_else(|| {
        let name = if matches!(args.data.as_str(), "synth" | "film" | "film-story") {
            args.data.as_str()
        } else {
            "custom"
        };
        PathBuf::from(format!("runs/av-sync-{name}"))
    });
    eprintln!("decoding the clips of {}...", manifest.display());
    let train = av_clips(&manifest, "train", config.size)?;
    let test = av_clips(&manifest, "test", config.size)?;
    let run = RunOptions {
        resume: args.run.resume,
        ..RunOptions::new(&run_dir)
    };
    let job = SyncJob {
        config,
        train,
        test,
        run,
        devices: args.devices.devices as usize,
    };
    let report = dispatch(args.device.device, job)??;
    append_eval(
        &run_dir.join("metrics.jsonl"),
        &serde_json::to_value(&report)?,
    )?;
    println!("final model: {}", run_dir.join("final").display());
    print_sync_report(&report, args.out.as_deref())
}
