//! The one training loop: burn-train's `Learner`, fed by step, logged as JSONL, resumable.
//!
//! Every model trains through [`fit`]: the model implements burn-train's `TrainStep` (forward,
//! loss, backward; returning a [`StepOutput`]) and supplies a [`BatchSource`] that builds the
//! batch of any step from the step number. [`fit`] runs burn-train's supervised training with:
//!
//! - epochs of `checkpoint_every` steps ([`StepLoader`]), because burn-train checkpoints and
//!   resumes at epoch ends: a kill loses at most the steps since the last checkpoint, and a
//!   resumed run sees the same batches as an uninterrupted one;
//! - checkpoint files written atomically ([`AtomicMpkRecorder`]), the last
//!   `keep_checkpoints` kept, resume from the newest one that is whole;
//! - `metrics.jsonl` (one line per step: step, loss, lr, samples/s and the model's extras) and
//!   a progress display that suits a terminal and a CI log ([`RunLog`], [`ProgressRenderer`]);
//! - optionally, an exponential moving average of the weights ([`WithEma`]);
//! - data parallelism over several devices with burn-train's multi-device strategy: each
//!   device builds its [`Share`] of every batch, gradients are summed on the first device.
//!
//! A run folder holds `config.json` (what the caller passes: the full training config),
//! `checkpoint/`, `metrics.jsonl` and `loss.png`; the caller saves `final/`
//! ([`save_model_dir`]) and may append its evaluation to `metrics.jsonl` ([`append_eval`]).

mod adamw;
mod config_diff;
mod confusion;
mod ema;
mod loader;
mod log;
mod model_dir;
mod plot;
mod progress;
mod recorder;
mod schedule;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::optim::lr_scheduler::LrScheduler;
use burn::record::Recorder;
use burn::tensor::backend::AutodiffBackend;
use burn_train::checkpoint::KeepLastNCheckpoints;
use burn_train::{
    ExecutionStrategy, InferenceStep, Interrupter, Learner, MultiDeviceOptim, SupervisedTraining,
    TrainStep, TrainingStrategy,
};

pub use adamw::{AdamW, AdamWConfig};
pub use confusion::confusion_png;
pub use ema::{EmaModule, WithEma, ema_decay, lerp_weights};
pub use loader::{BatchSource, EmptyLoader, Share, StepInfo, StepLoader};
pub use log::{RunLog, StepOutput, StepRecord, append_eval, read_losses, truncate_log};
pub use model_dir::{load_weights, read_model_config, save_model_dir};
pub use plot::{PlotError, loss_curve};
pub use progress::{NoEpochLogs, ProgressRenderer};
pub use recorder::{AtomicMpkRecorder, CHECKPOINT_PARTS, complete_checkpoints, part_path};
pub use schedule::WarmupCosine;

/// Where a run goes and how it reports: what a user chooses per run, beside the model's config.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// The run folder (`config.json`, `checkpoint/`, `metrics.jsonl`, `loss.png`, `final/`).
    pub run_dir: PathBuf,
    /// Continue from the run folder's newest checkpoint.
    pub resume: bool,
    /// Steps between plain progress lines when stderr is not a terminal.
    pub log_every: usize,
}

impl RunOptions {
    /// A fresh run in `run_dir`, logging every 50 steps.
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        Self {
            run_dir: run_dir.into(),
            resume: false,
            log_every: 50,
        }
    }

    /// The same run, resumed.
    pub fn resumed(mut self) -> Self {
        self.resume = true;
        self
    }

    /// The [`RunSpec`] of a run of `total_steps` with a checkpoint every `checkpoint_every`.
    pub fn spec(&self, total_steps: usize, checkpoint_every: usize, keep: usize) -> RunSpec {
        RunSpec {
            run_dir: self.run_dir.clone(),
            total_steps,
            checkpoint_every,
            keep_checkpoints: keep,
            resume: self.resume,
            log_every: self.log_every,
        }
    }
}

/// Where and how long a run goes.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Optimizer steps of the whole run.
    pub total_steps: usize,
    /// Steps between checkpoints (0: one at the end).
    pub checkpoint_every: usize,
    /// Checkpoints kept on disk.
    pub keep_checkpoints: usize,
    /// Continue from the newest whole checkpoint instead of starting over.
    pub resume: bool,
    /// Steps between plain progress lines when stderr is not a terminal.
    pub log_every: usize,
}

impl RunSpec {
    /// Steps per burn-train epoch.
    pub fn chunk(&self) -> usize {
        if self.checkpoint_every == 0 {
            self.total_steps.max(1)
        } else {
            self.checkpoint_every
        }
    }

    /// Number of burn-train epochs.
    pub fn chunks(&self) -> usize {
        self.total_steps.div_ceil(self.chunk())
    }

    /// The checkpoint folder.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.run_dir.join("checkpoint")
    }

    /// The step log.
    pub fn metrics_path(&self) -> PathBuf {
        self.run_dir.join("metrics.jsonl")
    }
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file of the run folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The settings cannot work.
    #[error("invalid training settings: {0}")]
    Settings(String),
    /// `--resume` with no checkpoint to resume from.
    #[error("no checkpoint to resume from in {0}")]
    NoCheckpoint(PathBuf),
    /// The run folder holds a run of another configuration.
    #[error(
        "{path} was written by a different training config ({differences}); resume with the same settings (`--set KEY=VALUE` with the saved value) or use a fresh --run-dir"
    )]
    ConfigMismatch {
        /// The run's `config.json`.
        path: PathBuf,
        /// Which settings differ, saved and now, by dotted path.
        differences: String,
    },
    /// A checkpoint exists but cannot be read.
    #[error("checkpoint {path} cannot be loaded: {reason}")]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// The recorder's error.
        reason: String,
    },
    /// Training stopped before its last step (a checkpoint that could not be written, for
    /// one). The checkpoints already on disk are kept; `--resume` continues from the newest.
    #[error("training stopped after step {last_step} of {total_steps}: {reason}")]
    Stopped {
        /// The last step logged in `metrics.jsonl` (0: none).
        last_step: usize,
        /// The steps the run was to take.
        total_steps: usize,
        /// Why burn-train stopped (its interrupter's message).
        reason: String,
    },
    /// The loss curve could not be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Prepares the run folder: checks or writes `config.json`, finds the checkpoint to resume
/// from (its chunk number, 0 for a fresh run) and trims `metrics.jsonl` to match.
fn prepare(spec: &RunSpec, config: &serde_json::Value) -> Result<usize, TrainError> {
    if spec.total_steps == 0 {
        return Err(TrainError::Settings("the run has 0 steps".into()));
    }
    std::fs::create_dir_all(&spec.run_dir).map_err(io(&spec.run_dir))?;
    let config_path = spec.run_dir.join("config.json");
    let checkpoint_dir = spec.checkpoint_dir();
    let metrics = spec.metrics_path();
    if spec.resume {
        let found = complete_checkpoints(&checkpoint_dir);
        let Some(&chunk) = found.first() else {
            return Err(TrainError::NoCheckpoint(spec.run_dir.clone()));
        };
        let saved: serde_json::Value = std::fs::read(&config_path)
            .map_err(io(&config_path))
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| TrainError::Io {
                    path: config_path.clone(),
                    source: e.into(),
                })
            })?;
        if &saved != config {
            return Err(TrainError::ConfigMismatch {
                path: config_path,
                differences: config_diff::describe_differences(&saved, config),
            });
        }
        truncate_log(&metrics, (chunk * spec.chunk()).min(spec.total_steps))
            .map_err(io(&metrics))?;
        return Ok(chunk);
    }
    // A fresh run starts its checkpoints over; an earlier `final/` stays until the new one
    // replaces it (atomically, at the end), so a run killed early loses no saved model.
    if checkpoint_dir.exists() {
        std::fs::remove_dir_all(&checkpoint_dir).map_err(io(&checkpoint_dir))?;
    }
    if metrics.exists() {
        std::fs::remove_file(&metrics).map_err(io(&metrics))?;
    }
    let bytes = serde_json::to_vec_pretty(config).expect("JSON values serialize");
    mm_data::fs::atomic_write(&config_path, &bytes).map_err(io(&config_path))?;
    Ok(0)
}

/// Loads each part of checkpoint `chunk` once, so a damaged file is an error here rather than
/// a panic inside burn-train.
fn check_checkpoint<B, M, O, LR>(
    dir: &Path,
    chunk: usize,
    device: &B::Device,
) -> Result<(), TrainError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    LR: LrScheduler,
{
    let bad = |part: &str, e: burn::record::RecorderError| TrainError::BadCheckpoint {
        path: part_path(dir, part, chunk).with_extension("mpk"),
        reason: e.to_string(),
    };
    let rec = AtomicMpkRecorder;
    Recorder::<B>::load::<<M as Module<B>>::Record>(&rec, part_path(dir, "model", chunk), device)
        .map_err(|e| bad("model", e))?;
    Recorder::<B>::load::<O::Record>(&rec, part_path(dir, "optim", chunk), device)
        .map_err(|e| bad("optim", e))?;
    Recorder::<B>::load::<LR::Record<B>>(&rec, part_path(dir, "scheduler", chunk), device)
        .map_err(|e| bad("scheduler", e))?;
    Ok(())
}

/// Trains `model` for `spec.total_steps` steps on the batches of `source`, on `devices` (the
/// first one holds the model and the optimizer), and returns the trained model.
///
/// `config` is the run's full configuration: written to `config.json`, and compared with it
/// on resume. The loss curve is drawn to `loss.png` at the end.
pub fn fit<B, M, O, LR, S>(
    spec: &RunSpec,
    config: &serde_json::Value,
    model: M,
    optim: O,
    schedule: LR,
    source: S,
    devices: &[B::Device],
) -> Result<M::InnerModule, TrainError>
where
    B: AutodiffBackend,
    M: TrainStep<Input = S::Batch, Output = StepOutput>
        + AutodiffModule<B>
        + core::fmt::Display
        + 'static,
    M::InnerModule: InferenceStep<Output = StepOutput>,
    <M::InnerModule as InferenceStep>::Input: Send + 'static,
    O: Optimizer<M, B> + 'static,
    LR: LrScheduler + 'static,
    S: BatchSource<B>,
{
    let main = devices
        .first()
        .cloned()
        .ok_or_else(|| TrainError::Settings("no device to train on".into()))?;
    if source.batch_size() < devices.len() {
        return Err(TrainError::Settings(format!(
            "a batch of {} cannot be split over {} devices",
            source.batch_size(),
            devices.len()
        )));
    }
    let start_chunk = prepare(spec, config)?;
    let checkpoint_dir = spec.checkpoint_dir();
    if start_chunk > 0 {
        check_checkpoint::<B, M, O, LR>(&checkpoint_dir, start_chunk, &main)?;
    }
    let start_step = (start_chunk * spec.chunk()).min(spec.total_steps);
    let batch_size = source.batch_size();
    let train = Arc::new(StepLoader::<B, S>::new(
        Arc::new(source),
        spec.total_steps,
        spec.chunk(),
        start_chunk,
        main.clone(),
    ));
    let valid = Arc::new(EmptyLoader::<<M::InnerModule as InferenceStep>::Input>::default());
    let log = RunLog::new(&spec.metrics_path(), batch_size);
    let renderer = ProgressRenderer::new(log.clone(), start_step, spec.total_steps, spec.log_every);
    // burn-train stops through this handle when a checkpoint cannot be saved, and then
    // returns as if the run had finished; `stopped` turns that into an error.
    let interrupter = Interrupter::new();
    let mut training = SupervisedTraining::new(&spec.run_dir, train, valid)
        .with_interrupter(interrupter.clone())
        .with_file_checkpointer(AtomicMpkRecorder)
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(spec.keep_checkpoints.max(1)))
        .with_metric_logger(NoEpochLogs)
        .with_application_logger(None)
        .renderer(renderer)
        .metric_train(log)
        .num_epochs(spec.chunks());
    if start_chunk > 0 {
        training = training.checkpoint(start_chunk);
    }
    if devices.len() > 1 {
        training = training.with_training_strategy(TrainingStrategy::Default(
            ExecutionStrategy::multi(devices.to_vec(), MultiDeviceOptim::OptimMainDevice),
        ));
    }
    let result = training.launch(Learner::new(model, optim, schedule));
    let losses = read_losses(&spec.metrics_path()).map_err(io(&spec.metrics_path()))?;
    loss_curve(&losses, &spec.run_dir.join("loss.png"))?;
    let last_step = losses.last().map_or(0, |l| l.0);
    stopped(&interrupter, last_step, spec.total_steps)?;
    Ok(result.model)
}

/// An error when the run did not reach its last step or burn-train was interrupted.
fn stopped(
    interrupter: &Interrupter,
    last_step: usize,
    total_steps: usize,
) -> Result<(), TrainError> {
    let reason = match interrupter.get_message() {
        Some(message) => message,
        None if interrupter.should_stop() => "interrupted".to_string(),
        None if last_step < total_steps => "the training loop ended early".to_string(),
        None => return Ok(()),
    };
    Err(TrainError::Stopped {
        last_step,
        total_steps,
        reason,
    })
}
