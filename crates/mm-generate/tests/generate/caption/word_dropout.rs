//! Word dropout of the teacher-forced decoder's input (`word_dropout`): words fed in become
//! `[MASK]` at about the set rate, never `[CLS]` or padding, with the same images, targets and
//! pixels as without it and the same masks when a step is drawn again; an impossible rate is
//! refused before training, a run with it still learns every training caption, and runs
//! without it keep their settings as before.

use std::sync::Arc;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Int, Tensor};
use mm_core::train::{BatchSource, RunOptions, Share, StepInfo};
use mm_generate::caption::train::{CaptionBatch, CaptionBatches, caption_tokenizer};
use mm_generate::caption::{CaptionTrainConfig, train_captioner};

use super::train::{assert_captions_every_image, assert_refused, colour_set, tiny_config};

fn ints(t: Tensor<Flex, 2, Int>) -> Vec<i64> {
    t.into_data().convert::<i64>().to_vec().unwrap()
}

fn draw(source: &CaptionBatches, step: usize) -> CaptionBatch<Flex> {
    let at = StepInfo {
        step,
        share: Share::WHOLE,
        batch_size: 6,
    };
    BatchSource::<Flex>::batch(source, at, &Default::default())
}

#[test]
fn dropped_words_are_masked_inputs_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let set = Arc::new(colour_set(dir.path()));
    let tokenizer = caption_tokenizer(&set).unwrap();
    let config = |word_dropout: f32| CaptionTrainConfig {
        batch: 6,
        word_dropout,
        ..Default::default()
    };
    let source = |c: &CaptionTrainConfig| CaptionBatches::new(set.clone(), &tokenizer, 8, c);
    let plain = source(&config(0.0)).unwrap();
    let dropping = source(&config(0.3)).unwrap();
    let (mask, pad) = (tokenizer.mask as i64, tokenizer.pad as i64);
    let (mut words, mut masked) = (0usize, 0usize);
    for step in 0..200 {
        let (a, b) = (draw(&plain, step), draw(&dropping, step));
        assert_eq!(ints(a.targets.clone()), ints(b.targets.clone()));
        let pixels = |x: &CaptionBatch<Flex>| x.pixels.clone().into_data().to_vec::<f32>();
        assert_eq!(pixels(&a).unwrap(), pixels(&b).unwrap());
        let (ia, ib) = (ints(a.inputs), ints(b.inputs.clone()));
        for (row_a, row_b) in ia.chunks(7).zip(ib.chunks(7)) {
            assert_eq!(row_a[0], row_b[0], "[CLS] is never dropped");
            assert_eq!(row_a[0], tokenizer.cls as i64);
            for (&x, &y) in row_a[1..].iter().zip(&row_b[1..]) {
                assert!(y == x || (y == mask && x != pad), "{x} became {y}");
                if x != pad {
                    words += 1;
                    masked += usize::from(y == mask);
                }
            }
        }
        // Drawn again, the step masks the same words.
        assert_eq!(ints(draw(&dropping, step).inputs), ib);
    }
    let rate = masked as f64 / words as f64;
    assert!(
        (rate - 0.3).abs() < 0.03,
        "{masked} of {words} words masked"
    );
}

#[test]
fn training_with_word_dropout_learns_and_bad_rates_are_refused() {
    type B = Autodiff<Flex>;
    let _seeded = crate::seeded();
    let dir = tempfile::tempdir().unwrap();
    let set = colour_set(dir.path());
    let mut config = tiny_config();
    config.length_penalties = vec![1.0];
    assert_refused(
        &config,
        &set,
        dir.path(),
        "word_dropout",
        &[1.0, -0.1, f32::NAN],
        |c, x| c.word_dropout = x,
    );

    config.word_dropout = 0.2;
    let run_dir = dir.path().join("dropping");
    let run = RunOptions::new(&run_dir);
    let trained = train_captioner::<B>(&config, set.clone(), &run, &[Default::default()]).unwrap();
    assert_captions_every_image(&trained, &set);
    let settings = std::fs::read_to_string(run_dir.join("config.json")).unwrap();
    assert!(settings.contains("\"word_dropout\": 0.2"), "{settings}");

    // Saved settings without it read as no dropout.
    let mut json = serde_json::to_value(&config).unwrap();
    json.as_object_mut().unwrap().remove("word_dropout");
    let back: CaptionTrainConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back.word_dropout, 0.0);
}
