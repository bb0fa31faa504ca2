//! The captioner's training batches. Colour augmentation: off, a step's batch is what it was
//! before augmentation existed; on, the same images and captions come with changed pixels,
//! the same ones again when the step is drawn again (a resumed run sees the same batches); an
//! out-of-range setting is refused before training (`train.rs`). Source weights: each source
//! is drawn in proportion to its weight, 0 leaves it out, and a weight for a source that does
//! not exist, or a negative one, is a named error; the self-critical phase draws by the same
//! weights.

use std::path::Path;
use std::sync::Arc;

use burn::backend::Flex;
use burn::tensor::Tensor;
use mm_core::train::{BatchSource, Share, StepInfo};
use mm_generate::caption::scst::{Rewards, ScstBatch, ScstBatches};
use mm_generate::caption::train::{
    CaptionBatch, CaptionBatches, CaptionTrainConfig, SourceDraw, caption_tokenizer,
};
use mm_generate::caption::{CaptionSet, CaptionSource, vit_processor};
use mm_vl::augment::ColourAugment;

use super::train::{colour_set, write_set};

type B = Flex;

/// Batches of 6, no shift, seed 20, with `augment` and `weights`.
fn config(augment: ColourAugment, weights: &[(&str, f64)]) -> CaptionTrainConfig {
    CaptionTrainConfig {
        batch: 6,
        seed: 20,
        max_shift: 0,
        augment,
        source_weights: weights.iter().map(|&(n, w)| (n.to_string(), w)).collect(),
        ..Default::default()
    }
}

fn batches(set: &Arc<CaptionSet>, augment: ColourAugment) -> CaptionBatches {
    let tokenizer = caption_tokenizer(set).unwrap();
    CaptionBatches::new(set.clone(), &tokenizer, 8, &config(augment, &[])).unwrap()
}

fn draw(source: &CaptionBatches, step: usize) -> CaptionBatch<B> {
    let at = StepInfo {
        step,
        share: Share::WHOLE,
        batch_size: 6,
    };
    BatchSource::<B>::batch(source, at, &Default::default())
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

fn ints(t: Tensor<B, 2, burn::tensor::Int>) -> Vec<i64> {
    t.into_data().convert::<i64>().to_vec().unwrap()
}

#[test]
fn jitter_changes_the_pixels_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let set = Arc::new(colour_set(dir.path()));
    let jitter = ColourAugment {
        jitter: 0.4,
        ..Default::default()
    };
    let plain = batches(&set, ColourAugment::default());
    let augmented = batches(&set, jitter);
    for step in [0, 7] {
        let (a, b) = (draw(&plain, step), draw(&augmented, step));
        // Same images, same captions: the colour draws have their own random stream.
        assert_eq!(ints(a.inputs.clone()), ints(b.inputs.clone()));
        assert_eq!(ints(a.targets.clone()), ints(b.targets.clone()));
        let (pa, pb) = (values(a.pixels), values(b.pixels.clone()));
        assert_eq!(pa.len(), pb.len());
        let changed = pa
            .iter()
            .zip(&pb)
            .filter(|(x, y)| (*x - *y).abs() > 1e-3)
            .count();
        assert!(
            changed > pa.len() / 2,
            "step {step}: only {changed} values changed"
        );
        // Drawn again, the step is the same batch.
        assert_eq!(values(draw(&augmented, step).pixels), values(b.pixels));
    }
    // Off, nothing is drawn: the batch is the plain shifted images.
    let a = draw(&plain, 3);
    let indices: Vec<usize> = (0..set.len()).collect();
    let whole = set.pixels(&indices, &vec![(0, 0); set.len()]);
    let mut rows: Vec<Vec<f32>> = whole
        .data
        .chunks(3 * 16 * 16)
        .map(<[f32]>::to_vec)
        .collect();
    rows.sort_by(|x, y| x.partial_cmp(y).unwrap());
    for row in values(a.pixels).chunks(3 * 16 * 16) {
        assert!(
            rows.binary_search_by(|r| r.as_slice().partial_cmp(row).unwrap())
                .is_ok()
        );
    }
}

/// A second source: one purple square, captioned so.
fn write_purple(dir: &Path) -> std::path::PathBuf {
    image::RgbImage::from_pixel(16, 16, image::Rgb([120, 30, 160]))
        .save(dir.join("purple.png"))
        .unwrap();
    let manifest = dir.join("purple.jsonl");
    std::fs::write(
        &manifest,
        r#"{"image":"purple.png","captions":["A purple square."],"split":"train"}"#.to_string()
            + "\n",
    )
    .unwrap();
    manifest
}

/// Eight coloured squares and one purple one, as two sources.
fn two_sources(dir: &Path) -> Arc<CaptionSet> {
    let sources = [
        CaptionSource::new("colours", &write_set(dir), Some("train")),
        CaptionSource::new("purple", &write_purple(dir), Some("train")),
    ];
    Arc::new(CaptionSet::load(&sources, &vit_processor(16)).unwrap())
}

#[test]
fn sources_are_drawn_by_weight() {
    let dir = tempfile::tempdir().unwrap();
    let set = two_sources(dir.path());
    let tokenizer = caption_tokenizer(&set).unwrap();
    let purple = tokenizer.encode("purple", 8).unwrap().0[1] as i64;
    // The share of rows captioning the purple square over 100 steps of 6.
    let share = |weights: &[(&str, f64)]| {
        let c = config(ColourAugment::default(), weights);
        let source = CaptionBatches::new(set.clone(), &tokenizer, 8, &c).unwrap();
        let rows: Vec<bool> = (0..100)
            .flat_map(|step| {
                let inputs = ints(draw(&source, step).inputs);
                inputs
                    .chunks(7)
                    .map(|r| r.contains(&purple))
                    .collect::<Vec<_>>()
            })
            .collect();
        rows.iter().filter(|&&p| p).count() as f64 / rows.len() as f64
    };
    let even = share(&[]);
    assert!((even - 0.5).abs() < 0.08, "equal weights: {even}");
    // Equal weights other than 1 draw exactly what no weights draw.
    assert_eq!(share(&[("colours", 2.0), ("purple", 2.0)]), even);
    let three_to_one = share(&[("purple", 3.0)]);
    assert!((three_to_one - 0.75).abs() < 0.08, "3:1: {three_to_one}");
    assert_eq!(share(&[("purple", 0.0)]), 0.0);
    for (weights, needle) in [
        (
            vec![("stamps", 1.0)],
            "`stamps`, which is not a training source",
        ),
        (vec![("purple", -1.0)], "source_weights.purple"),
        (vec![("purple", 0.0), ("colours", 0.0)], "weight above 0"),
    ] {
        let c = config(ColourAugment::default(), &weights);
        let err = CaptionBatches::new(set.clone(), &tokenizer, 8, &c)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn the_self_critical_phase_draws_by_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let set = two_sources(dir.path());
    let purple = set
        .captions
        .iter()
        .position(|c| c[0].contains("purple"))
        .unwrap();
    let rewards = Arc::new(Rewards::new(&set, caption_tokenizer(&set).unwrap()));
    // The share of the purple square among the images of 100 steps of 6.
    let share = |weights: &[(&str, f64)]| {
        let weights = weights.iter().map(|&(n, w)| (n.to_string(), w)).collect();
        let draw = SourceDraw::new(&set, &weights).unwrap();
        let source = ScstBatches::new(set.clone(), draw, rewards.clone(), 6, 20, 0);
        let images: Vec<usize> = (0..100)
            .flat_map(|step| {
                let at = StepInfo {
                    step,
                    share: Share::WHOLE,
                    batch_size: 6,
                };
                let batch: ScstBatch<B> = BatchSource::<B>::batch(&source, at, &Default::default());
                batch.images
            })
            .collect();
        images.iter().filter(|&&i| i == purple).count() as f64 / images.len() as f64
    };
    let even = share(&[]);
    assert!((even - 0.5).abs() < 0.08, "equal weights: {even}");
    assert_eq!(share(&[("colours", 2.0), ("purple", 2.0)]), even);
    let one_to_three = share(&[("purple", 1.0 / 3.0)]);
    assert!((one_to_three - 0.25).abs() < 0.08, "1:3: {one_to_three}");
    assert_eq!(share(&[("purple", 0.0)]), 0.0);
}
