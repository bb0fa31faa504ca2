//! The moving average of the captioner's weights (`ema_decay`): with a decay of about 0 it is
//! the last weights (so the average tracks training without changing it), with 0.99 it is a
//! different model that still captions every training colour, it is what `final/` holds, an
//! impossible decay is refused before training, and runs without it keep their settings as
//! before (so older runs resume).

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Int, Tensor, TensorData};
use mm_core::train::RunOptions;
use mm_generate::caption::{
    CaptionSet, CaptionTrainConfig, Captioner, TrainedCaptioner, load_hf_captioner, train_captioner,
};

use super::train::{assert_captions_every_image, assert_refused, colour_set, tiny_config};

type B = Autodiff<Flex>;

fn logits(model: &Captioner<Flex>) -> Vec<f32> {
    let device = Default::default();
    let pixels: Vec<f32> = (0..3 * 16 * 16)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let ids = Tensor::<Flex, 2, Int>::from_data(TensorData::new(vec![2i64, 5, 6], [1, 3]), &device);
    let pixels = Tensor::<Flex, 4>::from_data(TensorData::new(pixels, [1, 3, 16, 16]), &device);
    model.forward(pixels, ids).into_data().to_vec().unwrap()
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn train(
    config: &CaptionTrainConfig,
    set: &CaptionSet,
    dir: &std::path::Path,
) -> TrainedCaptioner<Flex> {
    let run = RunOptions::new(dir);
    train_captioner::<B>(config, set.clone(), &run, &[Default::default()]).unwrap()
}

#[test]
fn the_average_tracks_training_and_is_what_final_holds() {
    let _seeded = crate::seeded();
    let dir = tempfile::tempdir().unwrap();
    let set = colour_set(dir.path());
    let mut config = tiny_config();
    config.length_penalties = vec![1.0];

    assert_refused(
        &config,
        &set,
        dir.path(),
        "ema_decay",
        &[1.0, -0.1, f64::NAN],
        |c, x| c.ema_decay = x,
    );

    let plain = logits(&train(&config, &set, &dir.path().join("plain")).model);
    let mut near_zero = config.clone();
    near_zero.ema_decay = 1e-9;
    let tracked = logits(&train(&near_zero, &set, &dir.path().join("tracked")).model);
    // An average that forgets at once is the last weights: keeping it changed nothing else.
    assert!(largest_difference(&plain, &tracked) < 1e-4);

    let mut averaged = config.clone();
    averaged.ema_decay = 0.99;
    let run_dir = dir.path().join("averaged");
    let trained = train(&averaged, &set, &run_dir);
    let average = logits(&trained.model);
    assert!(
        largest_difference(&plain, &average) > 1e-3,
        "the average is not the last weights"
    );
    let loaded = load_hf_captioner::<Flex>(&run_dir.join("final"), &Default::default()).unwrap();
    assert!(largest_difference(&average, &logits(&loaded.model)) < 1e-6);
    assert_captions_every_image(&trained, &set);
    let saved = std::fs::read_to_string(run_dir.join("final/mm_train_config.json")).unwrap();
    assert!(saved.contains("\"ema_decay\": 0.99"), "{saved}");

    // Without a decay the run folder's settings are as before it existed (so such runs
    // resume), and saved settings without it read as no average.
    let settings = std::fs::read_to_string(dir.path().join("plain/config.json")).unwrap();
    assert!(!settings.contains("ema_decay"), "{settings}");
    assert!(!settings.contains("word_dropout"), "{settings}");
    let mut json = serde_json::to_value(&config).unwrap();
    json.as_object_mut().unwrap().remove("ema_decay");
    let back: CaptionTrainConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, config);
}
