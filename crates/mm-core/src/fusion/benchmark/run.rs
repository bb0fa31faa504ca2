//! Training every strategy into its own run folder, and scoring the saved models.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::nn::LinearConfig;
use burn::optim::AdamConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};

use super::{
    FusionBatches, FusionBenchmarkConfig, FusionClassifier, FusionResult, FusionTask, STRATEGIES,
    build, slug, task_data,
};
use crate::fusion::FusionError;
use crate::train::{RunOptions, append_eval, fit, load_weights, read_model_config, save_model_dir};

const TASKS: [FusionTask; 2] = [FusionTask::Synergy, FusionTask::Redundancy];

/// `run_root/<task>/<strategy>/`.
fn run_dir(run_root: &Path, task: FusionTask, name: &str) -> PathBuf {
    run_root
        .join(format!("{task:?}").to_lowercase())
        .join(slug(name))
}

fn config_error(e: impl ToString) -> FusionError {
    FusionError::Config(e.to_string())
}

/// Trains every strategy on both tasks, each in `run_root/<task>/<strategy>/` (its `final/`
/// holds the model, the benchmark settings and the training time). `resume` continues each
/// run from its newest checkpoint.
pub fn train_fusion<B: AutodiffBackend>(
    cfg: &FusionBenchmarkConfig,
    run_root: &Path,
    resume: bool,
    devices: &[B::Device],
) -> Result<(), FusionError> {
    for task in TASKS {
        for name in STRATEGIES {
            let run = RunOptions {
                resume,
                ..RunOptions::new(run_dir(run_root, task, name))
            };
            train_one::<B>(name, task, cfg, &run, devices)?;
        }
    }
    Ok(())
}

/// Held-out accuracy of every strategy saved under `run_root` by [`train_fusion`], each also
/// appended to its run's `metrics.jsonl`.
pub fn evaluate_fusion<B: Backend>(
    run_root: &Path,
    device: &B::Device,
) -> Result<Vec<FusionResult>, FusionError> {
    let mut results = Vec::new();
    for task in TASKS {
        for name in STRATEGIES {
            results.push(score_one::<B>(name, task, run_root, device)?);
        }
    }
    Ok(results)
}

/// Trains every strategy on both tasks ([`train_fusion`]) and scores them
/// ([`evaluate_fusion`]).
pub fn run_fusion_benchmark<B: AutodiffBackend>(
    cfg: &FusionBenchmarkConfig,
    run_root: &Path,
    devices: &[B::Device],
) -> Result<Vec<FusionResult>, FusionError> {
    train_fusion::<B>(cfg, run_root, false, devices)?;
    let device = devices.first().expect("train_fusion checked");
    evaluate_fusion::<B::InnerBackend>(run_root, device)
}

fn classifier<B: Backend>(
    name: &str,
    cfg: &FusionBenchmarkConfig,
    device: &B::Device,
) -> Result<FusionClassifier<B>, FusionError> {
    let fusion = build::<B>(name, cfg, device)?;
    let out = fusion.as_fusion().output_dim();
    let d = cfg.d_modality;
    let model = FusionClassifier {
        fusion,
        head: LinearConfig::new(out, 2).init(device),
    };
    // One forward pass checks the widths before anything relies on them.
    model.forward(Tensor::zeros([1, d], device), Tensor::zeros([1, d], device))?;
    Ok(model)
}

fn train_one<B: AutodiffBackend>(
    name: &'static str,
    task: FusionTask,
    cfg: &FusionBenchmarkConfig,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<(), FusionError> {
    let device = devices
        .first()
        .ok_or_else(|| FusionError::Config("no device to train on".into()))?;
    let d = cfg.d_modality;
    let (x, y, labels) = task_data(task, cfg.n_train, d, cfg.seed);
    <B as Backend>::seed(device, cfg.seed);
    let model = classifier::<B>(name, cfg, device)?;
    let source = FusionBatches { x, y, labels, d };
    let spec = run.spec(cfg.steps, 0, 1);
    let mut json = serde_json::json!({ "strategy": name, "task": task, "benchmark": cfg });
    let optim = AdamConfig::new().init::<B, FusionClassifier<B>>();
    let start = Instant::now();
    let valid = fit(&spec, &json, model, optim, cfg.lr, source, devices).map_err(config_error)?;
    json["train_seconds"] = start.elapsed().as_secs_f64().into();
    save_model_dir(&run.run_dir.join("final"), &json, &valid).map_err(config_error)
}

fn score_one<B: Backend>(
    name: &'static str,
    task: FusionTask,
    run_root: &Path,
    device: &B::Device,
) -> Result<FusionResult, FusionError> {
    let run = run_dir(run_root, task, name);
    let dir = run.join("final");
    let json = read_model_config(&dir).map_err(config_error)?;
    let cfg: FusionBenchmarkConfig =
        serde_json::from_value(json["benchmark"].clone()).map_err(|e| {
            config_error(format!(
                "{}: not a fusion benchmark run: {e}",
                dir.display()
            ))
        })?;
    let model =
        load_weights(&dir, classifier::<B>(name, &cfg, device)?, device).map_err(config_error)?;
    let (d, n) = (cfg.d_modality, cfg.n_test);
    let (xt, yt, lt) = task_data(task, n, d, cfg.seed + 1);
    let logits = model.forward(
        Tensor::from_data(TensorData::new(xt, [n, d]), device),
        Tensor::from_data(TensorData::new(yt, [n, d]), device),
    )?;
    let correct = logits
        .argmax(1)
        .reshape([n])
        .equal(Tensor::from_data(TensorData::new(lt, [n]), device))
        .int()
        .sum()
        .into_scalar();
    let accuracy = correct.elem::<f64>() / n as f64;
    let metrics = run.join("metrics.jsonl");
    if metrics.is_file() {
        append_eval(
            &metrics,
            &serde_json::json!({ "accuracy": accuracy, "n_test": n }),
        )
        .map_err(config_error)?;
    }
    Ok(FusionResult {
        strategy: name,
        task,
        accuracy,
        fusion_params: model.fusion.num_params(),
        train_seconds: json["train_seconds"].as_f64().unwrap_or(f64::NAN),
    })
}
