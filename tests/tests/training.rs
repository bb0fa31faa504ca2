//! End-to-end training on a generated shapes dataset through the house loop: a few steps lower
//! the loss, and a resumed run takes exactly the steps of an uninterrupted one. A training
//! process killed mid-run (SIGKILL) is `xtask stress`'s case (`xtask/tests/cli/stress.rs`):
//! it kills the real `train clip` and checks every resumed loss against an uninterrupted run.

use std::path::Path;

use burn::backend::{Autodiff, NdArray};
use mm_core::train::{complete_checkpoints, read_losses};
use mm_data::manifest::{ImageCaption, Manifest};
use mm_retrieval::{CrossModalRetrieval, ExactIndex};
use mm_tests::{shapes_dataset, tiny_clip, tiny_clip_run};
use mm_text::{ClipTokenizer, TextBatch};
use mm_vision::ClipImageProcessor;
use mm_vl::checkpoint::load_model;
use mm_vl::data::ImageTextSet;
use mm_vl::eval::evaluate;
use mm_vl::info::clip_infonce_bound;
use mm_vl::train::{ClipTrainConfig, RunOptions, TrainError, train};

type B = Autodiff<NdArray>;

fn setup(dir: &Path) -> ImageTextSet {
    let manifest = Manifest::<ImageCaption>::read(shapes_dataset(dir, 16)).unwrap();
    ImageTextSet::load(&manifest, &ClipImageProcessor::clip(16), None).unwrap()
}

fn config(steps: usize) -> ClipTrainConfig {
    tiny_clip_run(steps)
}

fn train_run(
    cfg: &ClipTrainConfig,
    data: &ImageTextSet,
    run: &RunOptions,
) -> Result<Vec<(usize, f64)>, TrainError> {
    train::<B>(
        cfg,
        data,
        &ClipTokenizer::bundled(),
        run,
        &[Default::default()],
    )?;
    Ok(read_losses(&run.run_dir.join("metrics.jsonl")).unwrap())
}

fn run(cfg: &ClipTrainConfig, data: &ImageTextSet, dir: &Path, resume: bool) -> Vec<(usize, f64)> {
    let mut options = RunOptions::new(dir);
    options.resume = resume;
    train_run(cfg, data, &options).unwrap()
}

fn assert_same_losses(a: &[(usize, f64)], b: &[(usize, f64)]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for ((sa, la), (sb, lb)) in a.iter().zip(b) {
        assert_eq!(sa, sb);
        assert!((la - lb).abs() <= 1e-5, "step {sa}: {la} vs {lb}");
    }
}

#[test]
fn a_few_steps_lower_the_loss_and_write_a_loadable_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = setup(tmp.path());
    let run_dir = tmp.path().join("run");
    // One batch holds the whole set, so every step's loss is over the same 16 pairs.
    let losses = run(&config(40), &data, &run_dir, false);
    assert_eq!(losses.len(), 40);
    assert!(run_dir.join("loss.png").is_file());
    let (first, last) = (losses[0].1, losses.last().unwrap().1);
    assert!(last < 0.8 * first, "loss did not drop: {losses:?}");
    let (model, cfg) = load_model::<NdArray>(&run_dir.join("final"), &Default::default()).unwrap();
    assert_eq!(cfg, tiny_clip());
    let report = evaluate(&model, &ClipTokenizer::bundled(), &data, &["a {}"], 8).unwrap();
    assert_eq!(report.n_test, 16);
    // The same Recall@K through the guide's CrossModalRetrieval: the two towers as `Encoder`s
    // filling exact indexes, each modality searched with the other.
    let device = Default::default();
    let mut retrieval = CrossModalRetrieval::new(
        Box::new(ExactIndex::<NdArray>::new(16, &device)),
        Box::new(ExactIndex::<NdArray>::new(16, &device)),
    )
    .unwrap();
    let all: Vec<usize> = (0..16).collect();
    let pixels = all
        .chunks(8)
        .map(|c| data.pixels(c, None).to_tensor::<NdArray>(&device));
    retrieval.index_images(&model.vision_model, pixels).unwrap();
    let (ids, eot_positions) = ClipTokenizer::bundled()
        .encode_batch(&data.primary_captions(), model.context_length())
        .unwrap()
        .to_tensors::<NdArray>(&device);
    let texts = [TextBatch { ids, eot_positions }];
    retrieval.index_texts(&model.text_model, texts).unwrap();
    let recall = retrieval.recall_at_k(&all, &[1, 5, 10]).unwrap();
    assert_eq!(
        recall.image_to_text,
        [report.i2t_r1, report.i2t_r5, report.i2t_r10]
    );
    assert_eq!(
        recall.text_to_image,
        [report.t2i_r1, report.t2i_r5, report.t2i_r10]
    );
    // Trained on these very pairs: retrieval must beat chance (10/16 at R@10 is chance).
    assert!(
        report.i2t_r1 > 1.0 / 16.0 && report.t2i_r1 > 1.0 / 16.0,
        "{report:?}"
    );
    // What `eval info` reports: the model now shows information between images and captions.
    let bound = clip_infonce_bound(&model, &ClipTokenizer::bundled(), &data, 16, 0).unwrap();
    assert_eq!(bound.batches, 1);
    assert!(
        bound.bound_x_to_y > 0.0 && bound.bound_y_to_x > 0.0,
        "{bound:?}"
    );
    assert!(bound.bound_x_to_y <= bound.log_n && bound.bound_y_to_x <= bound.log_n);
}

#[test]
fn resume_takes_the_same_steps_as_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = setup(tmp.path());
    let cfg = config(6);
    let whole = run(&cfg, &data, &tmp.path().join("whole"), false);
    assert_eq!(
        whole.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );

    // Lose the last checkpoint and the final model, as a crash after step 4 would.
    let split_dir = tmp.path().join("split");
    run(&cfg, &data, &split_dir, false);
    let ckpt = split_dir.join("checkpoint");
    assert_eq!(complete_checkpoints(&ckpt), vec![3, 2]);
    for part in ["model", "optim", "scheduler"] {
        std::fs::remove_file(ckpt.join(format!("{part}-3.mpk"))).unwrap();
    }
    std::fs::remove_dir_all(split_dir.join("final")).unwrap();
    let resumed = run(&cfg, &data, &split_dir, true);
    assert_same_losses(&whole, &resumed);
    assert!(split_dir.join("final/model.mpk").is_file());
}

#[test]
fn a_model_folder_whose_weights_disagree_with_its_config_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = setup(tmp.path());
    let dir = tmp.path().join("run");
    run(&config(2), &data, &dir, false);
    let path = dir.join("final/config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["text_config"]["intermediate_size"] = 48.into();
    std::fs::write(&path, value.to_string()).unwrap();
    let err = load_model::<NdArray>(&dir.join("final"), &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("text_model.encoder.layers.0.mlp.fc1.weight") && err.contains("has shape"),
        "{err}"
    );
}

#[test]
fn resume_refuses_missing_or_mismatched_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let data = setup(tmp.path());
    let dir = tmp.path().join("run");
    let err = train_run(&config(2), &data, &RunOptions::new(&dir).resumed()).unwrap_err();
    assert!(err.to_string().contains("no checkpoint"), "{err}");
    run(&config(2), &data, &dir, false);
    let mut other = config(4);
    other.model.text_config.num_hidden_layers = 1;
    let err = train_run(&other, &data, &RunOptions::new(&dir).resumed()).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Run(mm_core::train::TrainError::ConfigMismatch { .. })
        ),
        "{err}"
    );
    // The refusal names the setting that differs, with both values.
    let text = err.to_string();
    assert!(
        text.contains("text_config.num_hidden_layers: saved 2, now 1"),
        "{text}"
    );
}
