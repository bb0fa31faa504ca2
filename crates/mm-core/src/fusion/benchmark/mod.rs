//! `cargo xtask eval fusion`: every strategy trained on two synthetic two-modality tasks, one
//! whose label is an interaction of the modalities (XOR-like synergy) and one whose label both
//! modalities carry (redundancy). Each strategy trains through the house loop
//! ([`crate::train::fit`]), full-batch, in a run folder of its own.

use burn::config::Config;
use burn::module::Module;
use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use serde::Serialize;

mod run;

pub use run::{evaluate_fusion, run_fusion_benchmark, train_fusion};

use super::{
    BilinearFusion, BilinearFusionConfig, CrossModalAttention, CrossModalAttentionConfig,
    EarlyFusion, EarlyFusionConfig, Fusion, FusionError, LateFusion, LateFusionConfig, LateMode,
    LowRankFusion, LowRankFusionConfig, TensorFusion, TensorFusionConfig,
};
use crate::train::{BatchSource, StepInfo, StepOutput};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use mm_data::rng::SplitMix64;

/// The two tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FusionTask {
    /// `label = [x_0 > 0] XOR [y_0 > 0]`: neither modality alone says anything.
    Synergy,
    /// `label = [s > 0]` where `x_0 = s + noise` and `y_0 = s + noise`.
    Redundancy,
}

/// Settings of the benchmark.
#[derive(Config, Debug)]
pub struct FusionBenchmarkConfig {
    /// Width of each modality.
    #[config(default = 8)]
    pub d_modality: usize,
    /// Fused width `h` (hidden width of every strategy but tensor fusion).
    #[config(default = 16)]
    pub hidden: usize,
    /// Rank of low-rank fusion.
    #[config(default = 4)]
    pub rank: usize,
    /// Training samples.
    #[config(default = 4000)]
    pub n_train: usize,
    /// Held-out samples.
    #[config(default = 2000)]
    pub n_test: usize,
    /// Full-batch Adam steps.
    #[config(default = 300)]
    pub steps: usize,
    /// Adam learning rate.
    #[config(default = 1e-2)]
    pub lr: f64,
    /// Seed of data and initialization.
    #[config(default = 0)]
    pub seed: u64,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct FusionResult {
    /// Strategy name.
    pub strategy: &'static str,
    /// Task.
    pub task: FusionTask,
    /// Held-out accuracy.
    pub accuracy: f64,
    /// Parameters of the fusion module alone.
    pub fusion_params: usize,
    /// Training wall time in seconds.
    pub train_seconds: f64,
}

/// Any strategy, so one classifier type trains them all.
// A handful are built per run; boxing the larger variants would buy nothing measurable.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AnyFusion<B: Backend> {
    /// Concatenation.
    Early(EarlyFusion<B>),
    /// Sum or product of projections.
    Late(LateFusion<B>),
    /// Bilinear forms.
    Bilinear(BilinearFusion<B>),
    /// Cross-modal attention.
    Attention(CrossModalAttention<B>),
    /// Outer product.
    Tensor(TensorFusion<B>),
    /// Low-rank outer product.
    LowRank(LowRankFusion<B>),
}

impl<B: Backend> AnyFusion<B> {
    fn as_fusion(&self) -> &dyn Fusion<B> {
        match self {
            Self::Early(f) => f,
            Self::Late(f) => f,
            Self::Bilinear(f) => f,
            Self::Attention(f) => f,
            Self::Tensor(f) => f,
            Self::LowRank(f) => f,
        }
    }
}

/// A fusion strategy followed by a linear classifier.
#[derive(Module, Debug)]
pub struct FusionClassifier<B: Backend> {
    fusion: AnyFusion<B>,
    head: Linear<B>,
}

impl<B: Backend> FusionClassifier<B> {
    /// # Shapes
    /// - `x`, `y`: `[batch, d_modality]` -> logits `[batch, 2]`
    pub fn forward(&self, x: Tensor<B, 2>, y: Tensor<B, 2>) -> Result<Tensor<B, 2>, FusionError> {
        Ok(self.head.forward(self.fusion.as_fusion().fuse(&[x, y])?))
    }
}

/// The strategies compared, by name.
pub const STRATEGIES: [&str; 7] = [
    "early (concat)",
    "late (sum)",
    "late (product)",
    "bilinear",
    "cross-attention",
    "tensor",
    "low-rank tensor",
];

/// Builds strategy `name` for two modalities of width `d`.
pub fn build<B: Backend>(
    name: &str,
    cfg: &FusionBenchmarkConfig,
    device: &B::Device,
) -> Result<AnyFusion<B>, FusionError> {
    let (d, h) = (cfg.d_modality, cfg.hidden);
    Ok(match name {
        "early (concat)" => AnyFusion::Early(EarlyFusionConfig::new(vec![d, d], h).init(device)),
        "late (sum)" => AnyFusion::Late(LateFusionConfig::new(vec![d, d], h).init(device)),
        "late (product)" => AnyFusion::Late(
            LateFusionConfig::new(vec![d, d], h)
                .with_mode(LateMode::Product)
                .init(device),
        ),
        "bilinear" => AnyFusion::Bilinear(BilinearFusionConfig::new(d, d, h).init(device)),
        "cross-attention" => {
            let tokens = if d.is_multiple_of(4) { 4 } else { 1 };
            AnyFusion::Attention(
                CrossModalAttentionConfig::new(d / tokens, d / tokens, h)
                    .with_query_tokens(tokens)
                    .with_context_tokens(tokens)
                    .init(device)?,
            )
        }
        "tensor" => AnyFusion::Tensor(TensorFusionConfig::new(vec![d, d]).init()?),
        "low-rank tensor" => {
            AnyFusion::LowRank(LowRankFusionConfig::new(vec![d, d], h, cfg.rank).init(device)?)
        }
        other => return Err(FusionError::Config(format!("unknown strategy {other}"))),
    })
}

/// Seeded samples of `task`: `(x [n, d], y [n, d], labels [n])`.
pub fn task_data(
    task: FusionTask,
    n: usize,
    d: usize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Vec<i64>) {
    let mut rng = SplitMix64::new(seed);
    let (mut x, mut y, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let mut xs: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
        let mut ys: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
        let label = match task {
            FusionTask::Synergy => (xs[0] > 0.0) != (ys[0] > 0.0),
            FusionTask::Redundancy => {
                let s = rng.normal();
                xs[0] = s + 0.3 * xs[0];
                ys[0] = s + 0.3 * ys[0];
                s > 0.0
            }
        };
        x.extend(xs.iter().map(|&v| v as f32));
        y.extend(ys.iter().map(|&v| v as f32));
        labels.push(label as i64);
    }
    (x, y, labels)
}

/// One device's share of the (full) training batch.
#[derive(Debug, Clone)]
pub struct FusionBatch<B: Backend> {
    /// Modality X rows.
    pub x: Tensor<B, 2>,
    /// Modality Y rows.
    pub y: Tensor<B, 2>,
    /// Labels.
    pub labels: Tensor<B, 1, Int>,
    /// The step, this device's share of it, and the step's size.
    pub at: StepInfo,
}

/// Every step is the whole training set (full-batch Adam, as the benchmark specifies).
pub struct FusionBatches {
    x: Vec<f32>,
    y: Vec<f32>,
    labels: Vec<i64>,
    d: usize,
}

impl<B: Backend> BatchSource<B> for FusionBatches {
    type Batch = FusionBatch<B>;

    fn batch_size(&self) -> usize {
        self.labels.len()
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> FusionBatch<B> {
        let rows = at.share.rows(self.labels.len());
        let d = self.d;
        let m = rows.len();
        FusionBatch {
            x: Tensor::from_data(
                TensorData::new(self.x[rows.start * d..rows.end * d].to_vec(), [m, d]),
                device,
            ),
            y: Tensor::from_data(
                TensorData::new(self.y[rows.start * d..rows.end * d].to_vec(), [m, d]),
                device,
            ),
            labels: Tensor::from_data(
                TensorData::new(self.labels[rows.clone()].to_vec(), [m]),
                device,
            ),
            at,
        }
    }
}

impl<B: Backend> FusionClassifier<B> {
    fn loss_and_output(&self, batch: &FusionBatch<B>) -> (Tensor<B, 1>, StepOutput) {
        let logits = self
            .forward(batch.x.clone(), batch.y.clone())
            .expect("input widths are checked before training");
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, batch.labels.clone());
        let out = batch.at.output(loss.clone().into_scalar().elem());
        (loss, out)
    }
}

impl<B: AutodiffBackend> TrainStep for FusionClassifier<B> {
    type Input = FusionBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: FusionBatch<B>) -> TrainOutput<StepOutput> {
        let (loss, out) = self.loss_and_output(&batch);
        TrainOutput::new(self, (loss * batch.at.weight()).backward(), out)
    }
}

impl<B: Backend> InferenceStep for FusionClassifier<B> {
    type Input = FusionBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: FusionBatch<B>) -> StepOutput {
        self.loss_and_output(&batch).1
    }
}

/// A folder name for a strategy: `late (sum)` -> `late-sum`.
pub fn slug(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}
