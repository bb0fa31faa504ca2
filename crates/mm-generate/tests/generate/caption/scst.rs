//! The self-critical phase: the batched sampler decodes what the one-image decoder decodes,
//! and a finished teacher-forced run resumed with `scst.steps` set adds the phase without
//! training the first one again, raising the CIDEr-D of its samples.

use burn::backend::{Autodiff, Flex};
use burn::tensor::Tensor;
use mm_core::train::RunOptions;
use mm_data::rng::SplitMix64;
use mm_generate::caption::sample::{Pick, sample_captions};
use mm_generate::caption::train_captioner;

use super::train::{colour_set, tiny_config};

type B = Autodiff<Flex>;

#[test]
fn batched_sampling_decodes_as_the_one_image_decoder() {
    let _seeded = crate::seeded();
    let device = Default::default();
    let mut config = tiny_config().model;
    config.decoder.vocab_size = 12;
    config.decoder_start_token_id = 2;
    config.eos_token_id = 3;
    config.pad_token_id = 0;
    <Flex as burn::tensor::backend::Backend>::seed(&device, 7);
    let model = config.init::<Flex>(&device).unwrap();
    let pixels = Tensor::<Flex, 4>::random(
        [3, 3, 16, 16],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let mut rng = SplitMix64::new(1);
    let specials = (2, 3);
    let greedy = sample_captions(
        &model,
        pixels.clone(),
        2,
        7,
        Pick::Greedy,
        specials,
        &mut rng,
    )
    .unwrap();
    assert_eq!(greedy.len(), 6);
    let mut generation = config.generation();
    generation.max_new_tokens = 7;
    for i in 0..3 {
        let one = model
            .caption(pixels.clone().narrow(0, i, 1), &generation, false)
            .unwrap();
        assert_eq!(greedy[2 * i], one[0].tokens, "image {i}");
        assert_eq!(greedy[2 * i + 1], one[0].tokens, "image {i}, second copy");
    }
    // A near-zero temperature samples the greedy captions; at 1 the copies differ, and the
    // same seed draws the same captions.
    let cold = sample_captions(
        &model,
        pixels.clone(),
        2,
        7,
        Pick::Sample(1e-4),
        specials,
        &mut rng,
    )
    .unwrap();
    assert_eq!(cold, greedy);
    let draw = |seed| {
        let mut rng = SplitMix64::new(seed);
        sample_captions(
            &model,
            pixels.clone(),
            4,
            7,
            Pick::Sample(1.0),
            specials,
            &mut rng,
        )
        .unwrap()
    };
    let warm = draw(5);
    assert_eq!(warm, draw(5));
    assert_ne!(warm, draw(6));
    assert!(
        warm.iter()
            .any(|c| c != &greedy[0] && c != &greedy[2] && c != &greedy[4])
    );
    assert!(
        warm.iter()
            .all(|c| c.len() <= 7 && !c[..c.len() - 1].contains(&3))
    );
    // Bad requests are errors.
    let wrong = Tensor::<Flex, 4>::zeros([1, 3, 8, 8], &device);
    assert!(sample_captions(&model, wrong, 2, 7, Pick::Greedy, specials, &mut rng).is_err());
    let too_long = sample_captions(&model, pixels, 2, 8, Pick::Greedy, specials, &mut rng);
    assert!(too_long.unwrap_err().to_string().contains("max_new_tokens"));
}

fn metric(path: &std::path::Path, name: &str) -> Vec<f64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v[name].as_f64())
        .collect()
}

#[test]
fn a_finished_run_resumes_into_the_self_critical_phase() {
    let _seeded = crate::seeded();
    let dir = tempfile::tempdir().unwrap();
    let set = colour_set(dir.path());
    let mut config = tiny_config();
    // Stopped early, so its samples still miss often.
    config.steps = 40;
    config.checkpoint_every = 20;
    let run_dir = dir.path().join("run");
    let device = Default::default();
    train_captioner::<B>(&config, set.clone(), &RunOptions::new(&run_dir), &[device]).unwrap();
    let losses = metric(&run_dir.join("metrics.jsonl"), "loss");
    assert_eq!(losses.len(), 40);

    let mut bad = config.clone();
    bad.scst.steps = 10;
    bad.scst.samples = 1;
    let err = train_captioner::<B>(
        &bad,
        set.clone(),
        &RunOptions::new(&run_dir).resumed(),
        &[device],
    )
    .err()
    .expect("one sample has no baseline")
    .to_string();
    assert!(err.contains("scst.samples"), "{err}");

    config.scst.steps = 60;
    config.scst.batch = 6;
    config.scst.samples = 4;
    config.scst.lr = 2e-3;
    config.scst.warmup = 5;
    config.scst.checkpoint_every = 30;
    let run = RunOptions::new(&run_dir).resumed();
    train_captioner::<B>(&config, set.clone(), &run, &[device]).unwrap();
    // The teacher-forced phase was not trained again.
    assert_eq!(metric(&run_dir.join("metrics.jsonl"), "loss"), losses);
    let rewards = metric(&run_dir.join("scst/metrics.jsonl"), "reward");
    assert_eq!(rewards.len(), 60);
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    let (first, last) = (mean(&rewards[..15]), mean(&rewards[45..]));
    assert!(last > first, "sampled CIDEr-D went from {first} to {last}");
    assert!(run_dir.join("scst/checkpoint").exists());
    assert!(run_dir.join("final/model.safetensors").exists());
}
