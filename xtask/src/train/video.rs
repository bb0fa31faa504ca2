//! `cargo xtask train video --model lstm|r3d|c3d|frame --task arrow|speed|motion`: a video
//! classifier trained through the house loop on the film windows (arrow of time, playback
//! speed) or the synthetic motion set, evaluated on the held-out clips.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};
use mm_core::train::{RunOptions, append_eval};
use mm_core::{BackendJob, replicas};
use mm_video::Ffmpeg;
use mm_video::class_strips::class_strips_image;
use mm_video::tasks::{Strip, VideoTask, load_strips};
use mm_video::train::{
    VideoFolder, VideoModelKind, VideoReport, VideoTrainConfig, evaluate_video, train_video,
};

use crate::backend::dispatch;
use crate::common::{DeviceArg, DevicesArg, RunFlags, datasets_dir};

/// `--model`.
#[derive(Clone, Copy, ValueEnum)]
pub enum ModelArg {
    /// The guide's CNN+LSTM.
    Lstm,
    /// R3D-18 (torchvision's layout).
    R3d,
    /// The guide's 3D CNN.
    C3d,
    /// Single-frame baseline.
    Frame,
}

/// `--task`.
#[derive(Clone, Copy, ValueEnum)]
pub enum TaskArg {
    /// Forward or reversed film clips.
    Arrow,
    /// Film clips at stride 1, 2 or 4.
    Speed,
    /// Direction of a moving sprite (data synth motion).
    Motion,
}

/// Flags of `train video`.
#[derive(Args)]
pub struct VideoTrainArgs {
    /// The classifier.
    #[arg(long, value_enum, default_value = "lstm")]
    model: ModelArg,
    /// What it learns.
    #[arg(long, value_enum, default_value = "arrow")]
    task: TaskArg,
    /// A clip manifest (.jsonl of video, start, end, label, split); default: the film windows
    /// (datasets/video/film.jsonl) or the motion set (datasets/synth/motion/motion.jsonl).
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    run: RunFlags,
    /// Optimizer steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Folder for checkpoints, metrics and the final model (default runs/video-<model>-<task>).
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

fn names(model: ModelArg, task: TaskArg) -> (VideoModelKind, VideoTask) {
    let model = match model {
        ModelArg::Lstm => VideoModelKind::Lstm,
        ModelArg::R3d => VideoModelKind::R3d,
        ModelArg::C3d => VideoModelKind::C3d,
        ModelArg::Frame => VideoModelKind::Frame,
    };
    let task = match task {
        TaskArg::Arrow => VideoTask::Arrow,
        TaskArg::Speed => VideoTask::Speed,
        TaskArg::Motion => VideoTask::Motion,
    };
    (model, task)
}

/// The manifest of `task`, checked to exist.
pub fn task_manifest(task: VideoTask, data: Option<PathBuf>) -> Result<PathBuf> {
    let (path, fetch) = match task {
        VideoTask::Motion => (
            datasets_dir().join("synth/motion/motion.jsonl"),
            "cargo xtask data synth motion",
        ),
        _ => (
            datasets_dir().join("video/film.jsonl"),
            "cargo xtask data fetch video",
        ),
    };
    let path = data.unwrap_or(path);
    if !path.exists() {
        bail!("{} not found: run `{fetch}` first", path.display());
    }
    Ok(path)
}

/// Decodes one split of a task's clips.
pub fn strips(config: &VideoTrainConfig, manifest: &Path, split: &str) -> Result<Vec<Strip>> {
    Ok(load_strips(
        manifest,
        split,
        config.size,
        &config.task.classes(),
        &Ffmpeg::default(),
    )?)
}

struct VideoJob {
    config: VideoTrainConfig,
    train: Vec<Strip>,
    test: Vec<Strip>,
    run: RunOptions,
    devices: usize,
}

impl BackendJob for VideoJob {
    type Output = Result<(VideoReport, Vec<Strip>)>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let devices = replicas(&device, self.devices);
        let model = train_video::<B>(&self.config, self.train, &self.run, &devices)?;
        let folder = VideoFolder {
            config: self.config.clone(),
            classes: self.config.task.classes(),
        };
        let report = evaluate_video(&model, &folder, &self.test, &devices[0])?;
        Ok((report, self.test))
    }
}

/// Prints a report and writes it to `out`, with its confusion matrix drawn beside it
/// (`NAME.json` -> `NAME-confusion.png`; rows and columns numbered in the order of `classes`)
/// and one of the `test` clips per class (`NAME-strips.png`, rows in the same order).
pub fn print_report(
    report: &VideoReport,
    out: Option<&Path>,
    (config, test): (&VideoTrainConfig, &[Strip]),
) -> Result<()> {
    println!(
        "held-out accuracy: {:.1}% over {} clips (chance {:.1}%)",
        100.0 * report.accuracy,
        report.n_test,
        100.0 * report.chance
    );
    for (i, (name, acc)) in report.classes.iter().zip(&report.per_class).enumerate() {
        println!("  {i} {name:<12} {:.1}%", 100.0 * acc);
    }
    println!(
        "confusion (rows: truth, columns: predicted): {:?}",
        report.confusion
    );
    if let Some(out) = out {
        mm_data::fs::atomic_write(out, serde_json::to_string_pretty(report)?.as_bytes())?;
        let stem = out.file_stem().unwrap_or_default().to_string_lossy();
        let plot = out.with_file_name(format!("{stem}-confusion.png"));
        mm_core::train::confusion_png(&report.confusion, &plot)?;
        println!("wrote {} and {}", out.display(), plot.display());
        let path = out.with_file_name(format!("{stem}-strips.png"));
        if let Some(image) = class_strips_image(config.task, test, config.frames, config.min_motion)
        {
            image
                .save(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {} (one test clip per class)", path.display());
        }
    }
    Ok(())
}

/// Runs `train video`.
pub fn run(args: VideoTrainArgs) -> Result<()> {
    let (model, task) = names(args.model, args.task);
    let mut config = args
        .run
        .settings(VideoTrainConfig::new(model, task), "a video classifier")?;
    (config.model, config.task) = (model, task);
    if let Some(steps) = args.steps {
        config.steps = steps;
    }
    let manifest = task_manifest(task, args.data.clone())?;
    eprintln!("decoding the clips of {}...", manifest.display());
    let train = strips(&config, &manifest, "train")?;
    let test = strips(&config, &manifest, "test")?;
    let run_dir = args.run_dir.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/video-{}-{}",
            serde_json::to_value(model).unwrap().as_str().unwrap(),
            serde_json::to_value(task).unwrap().as_str().unwrap()
        ))
    });
    let run = RunOptions {
        resume: args.run.resume,
        ..RunOptions::new(&run_dir)
    };
    let job = VideoJob {
        config: config.clone(),
        train,
        test,
        run,
        devices: args.devices.devices as usize,
    };
    let (report, test) = dispatch(args.device.device, job)??;
    append_eval(
        &run_dir.join("metrics.jsonl"),
        &serde_json::to_value(&report)?,
    )?;
    println!("final model: {}", run_dir.join("final").display());
    print_report(&report, args.out.as_deref(), (&config, &test))
}
