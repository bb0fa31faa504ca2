//! The whole text-to-image pipeline against diffusers 0.35.2's `StableDiffusionPipeline`
//! (`fixtures/pipeline/generate.py`): a tiny random pipeline folder (UNet, VAE, CLIP text
//! encoder, BPE tokenizer from vocab.json + merges.txt, DDIM scheduler) loaded by ours gives
//! diffusers' token ids and text states, and diffusers' images from the same initial latents
//! and prompts: DDIM with guidance 3 and 1, DDIM with guidance 5 with and without diffusers'
//! `guidance_rescale` 0.7, Euler with guidance 5, within 1e-4; saved as a
//! diffusers folder and reloaded, the same image (`fixtures/pipeline/check_export.py` loads
//! such a folder in diffusers).

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use mm_generate::diffusion::{GenerateOptions, PipelineError, SchedulerKind, TextToImage};
use serde_json::Value;

use super::common::floats;

type B = Flex;

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    super::common::fixtures("pipeline")
}

fn max_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn no_noise(_: [usize; 4]) -> Tensor<B, 4> {
    panic!("DDIM at eta 0 and Euler add no noise")
}

#[test]
fn tiny_pipeline_matches_diffusers() {
    let exp: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
    let device = Default::default();
    let pipe = TextToImage::<B>::load(&fixtures().join("model"), &device).unwrap();
    let prompts: Vec<&str> = exp["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();

    let mut with_empty = prompts.clone();
    with_empty.push("");
    let batch = pipe
        .text
        .tokenizer
        .encode_batch(&with_empty, pipe.text.context_length)
        .unwrap();
    let want_ids: Vec<i64> = exp["ids"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()))
        .collect();
    assert_eq!(batch.ids, want_ids, "token ids");
    let states: Vec<f32> = pipe
        .text
        .encode(&with_empty)
        .unwrap()
        .into_data()
        .to_vec()
        .unwrap();
    let err = max_error(&states, &floats(&exp["text_states"]));
    assert!(err <= TOLERANCE, "text states: max error {err:e}");

    let shape = pipe.latent_shape(prompts.len(), 8, 8);
    let init = Tensor::<B, 4>::from_data(TensorData::new(floats(&exp["latents"]), shape), &device);
    let mut images = Vec::new();
    for run in exp["runs"].as_array().unwrap() {
        let name = run["name"].as_str().unwrap();
        let options = GenerateOptions {
            steps: 4,
            guidance: run["guidance"].as_f64().unwrap() as f32,
            scheduler: SchedulerKind::parse(run["scheduler"].as_str().unwrap()),
            eta: 0.0,
            guidance_rescale: run["guidance_rescale"].as_f64().unwrap_or(0.0) as f32,
            thresholding: None,
        };
        let mut steps_seen = 0;
        let image = pipe
            .generate(
                &prompts,
                init.clone(),
                &options,
                &mut no_noise,
                &mut |i, n| {
                    assert_eq!(n, 4);
                    steps_seen = i;
                },
            )
            .unwrap();
        assert_eq!(steps_seen, 4, "{name}: progress");
        // Ours [b, c, h, w]; diffusers' numpy output [b, h, w, c].
        let ours: Vec<f32> = image.permute([0, 2, 3, 1]).into_data().to_vec().unwrap();
        let err = max_error(&ours, &floats(&run["image"]));
        assert!(err <= TOLERANCE, "{name}: max error {err:e}");
        images.push(ours);
    }
    // Guidance changes the image far beyond the tolerance: the comparison is not vacuous.
    assert!(max_error(&images[0], &images[1]) > 100.0 * TOLERANCE);
    // So does the guidance rescale (runs "ddim-w5" and "ddim-w5-rescale0.7").
    let named = |n: &str| {
        let runs = exp["runs"].as_array().unwrap();
        &images[runs.iter().position(|r| r["name"] == n).unwrap()]
    };
    assert!(max_error(named("ddim-w5"), named("ddim-w5-rescale0.7")) > 10.0 * TOLERANCE);

    // Saved as a diffusers folder and loaded back: the same image, bit for bit.
    let dir = tempfile::tempdir().unwrap();
    pipe.save(dir.path()).unwrap();
    let again = TextToImage::<B>::load(dir.path(), &device).unwrap();
    assert_eq!(again.scheduler, pipe.scheduler);
    assert_eq!(again.text.context_length, pipe.text.context_length);
    let options = GenerateOptions {
        steps: 4,
        guidance: 3.0,
        ..Default::default()
    };
    let image: Vec<f32> = again
        .generate(&prompts, init, &options, &mut no_noise, &mut |_, _| {})
        .unwrap()
        .permute([0, 2, 3, 1])
        .into_data()
        .to_vec()
        .unwrap();
    assert_eq!(max_error(&image, &images[0]), 0.0, "saved and reloaded");
}

#[test]
fn wrong_latents_are_refused() {
    let device = Default::default();
    let pipe = TextToImage::<B>::load(&fixtures().join("model"), &device).unwrap();
    let options = GenerateOptions {
        steps: 2,
        ..Default::default()
    };
    for shape in [[1, 4, 4, 4], [2, 3, 4, 4], [2, 4, 3, 3]] {
        let init = Tensor::<B, 4>::zeros(shape, &device);
        let err = pipe
            .generate(&["a", "b"], init, &options, &mut no_noise, &mut |_, _| {})
            .unwrap_err();
        assert!(
            matches!(err, PipelineError::Latents { .. }),
            "{shape:?}: {err}"
        );
    }
    // Settings the pipeline cannot use are refused, named, before any step.
    let refusal = |options: GenerateOptions| {
        let init = Tensor::<B, 4>::zeros([2, 4, 4, 4], &device);
        pipe.generate(&["a", "b"], init, &options, &mut no_noise, &mut |_, _| {})
            .unwrap_err()
            .to_string()
    };
    for phi in [-0.1, 1.5, f32::NAN] {
        let err = refusal(GenerateOptions {
            steps: 2,
            guidance: 3.0,
            guidance_rescale: phi,
            ..Default::default()
        });
        assert!(err.contains("guidance rescale"), "{phi}: {err}");
    }
    for (ratio, max, key) in [
        (1.5, 1.5, "dynamic_thresholding_ratio"),
        (0.995, 0.5, "sample_max_value"),
    ] {
        let err = refusal(GenerateOptions {
            steps: 2,
            thresholding: Some(mm_generate::diffusion::Thresholding { ratio, max }),
            ..Default::default()
        });
        assert!(err.contains(key), "{key}: {err}");
    }
    let missing = TextToImage::<B>::load(Path::new("/nonexistent/pipeline"), &device);
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/pipeline")
    );
}
