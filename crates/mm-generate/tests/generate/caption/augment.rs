//! Colour augmentation of the captioner's training batches: off, a step's batch is what it was
//! before augmentation existed; on, the same images and captions come with changed pixels,
//! the same ones again when the step is drawn again (a resumed run sees the same batches). An
//! out-of-range setting is refused before training (`train.rs`).

use std::sync::Arc;

use burn::backend::Flex;
use burn::tensor::Tensor;
use mm_core::train::{BatchSource, Share, StepInfo};
use mm_generate::caption::train::{CaptionBatch, CaptionBatches, caption_tokenizer};
use mm_generate::caption::{CaptionSet, CaptionSource, vit_processor};
use mm_vl::augment::ColourAugment;

use super::train::write_set;

type B = Flex;

fn batches(set: &Arc<CaptionSet>, augment: ColourAugment) -> CaptionBatches {
    let tokenizer = caption_tokenizer(set).unwrap();
    CaptionBatches::new(set.clone(), &tokenizer, 8, 6, 20, 0, augment).unwrap()
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
    let manifest = write_set(dir.path());
    let sources = [CaptionSource::new("colours", &manifest, Some("train"))];
    let set = Arc::new(CaptionSet::load(&sources, &vit_processor(16)).unwrap());
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
