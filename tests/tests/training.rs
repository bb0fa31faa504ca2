//! End-to-end training on a generated shapes dataset: a few steps lower the loss, checkpoints
//! are written atomically, and a run resumed from a checkpoint takes exactly the steps the
//! uninterrupted run takes.

use std::ops::ControlFlow;
use std::path::Path;

use burn::backend::{Autodiff, NdArray};
use mm_core::manifest::Manifest;
use mm_retrieval::{CrossModalRetrieval, ExactIndex};
use mm_tests::{shapes_dataset, tiny_clip};
use mm_text::{ClipTokenizer, TextBatch};
use mm_vision::ClipImageProcessor;
use mm_vl::checkpoint::{latest_checkpoint, load_model};
use mm_vl::data::ImageTextSet;
use mm_vl::eval::evaluate;
use mm_vl::info::clip_infonce_bound;
use mm_vl::train::{ClipTrainConfig, StepReport, TrainError, TrainObserver, TrainSettings, train};

type B = Autodiff<NdArray>;

/// Records losses; stops the run after `stop_after` steps when set.
struct Recorder {
    losses: Vec<(usize, f64)>,
    stop_after: Option<usize>,
}

impl TrainObserver for Recorder {
    fn on_step(&mut self, r: &StepReport) -> ControlFlow<()> {
        self.losses.push((r.step, r.loss));
        if self.stop_after == Some(r.step) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

fn setup(dir: &Path) -> ImageTextSet {
    let manifest = Manifest::read(shapes_dataset(dir, 16)).unwrap();
    ImageTextSet::load(&manifest, &ClipImageProcessor::clip(16), None).unwrap()
}

fn config(steps: usize) -> ClipTrainConfig {
    let train = TrainSettings::new()
        .with_batch_size(16)
        .with_steps(steps)
        .with_lr(3e-3)
        .with_warmup_steps(2)
        .with_checkpoint_every(2)
        .with_max_shift(0);
    ClipTrainConfig::new(tiny_clip(), train)
}

fn run(
    cfg: &ClipTrainConfig,
    data: &ImageTextSet,
    dir: &Path,
    resume: bool,
    stop: Option<usize>,
) -> Vec<(usize, f64)> {
    let mut rec = Recorder {
        losses: Vec::new(),
        stop_after: stop,
    };
    train::<B>(
        cfg,
        data,
        &ClipTokenizer::bundled(),
        dir,
        resume,
        &Default::default(),
        &mut rec,
    )
    .unwrap();
    rec.losses
}

#[test]
fn a_few_steps_lower_the_loss_and_write_a_loadable_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = setup(tmp.path());
    let run_dir = tmp.path().join("run");
    // One batch holds the whole set, so every step's loss is over the same 16 pairs.
    let losses = run(&config(40), &data, &run_dir, false, None);
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
    let cfg = config(4);
    let whole = run(&cfg, &data, &tmp.path().join("whole"), false, None);

    let split_dir = tmp.path().join("split");
    let before = run(&cfg, &data, &split_dir, false, Some(2));
    assert_eq!(before.len(), 2);
    let ckpt = latest_checkpoint(&split_dir).unwrap().unwrap();
    assert!(ckpt.ends_with("step-00000002"), "{}", ckpt.display());
    assert!(
        !split_dir.join("final").exists(),
        "an interrupted run must not write final/"
    );
    let after = run(&cfg, &data, &split_dir, true, None);
    assert_eq!(after.iter().map(|s| s.0).collect::<Vec<_>>(), vec![3, 4]);
    for ((step, a), (_, b)) in whole[2..].iter().zip(&after) {
        assert!(
            (a - b).abs() <= 1e-6,
            "step {step}: uninterrupted {a} vs resumed {b}"
        );
    }
}

#[test]
fn a_model_folder_whose_weights_disagree_with_its_config_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = setup(tmp.path());
    let dir = tmp.path().join("run");
    run(&config(2), &data, &dir, false, None);
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
    let mut rec = Recorder {
        losses: Vec::new(),
        stop_after: None,
    };
    let tok = ClipTokenizer::bundled();
    let err = train::<B>(
        &config(2),
        &data,
        &tok,
        &dir,
        true,
        &Default::default(),
        &mut rec,
    )
    .unwrap_err();
    assert!(err.to_string().contains("no checkpoint"), "{err}");
    run(&config(2), &data, &dir, false, None);
    let mut other = config(4);
    other.model.text_config.num_hidden_layers = 1;
    let err = train::<B>(
        &other,
        &data,
        &tok,
        &dir,
        true,
        &Default::default(),
        &mut rec,
    )
    .unwrap_err();
    assert!(matches!(err, TrainError::ConfigMismatch { .. }), "{err}");
}
