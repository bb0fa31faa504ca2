//! Training the video classifiers through the house loop
//! (`mm_core::train::fit`, on burn-train). Each step draws `batch` clips from an RNG seeded by
//! `(seed, step)`, so a resumed run sees the batches of an uninterrupted one. Held-out
//! figures: [`crate::evaluate`].

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use mm_core::nn::ConfigError;
use mm_core::train::AdamWConfig;
use mm_core::train::{
    BatchSource, RunOptions, StepInfo, StepOutput, TrainError, WarmupCosine, fit, load_weights,
    read_model_config, save_model_dir,
};
use mm_data::rng::SplitMix64;
use serde::{Deserialize, Serialize};

pub use crate::evaluate::{VideoReport, evaluate_video};
use crate::models::{
    C3d, C3dConfig, CnnLstm, CnnLstmConfig, FrameBaseline, R3d, R3dConfig, VideoClassifier,
};
use crate::tasks::{Strip, VideoTask, clip_values, random_clip};

/// Which classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoModelKind {
    /// The guide's CNN+LSTM (ResNet-18 layout per frame, 2-layer LSTM).
    Lstm,
    /// R3D-18 (torchvision's layout).
    R3d,
    /// The guide's 3D CNN.
    C3d,
    /// The single-frame baseline (frame features averaged over time).
    Frame,
}

/// Everything a video run is made of (`final/config.json` holds it with the class names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoTrainConfig {
    /// The classifier.
    pub model: VideoModelKind,
    /// What it learns to tell.
    pub task: VideoTask,
    /// Frames per clip.
    pub frames: usize,
    /// Frame width and height.
    pub size: u32,
    /// First-stage width of every model (64 is the published one).
    pub width: usize,
    /// LSTM hidden size.
    pub hidden: usize,
    /// Pooling grid of the frame features of the CNN+LSTM and the frame baseline (1: the
    /// guide's global average; 2: a 2x2 map, so the LSTM sees where things are).
    #[serde(default = "one")]
    pub grid: usize,
    /// Clips per step.
    pub batch: usize,
    /// Steps.
    pub steps: usize,
    /// AdamW learning rate (the peak of the schedule).
    pub lr: f64,
    /// Linear warm-up steps before a cosine decay to zero; `null` (the folders of earlier
    /// runs) keeps the rate constant.
    #[serde(default)]
    pub warmup: Option<usize>,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Seed of weights and batches.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
    /// Footage clips (training and test) that move less than this are left out: the mean
    /// absolute difference of consecutive frames, in 8-bit levels (`tasks::clip_motion`).
    /// 0 keeps every clip.
    #[serde(default)]
    pub min_motion: f32,
    /// Mirror each training clip left to right with probability 1/2 (footage tasks only: the
    /// motion task's labels are directions). Test clips are never mirrored.
    #[serde(default)]
    pub mirror: bool,
}

impl VideoTrainConfig {
    /// The defaults for `model` on `task` (small enough to train on two CPU cores).
    pub fn new(model: VideoModelKind, task: VideoTask) -> Self {
        VideoTrainConfig {
            model,
            task,
            frames: 8,
            size: 64,
            width: 16,
            hidden: 128,
            grid: 1,
            batch: 16,
            steps: 300,
            lr: 2e-3,
            warmup: Some(20),
            weight_decay: 1e-4,
            seed: 7,
            checkpoint_every: 100,
            keep_checkpoints: 2,
            min_motion: 0.0,
            mirror: false,
        }
    }
}

fn one() -> usize {
    1
}

/// The four classifiers behind one module type.
#[derive(Module, Debug)]
pub enum VideoNet<B: Backend> {
    /// CNN+LSTM.
    Lstm(CnnLstm<B>),
    /// R3D-18.
    R3d(R3d<B>),
    /// 3D CNN.
    C3d(C3d<B>),
    /// Single-frame baseline.
    Frame(FrameBaseline<B>),
}

impl<B: Backend> VideoNet<B> {
    /// Fresh weights for `config` with `classes` outputs.
    pub fn new(
        config: &VideoTrainConfig,
        classes: usize,
        device: &B::Device,
    ) -> Result<Self, ConfigError> {
        let lstm = CnnLstmConfig::new(classes)
            .with_cnn_width(config.width)
            .with_hidden(config.hidden)
            .with_grid(config.grid);
        Ok(match config.model {
            VideoModelKind::Lstm => VideoNet::Lstm(lstm.init(device)?),
            VideoModelKind::Frame => VideoNet::Frame(lstm.init_baseline(device)?),
            VideoModelKind::R3d => VideoNet::R3d(
                R3dConfig::new(classes)
                    .with_base_width(config.width)
                    .init(device)?,
            ),
            VideoModelKind::C3d => VideoNet::C3d(
                C3dConfig::new(classes)
                    .with_width(config.width)
                    .init(device)?,
            ),
        })
    }
}

impl<B: Backend> VideoClassifier<B> for VideoNet<B> {
    fn logits(&self, clips: Tensor<B, 5>) -> Tensor<B, 2> {
        match self {
            VideoNet::Lstm(m) => m.logits(clips),
            VideoNet::R3d(m) => m.logits(clips),
            VideoNet::C3d(m) => m.logits(clips),
            VideoNet::Frame(m) => m.logits(clips),
        }
    }
}

/// One device's share of a step: clips `[rows, time, 3, size, size]` and class indices.
#[derive(Debug, Clone)]
pub struct VideoBatch<B: Backend> {
    /// The clips.
    pub x: Tensor<B, 5>,
    /// Class per clip.
    pub y: Tensor<B, 1, Int>,
    /// Where in the step this share is.
    pub at: StepInfo,
}

/// Builds any step's clips from the step number.
pub struct VideoBatches {
    strips: Arc<Vec<Strip>>,
    config: VideoTrainConfig,
}

/// Clips `[n, time, 3, size, size]` from `(strip, indices)` picks, those marked in `mirrored`
/// (if given) flipped left to right.
pub(crate) fn stack<B: Backend>(
    strips: &[Strip],
    picks: &[(usize, Vec<usize>, usize)],
    mirrored: Option<&[bool]>,
    size: u32,
    device: &B::Device,
) -> (Tensor<B, 5>, Tensor<B, 1, Int>) {
    let t = picks.first().map_or(0, |p| p.1.len());
    let x: Vec<f32> = picks
        .iter()
        .enumerate()
        .flat_map(|(i, (s, idx, _))| {
            let mirror = mirrored.is_some_and(|m| m[i]);
            clip_values(&strips[*s], idx, mirror)
        })
        .collect();
    let y: Vec<i64> = picks.iter().map(|p| p.2 as i64).collect();
    let s = size as usize;
    (
        Tensor::from_data(TensorData::new(x, [picks.len(), t, 3, s, s]), device),
        Tensor::from_data(TensorData::new(y, [picks.len()]), device),
    )
}

impl<B: Backend> BatchSource<B> for VideoBatches {
    type Batch = VideoBatch<B>;

    fn batch_size(&self) -> usize {
        self.config.batch
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> VideoBatch<B> {
        let c = &self.config;
        let mut rng = SplitMix64::stream(c.seed, at.step as u64);
        let picks: Vec<_> = (0..c.batch)
            .map(|_| random_clip(c.task, &self.strips, c.frames, c.min_motion, &mut rng))
            .collect();
        // Drawn after the clips, and only when asked, so runs without mirroring see the
        // batches they saw before it existed.
        let mirrored: Vec<bool> = if c.mirror {
            (0..c.batch).map(|_| rng.next_u64() & 1 == 1).collect()
        } else {
            vec![false; c.batch]
        };
        let rows = at.share.rows(c.batch);
        let (x, y) = stack(
            &self.strips,
            &picks[rows.clone()],
            Some(&mirrored[rows]),
            c.size,
            device,
        );
        VideoBatch { x, y, at }
    }
}

fn loss_and_output<B: Backend>(
    model: &VideoNet<B>,
    batch: &VideoBatch<B>,
) -> (Tensor<B, 1>, StepOutput) {
    batch
        .at
        .classification(model.logits(batch.x.clone()), batch.y.clone())
}

impl<B: AutodiffBackend> TrainStep for VideoNet<B> {
    type Input = VideoBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: VideoBatch<B>) -> TrainOutput<StepOutput> {
        let (loss, out) = loss_and_output(self, &batch);
        TrainOutput::new(self, (loss * batch.at.weight()).backward(), out)
    }
}

impl<B: Backend> InferenceStep for VideoNet<B> {
    type Input = VideoBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: VideoBatch<B>) -> StepOutput {
        loss_and_output(self, &batch).1
    }
}

/// What `final/config.json` of a video run holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VideoFolder {
    /// The run's settings.
    pub config: VideoTrainConfig,
    /// Class names, in the order of the head's outputs.
    pub classes: Vec<String>,
}

/// Trains on `train` on `devices`, writing the run folder and `final/`.
pub fn train_video<B: AutodiffBackend>(
    config: &VideoTrainConfig,
    train: Vec<Strip>,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<VideoNet<B::InnerBackend>, TrainError> {
    let main = devices
        .first()
        .ok_or_else(|| TrainError::Settings("no device to train on".into()))?;
    if train.is_empty() {
        return Err(TrainError::Settings(
            "the training split has no clips".into(),
        ));
    }
    if !(config.min_motion.is_finite() && config.min_motion >= 0.0) {
        return Err(TrainError::Settings(format!(
            "min_motion must be a number of 8-bit levels, 0 or more, not {}",
            config.min_motion
        )));
    }
    if config.mirror && config.task == VideoTask::Motion {
        return Err(TrainError::Settings(
            "mirror cannot be used with the motion task: its labels are directions".into(),
        ));
    }
    <B as Backend>::seed(main, config.seed);
    let classes = config.task.classes();
    let model =
        VideoNet::<B>::new(config, classes.len(), main).map_err(|e| TrainError::Settings(e.0))?;
    let optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init::<B, VideoNet<B>>();
    let folder = VideoFolder {
        config: config.clone(),
        classes,
    };
    let json = serde_json::to_value(&folder).expect("configs serialize");
    let spec = run.spec(
        config.steps,
        config.checkpoint_every,
        config.keep_checkpoints,
    );
    let source = VideoBatches {
        strips: Arc::new(train),
        config: config.clone(),
    };
    let model = match config.warmup {
        Some(warmup) => {
            let schedule = WarmupCosine::new(config.lr, warmup, config.steps);
            fit(&spec, &json, model, optim, schedule, source, devices)?
        }
        None => fit(&spec, &json, model, optim, config.lr, source, devices)?,
    };
    save_model_dir(&run.run_dir.join("final"), &json, &model)?;
    Ok(model)
}

/// Loads a video run's `final/` folder.
pub fn load_video<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(VideoNet<B>, VideoFolder), TrainError> {
    let folder: VideoFolder = serde_json::from_value(read_model_config(dir)?).map_err(|e| {
        TrainError::Settings(format!(
            "{}: not a video classifier folder: {e}",
            dir.join("config.json").display()
        ))
    })?;
    let model = VideoNet::new(&folder.config, folder.classes.len(), device)
        .map_err(|e| TrainError::Settings(e.0))?;
    Ok((load_weights(dir, model, device)?, folder))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    #[test]
    fn the_pooling_grid_reaches_the_frame_models() {
        let device = Default::default();
        let clips = Tensor::<NdArray, 5>::zeros([2, 3, 3, 64, 64], &device);
        for kind in [VideoModelKind::Lstm, VideoModelKind::Frame] {
            let mut config = VideoTrainConfig::new(kind, VideoTask::Motion);
            config.width = 4;
            config.hidden = 8;
            config.grid = 2;
            let net = VideoNet::<NdArray>::new(&config, 5, &device).unwrap();
            let grid = match &net {
                VideoNet::Lstm(m) => m.grid,
                VideoNet::Frame(m) => m.grid,
                _ => unreachable!(),
            };
            assert_eq!(grid, 2);
            assert_eq!(net.logits(clips.clone()).dims(), [2, 5]);
        }
    }
}
