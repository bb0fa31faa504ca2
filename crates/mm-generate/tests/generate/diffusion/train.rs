//! Training a tiny pixel-space text-to-image model through the house loop: the run writes a
//! diffusers pipeline folder that loads and samples, held-out prompts
//! stay out of training, a resumed run ends where an uninterrupted one does, min-SNR
//! weighting reaches the loss, and the shape judge learns real colours and shapes.

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, ModuleVisitor, Param};
use burn::record::Recorder;
use burn::tensor::{Tensor, TensorData};
use mm_core::train::{AtomicMpkRecorder, RunOptions, part_path, read_losses};
use mm_data::manifest::{ImageCaption, Manifest};
use mm_generate::caption::{CaptionSet, CaptionSource, vit_processor};
use mm_generate::diffusion::eval::{ShapeEvalOptions, evaluate_shapes, save_grid};
use mm_generate::diffusion::judge::{
    ShapeJudge, judge_accuracy, parse_shape_prompt, train_or_load_judge,
};
use mm_generate::diffusion::text::TextConditioner;
use mm_generate::diffusion::train::{
    DiffusionTrainConfig, DiffusionTraining, train_diffusion, without_prompts,
};
use mm_generate::diffusion::unet::UNet2DConditionConfig;
use mm_generate::diffusion::{GenerateOptions, TextToImage};
use mm_text::{ClipTextConfig, ClipTokenizer};

type B = Flex;
type AB = Autodiff<Flex>;

/// A 32 px image of one coloured shape on white, centred at (cx, cy).
fn draw(colour: [u8; 3], shape: &str, cx: i32, cy: i32) -> image::RgbImage {
    image::RgbImage::from_fn(32, 32, |x, y| {
        let (dx, dy) = (x as i32 - cx, y as i32 - cy);
        let inside = match shape {
            "circle" => dx * dx + dy * dy <= 49,
            "rectangle" => dx.abs() <= 8 && dy.abs() <= 3,
            _ => (-6..=6).contains(&dy) && dx.abs() * 2 <= dy + 6,
        };
        image::Rgb(if inside { colour } else { [255, 255, 255] })
    })
}

/// A manifest of `n` images per (colour, shape) pair, captioned "a {colour} {shape}".
fn shapes_manifest(dir: &Path, n: usize) -> std::path::PathBuf {
    let colours = [("red", [255, 0, 0]), ("blue", [0, 0, 255])];
    let mut records = Vec::new();
    for (name, rgb) in colours {
        for shape in ["circle", "rectangle", "triangle"] {
            for i in 0..n {
                let file = format!("{name}-{shape}-{i}.png");
                let shift = (i as i32 * 5) % 9 - 4;
                draw(rgb, shape, 16 + shift, 16 - shift)
                    .save(dir.join(&file))
                    .unwrap();
                records.push(ImageCaption {
                    image: file,
                    captions: vec![format!("a {name} {shape}")],
                    label: None,
                    split: Some("train".into()),
                });
            }
        }
    }
    let path = dir.join("shapes.jsonl");
    Manifest::write(&path, &records).unwrap();
    path
}

pub fn shape_set(dir: &Path, n: usize) -> CaptionSet {
    let manifest = shapes_manifest(dir, n);
    let source = CaptionSource::new("shapes", &manifest, Some("train"));
    CaptionSet::load(&[source], &vit_processor(32)).unwrap()
}

pub fn tiny_text(device: &burn::tensor::Device<B>) -> TextConditioner<B> {
    let config = ClipTextConfig::new(16, 32, 16, 1, 2).with_max_position_embeddings(8);
    let tower = config.init::<B>(device).unwrap();
    TextConditioner::new(tower, config, ClipTokenizer::bundled())
}

pub fn tiny_config() -> DiffusionTrainConfig {
    let unet = serde_json::json!({
        "sample_size": 32, "in_channels": 3, "out_channels": 3,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
        "block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4,
        "cross_attention_dim": 16, "attention_head_dim": 2,
    });
    DiffusionTrainConfig {
        unet: UNet2DConditionConfig::from_json(&unet).unwrap(),
        batch: 4,
        steps: 4,
        warmup: 1,
        checkpoint_every: 2,
        held_out: vec!["a blue triangle".into()],
        ..DiffusionTrainConfig::default()
    }
}

/// An untrained pipeline of [`tiny_config`]'s UNet and [`tiny_text`]'s tower.
pub fn tiny_pipeline(device: &burn::tensor::Device<B>) -> TextToImage<B> {
    let config = tiny_config();
    TextToImage {
        unet: config.unet.init(device),
        unet_config: config.unet,
        vae: None,
        text: tiny_text(device),
        scheduler: config.scheduler,
    }
}

/// Every float parameter of `m`, in visiting order.
fn flat<M: Module<B>>(m: &M) -> Vec<f32> {
    struct Grab(Vec<f32>);
    impl ModuleVisitor<B> for Grab {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.extend(data.to_vec::<f32>().unwrap());
        }
    }
    let mut grab = Grab(Vec::new());
    m.visit(&mut grab);
    grab.0
}

#[test]
fn held_out_prompts_leave_the_training_set() {
    let dir = tempfile::tempdir().unwrap();
    let set = shape_set(dir.path(), 2);
    assert_eq!(set.len(), 12);
    let kept = without_prompts(set, &["a blue triangle".into()]);
    assert_eq!(kept.len(), 10);
    assert!(
        kept.captions
            .iter()
            .flatten()
            .all(|c| c != "a blue triangle")
    );
    assert_eq!(kept.images.len(), kept.paths.len());
    assert_eq!(parse_shape_prompt("a blue triangle"), Some((2, 2)));
    assert_eq!(parse_shape_prompt("a blue hexagon"), None);
    assert_eq!(parse_shape_prompt("a blue triangle now"), None);
}

#[test]
fn a_run_saves_a_pipeline_with_ema_weights_and_resumes_exactly() {
    let _seeded = crate::seeded();
    let device = Default::default();
    let data = tempfile::tempdir().unwrap();
    let runs = tempfile::tempdir().unwrap();
    let config = tiny_config();

    // The frozen text tower is random: both runs must get the same one, so it is
    // materialized before it is cloned (see `mm_core::nn::materialize`).
    let text = tiny_text(&device);
    mm_core::nn::materialize(&text.tower);
    let whole = RunOptions::new(runs.path().join("whole"));
    let trained = train_diffusion::<AB>(
        &config,
        shape_set(data.path(), 1),
        text.clone(),
        &whole,
        std::slice::from_ref(&device),
    )
    .unwrap();

    // The saved folder is a pipeline that loads and samples.
    let folder = whole.run_dir.join("final");
    for part in [
        "unet",
        "text_encoder",
        "tokenizer",
        "scheduler",
        "model_index.json",
    ] {
        assert!(folder.join(part).exists(), "{part} missing");
    }
    assert!(folder.join("mm_train_config.json").exists());
    let loaded = TextToImage::<B>::load(&folder, &device).unwrap();
    assert_eq!(flat(&loaded.unet), flat(&trained.unet));
    let init = Tensor::<B, 4>::from_data(
        TensorData::new(vec![0.3f32; 2 * 3 * 32 * 32], [2, 3, 32, 32]),
        &device,
    );
    let options = GenerateOptions {
        steps: 3,
        guidance: 3.0,
        ..GenerateOptions::default()
    };
    let image = loaded
        .generate(
            &["a red circle", "a blue triangle"],
            init,
            &options,
            &mut |_| unreachable!("DDIM at eta 0 adds no noise"),
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(image.dims(), [2, 3, 32, 32]);

    // The pipeline holds the EMA of the last checkpoint, which differs from the trained
    // weights beside it.
    let checkpoints = whole.run_dir.join("checkpoint");
    let record = Recorder::<B>::load::<<DiffusionTraining<B> as Module<B>>::Record>(
        &AtomicMpkRecorder,
        part_path(&checkpoints, "model", 2),
        &device,
    )
    .unwrap();
    let saved = DiffusionTraining::<B>::new(&trained.unet_config, &device).load_record(record);
    assert_eq!(flat(&saved.ema), flat(&trained.unet));
    assert_ne!(flat(&saved.unet), flat(&saved.ema));

    let metrics = whole.run_dir.join("metrics.jsonl");
    let uninterrupted = read_losses(&metrics).unwrap();
    assert_eq!(uninterrupted.len(), 4);

    // Removing the second checkpoint (after step 4) and `final/` leaves the folder a run
    // killed after step 2 would have left; resuming it must end on the same weights (the
    // model's initialization is not involved: the resumed run starts from the checkpoint).
    for entry in std::fs::read_dir(&checkpoints).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("-2.mpk")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    std::fs::remove_dir_all(&folder).unwrap();
    let resumed = train_diffusion::<AB>(
        &config,
        shape_set(data.path(), 1),
        text,
        &whole.clone().resumed(),
        std::slice::from_ref(&device),
    )
    .unwrap();
    // The resumed run replays steps 3 and 4 on the same batches from the same state: the
    // same losses (within 1e-5, as the CLIP resume test has) and the same weights.
    let replayed = read_losses(&metrics).unwrap();
    assert_eq!(replayed.len(), 4);
    for ((sa, la), (sb, lb)) in uninterrupted.iter().zip(&replayed) {
        assert_eq!(sa, sb);
        assert!((la - lb).abs() <= 1e-5, "step {sa}: {la} vs {lb}");
    }
    assert!(
        folder
            .join("unet/diffusion_pytorch_model.safetensors")
            .exists()
    );
    let (a, b) = (flat(&resumed.unet), flat(&trained.unet));
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "resumed weights differ by up to {worst}");
}

#[test]
fn min_snr_weighting_changes_the_loss_and_a_bad_gamma_is_refused() {
    let _seeded = crate::seeded();
    let device = Default::default();
    let data = tempfile::tempdir().unwrap();
    let runs = tempfile::tempdir().unwrap();
    let text = tiny_text(&device);
    mm_core::nn::materialize(&text.tower);
    let first_loss = |gamma: Option<f64>, name: &str| {
        let config = DiffusionTrainConfig {
            steps: 1,
            snr_gamma: gamma,
            ..tiny_config()
        };
        let run = RunOptions::new(runs.path().join(name));
        train_diffusion::<AB>(
            &config,
            shape_set(data.path(), 1),
            text.clone(),
            &run,
            std::slice::from_ref(&device),
        )
        .map(|_| read_losses(&run.run_dir.join("metrics.jsonl")).unwrap()[0].1)
    };
    // The same first batch and weights: only the per-row weights differ, and v-prediction's
    // min-SNR weights are at most 1, so the weighted loss is the smaller.
    let plain = first_loss(None, "plain").unwrap();
    let weighted = first_loss(Some(5.0), "weighted").unwrap();
    assert!(weighted < plain, "{weighted} vs {plain}");
    let saved =
        std::fs::read_to_string(runs.path().join("weighted/final/mm_train_config.json")).unwrap();
    assert!(saved.contains("\"snr_gamma\": 5.0"), "{saved}");
    let err = first_loss(Some(-1.0), "bad").unwrap_err().to_string();
    assert!(err.contains("snr_gamma"), "{err}");
}

#[test]
fn the_judge_learns_colours_and_shapes_and_scores_a_model() {
    let _seeded = crate::seeded();
    let device = Default::default();
    let data = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    let set = shape_set(data.path(), 6);
    let options = RunOptions::new(run.path().join("judge"));
    let judge: ShapeJudge<B> =
        train_or_load_judge::<AB>(set.clone(), 150, &options, &device).unwrap();
    let accuracy = judge_accuracy(&judge, &set, &device);
    assert!(accuracy >= 0.9, "judge accuracy {accuracy}");
    // A second call loads the saved judge instead of training again.
    let again: ShapeJudge<B> =
        train_or_load_judge::<AB>(set.clone(), 150, &options, &device).unwrap();
    assert_eq!(judge_accuracy(&again, &set, &device), accuracy);
    // A folder holding an older judge's layout is refused by name, not misread or replaced.
    let old = run.path().join("old-judge");
    std::fs::create_dir_all(old.join("final")).unwrap();
    std::fs::write(old.join("final/config.json"), r#"{"model": "shape-judge"}"#).unwrap();
    std::fs::write(old.join("final/model.mpk"), b"old weights").unwrap();
    let err = train_or_load_judge::<AB>(set.clone(), 150, &RunOptions::new(&old), &device)
        .map(|_: ShapeJudge<B>| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("`shape-judge`"), "{err}");
    assert_eq!(
        std::fs::read(old.join("final/model.mpk")).unwrap(),
        b"old weights"
    );

    // An untrained model is scored at every scale (trained and held-out prompts apart), and
    // its images reach the grid writer.
    let pipeline = tiny_pipeline(&device);
    let eval = ShapeEvalOptions {
        guidances: vec![0.0, 3.0],
        samples: 1,
        steps: 2,
        scheduler: Some(mm_generate::diffusion::SchedulerKind::Ddim),
        guidance_rescale: 0.7,
        thresholding: Some(mm_generate::diffusion::Thresholding {
            ratio: 0.995,
            max: 1.5,
        }),
        seed: 1,
        held_out: vec!["a blue triangle".into()],
    };
    let mut grids = 0;
    let report = evaluate_shapes(
        &pipeline,
        &judge,
        accuracy,
        &eval,
        &device,
        &mut |w, images| {
            assert_eq!(images.dims(), [24, 3, 32, 32]);
            save_grid(images, 3, 2, &run.path().join(format!("w{w}.png"))).unwrap();
            grids += 1;
        },
    )
    .unwrap();
    assert_eq!(grids, 2);
    let grid = image::open(run.path().join("w3.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (3 * 66 + 2, 8 * 66 + 2));
    assert_eq!(report.accuracy_by_guidance.len(), 2);
    assert!(report.accuracy_by_guidance.contains_key("3"));
    assert_eq!(report.held_out_scores.both.len(), 2);
    assert_eq!(
        report.sampling.guidance_rescale, 0.7,
        "the report names its rescale"
    );
    assert_eq!(
        report.sampling.thresholding.map(|t| t.max),
        Some(1.5),
        "and its thresholding"
    );
    assert_eq!(
        report.sampling.seed,
        Some(1),
        "and the seed of its starting noise"
    );
    for v in report.trained.colour.values() {
        assert!((0.0..=1.0).contains(v));
    }
}
