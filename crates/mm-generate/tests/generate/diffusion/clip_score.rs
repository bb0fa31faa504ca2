//! The CLIP score of generated images: each pair scores 100 x max(cos, 0) of the CLIP's
//! embeddings, in order, and the evaluation scores every guidance scale beside the real images
//! and mismatched pairs.

use burn::backend::Flex;
use mm_generate::diffusion::clip_score::{clip_scores, evaluate_clip_score, pick_prompts};
use mm_generate::diffusion::eval::ShapeEvalOptions;
use mm_text::{ClipTextConfig, ClipTokenizer};
use mm_vision::{AlphaMode, ClipImageProcessor, ClipVisionConfig};
use mm_vl::clip::ClipConfig;
use mm_vl::hf::LoadedClip;

use super::train::{shape_set, tiny_pipeline};

type B = Flex;

fn tiny_clip(device: &burn::tensor::Device<B>) -> LoadedClip<B> {
    let config = ClipConfig::new(
        ClipTextConfig::new(32, 64, 16, 2, 4).with_max_position_embeddings(12),
        ClipVisionConfig::new(32, 64, 16, 2, 4, 16, 4),
        16,
    );
    LoadedClip {
        model: config.init::<B>(device).unwrap(),
        config,
        tokenizer: ClipTokenizer::bundled(),
        processor: ClipImageProcessor::clip(16),
        alpha: AlphaMode::CompositeOnWhite,
    }
}

#[test]
fn each_pair_scores_its_own_cosine_floored_at_zero() {
    let device = Default::default();
    let clip = tiny_clip(&device);
    let data = tempfile::tempdir().unwrap();
    let set = shape_set(data.path(), 1);
    let images = set.images[..4].to_vec();
    let texts: Vec<String> = ["a red circle", "a blue square", "red", "a triangle"]
        .map(String::from)
        .to_vec();
    let scores = clip_scores(&clip, &images, &texts).unwrap();
    let refs: Vec<&mm_vision::RgbImage> = images.iter().collect();
    let a = clip.embed_images(&refs, 3, true);
    let b = clip.embed_texts(&texts, 3, true).unwrap();
    for (i, s) in scores.iter().enumerate() {
        let cos: f32 = a[i].iter().zip(&b[i]).map(|(x, y)| x * y).sum();
        let want = 100.0 * f64::from(cos.max(0.0));
        assert!((s - want).abs() < 1e-4, "pair {i}: {s} vs {want}");
    }
    let err = clip_scores(&clip, &images, &texts[..2]).unwrap_err();
    assert!(err.to_string().contains("4 images but 2 texts"), "{err}");
}

#[test]
fn the_evaluation_scores_every_scale_beside_real_and_mismatched_pairs() {
    let device = Default::default();
    let clip = tiny_clip(&device);
    let data = tempfile::tempdir().unwrap();
    let set = shape_set(data.path(), 2);
    // Six distinct captions, two images each: one image per prompt is picked.
    let real = pick_prompts(&set, 3);
    assert_eq!(real.len(), 3);
    let prompts: Vec<String> = real.iter().map(|r| r.1.clone()).collect();
    assert!(prompts[0] != prompts[1] && prompts[1] != prompts[2]);

    let pipeline = tiny_pipeline(&device);
    let options = ShapeEvalOptions {
        guidances: vec![0.0, 3.0],
        samples: 2,
        steps: 2,
        scheduler: None,
        guidance_rescale: 0.5,
        thresholding: None,
        seed: 1,
        held_out: Vec::new(),
    };
    let mut seen = Vec::new();
    let report = evaluate_clip_score(
        &pipeline,
        &clip,
        &real,
        &options,
        &device,
        &mut |w, images| {
            assert_eq!(images.dims(), [6, 3, 32, 32]);
            seen.push(w);
        },
    )
    .unwrap();
    assert_eq!(seen, vec![0.0, 3.0]);
    assert_eq!(report.prompts, prompts);
    assert_eq!(
        (report.sampling.guidance_rescale, report.sampling.seed),
        (0.5, Some(1)),
        "the report names its sampling settings"
    );
    let keys: Vec<&String> = report.clip_score_by_guidance.keys().collect();
    assert_eq!(keys, ["0", "3"]);
    assert_eq!(report.mismatched_by_guidance.len(), 2);
    let images: Vec<mm_vision::RgbImage> = real.iter().map(|r| r.0.clone()).collect();
    let own = clip_scores(&clip, &images, &prompts).unwrap();
    assert!((report.real - own.iter().sum::<f64>() / 3.0).abs() < 1e-9);
    for v in report.clip_score_by_guidance.values() {
        assert!((0.0..=100.0).contains(v), "{v}");
    }

    // One prompt has nothing to mismatch against.
    let err = evaluate_clip_score(
        &pipeline,
        &clip,
        &real[..1],
        &options,
        &device,
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("at least two prompts"), "{err}");
}
