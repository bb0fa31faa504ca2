//! The house loop, `mm_core::train::fit`, on a model small enough to check by hand:
//! - data parallelism through burn-train's multi-device strategy: one step on two CPU devices,
//!   each with half the batch, gives the same update as one step on one device with the whole
//!   batch;
//! - a checkpoint that cannot be written stops the run with an error naming the file, and the
//!   checkpoints already saved stay whole and resumable.

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::SgdConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use mm_core::train::{
    BatchSource, RunSpec, StepInfo, StepOutput, TrainError, complete_checkpoints, fit,
};

type B = Autodiff<NdArray>;

const BATCH: usize = 8;

/// Least squares with a linear model: the loss is a mean over samples, so it splits exactly.
#[derive(Module, Debug)]
struct Regressor<B: Backend> {
    linear: Linear<B>,
}

#[derive(Clone, Debug)]
struct Batch<B: Backend> {
    x: Tensor<B, 2>,
    y: Tensor<B, 2>,
    at: StepInfo,
}

impl<B: Backend> Regressor<B> {
    fn loss(&self, batch: &Batch<B>) -> Tensor<B, 1> {
        let err = self.linear.forward(batch.x.clone()) - batch.y.clone();
        (err.clone() * err).mean()
    }

    fn output(&self, batch: &Batch<B>, loss: f64) -> StepOutput {
        batch.at.output(loss)
    }
}

impl<B: AutodiffBackend> TrainStep for Regressor<B> {
    type Input = Batch<B>;
    type Output = StepOutput;

    fn step(&self, batch: Batch<B>) -> TrainOutput<StepOutput> {
        let loss = self.loss(&batch);
        let value: f64 = loss.clone().into_scalar().elem();
        let grads = (loss * batch.at.weight()).backward();
        TrainOutput::new(self, grads, self.output(&batch, value))
    }
}

impl<B: Backend> InferenceStep for Regressor<B> {
    type Input = Batch<B>;
    type Output = StepOutput;

    fn step(&self, batch: Batch<B>) -> StepOutput {
        let loss = self.loss(&batch).into_scalar().elem();
        self.output(&batch, loss)
    }
}

struct Points;

impl<B: Backend> BatchSource<B> for Points {
    type Batch = Batch<B>;

    fn batch_size(&self) -> usize {
        BATCH
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> Batch<B> {
        let (step, rows) = (at.step, at.share.rows(BATCH));
        let x: Vec<f32> = rows
            .clone()
            .flat_map(|r| [(r + step) as f32 * 0.3 - 1.0, (r * r) as f32 * 0.05])
            .collect();
        let y: Vec<f32> = rows.clone().map(|r| (r as f32).sin()).collect();
        let n = rows.len();
        Batch {
            x: Tensor::from_data(TensorData::new(x, [n, 2]), device),
            y: Tensor::from_data(TensorData::new(y, [n, 1]), device),
            at,
        }
    }
}

/// Trains from the fixed start weights per `spec` on `devices` CPU devices.
fn fit_on(
    devices: usize,
    spec: &RunSpec,
) -> Result<Regressor<<B as AutodiffBackend>::InnerBackend>, TrainError> {
    let device = Default::default();
    let model = Regressor::<B> {
        linear: LinearConfig::new(2, 1).init(&device),
    };
    // The same starting weights for every run.
    let model = model.load_record(start_record(&device));
    fit(
        spec,
        &serde_json::json!({"devices": devices}),
        model,
        SgdConfig::new().init::<B, Regressor<B>>(),
        0.1,
        Points,
        &vec![device; devices],
    )
}

fn train_on(devices: usize, dir: &std::path::Path, steps: usize) -> Vec<f32> {
    let spec = RunSpec {
        run_dir: dir.to_path_buf(),
        total_steps: steps,
        checkpoint_every: 0,
        keep_checkpoints: 1,
        resume: false,
        log_every: 1000,
    };
    let trained = fit_on(devices, &spec).unwrap();
    let mut w: Vec<f32> = trained.linear.weight.val().into_data().to_vec().unwrap();
    w.extend(
        trained
            .linear
            .bias
            .unwrap()
            .val()
            .into_data()
            .to_vec::<f32>()
            .unwrap(),
    );
    w
}

fn start_record(device: &burn::tensor::Device<B>) -> <Regressor<B> as Module<B>>::Record {
    let weight = Tensor::<B, 2>::from_floats([[0.5], [-0.25]], device);
    let bias = Tensor::<B, 1>::from_floats([0.1], device);
    Regressor {
        linear: Linear {
            weight: burn::module::Param::from_tensor(weight),
            bias: Some(burn::module::Param::from_tensor(bias)),
        },
    }
    .into_record()
}

#[test]
fn two_devices_with_half_the_batch_each_match_one_device_with_all_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    for steps in [1, 3] {
        let one = train_on(1, &tmp.path().join(format!("one-{steps}")), steps);
        let two = train_on(2, &tmp.path().join(format!("two-{steps}")), steps);
        let start = [0.5, -0.25, 0.1];
        assert!(
            one.iter().zip(start).any(|(a, b)| (a - b).abs() > 1e-3),
            "the step moved nothing"
        );
        for (a, b) in one.iter().zip(&two) {
            assert!(
                (a - b).abs() <= 1e-6,
                "{steps} steps: one device {one:?} vs two {two:?}"
            );
        }
        // Both runs log one merged line per step.
        let log =
            mm_core::train::read_losses(&tmp.path().join(format!("two-{steps}/metrics.jsonl")))
                .unwrap();
        assert_eq!(
            log.iter().map(|l| l.0).collect::<Vec<_>>(),
            (1..=steps).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_checkpoint_that_cannot_be_written_stops_the_run_with_an_error_and_keeps_the_saved_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut spec = RunSpec {
        run_dir: dir.clone(),
        total_steps: 2,
        checkpoint_every: 1,
        keep_checkpoints: 5,
        resume: false,
        log_every: 1000,
    };
    fit_on(1, &spec).unwrap();
    let checkpoints = dir.join("checkpoint");
    assert_eq!(complete_checkpoints(&checkpoints), vec![2, 1]);

    // A folder where checkpoint 3's model file goes: renaming the written file onto it fails
    // (permissions would not stop a test run as root).
    let blocked = checkpoints.join("model-3.mpk");
    std::fs::create_dir_all(blocked.join("in-the-way")).unwrap();
    spec.total_steps = 4;
    spec.resume = true;
    let err = match fit_on(1, &spec) {
        Ok(_) => panic!("a run whose checkpoint 3 cannot be written finished without an error"),
        Err(e) => e,
    };
    let message = err.to_string();
    assert!(
        matches!(err, TrainError::Stopped { total_steps: 4, .. }),
        "{message}"
    );
    assert!(
        message.contains("model-3.mpk"),
        "the error names the file: {message}"
    );

    // Nothing already saved is lost: the run resumes once the way is clear (from checkpoint 2,
    // or from 4 when burn-train ran the last step before it saw the stop).
    let kept = complete_checkpoints(&checkpoints);
    assert!(
        kept.contains(&2) && kept.contains(&1) && !kept.contains(&3),
        "{kept:?}"
    );
    std::fs::remove_dir_all(&blocked).unwrap();
    fit_on(1, &spec).unwrap();
    let steps: Vec<usize> = mm_core::train::read_losses(&dir.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .map(|l| l.0)
        .collect();
    assert_eq!(steps, vec![1, 2, 3, 4]);
}
