//! Both audio encoders: output shapes through the `Encoder` trait, and a few training steps of
//! the classifier lowering its loss and separating two kinds of synthetic sound.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Distribution, Tensor};
use mm_audio::batch::{FeatureKind, to_tensor};
use mm_audio::classifier::{AudioClassifierConfig, ClipSet, EncoderKind, normalize_log_mel};
use mm_audio::classifier_train::{evaluate_classifier, load_classifier, train_and_evaluate};
use mm_audio::encoder::{AudioTransformerConfig, SpectrogramCnnConfig};
use mm_audio::{FeatureError, MelConfig, MelExtractor};
use mm_core::encoder::Encoder;
use mm_core::train::RunOptions;

type B = Flex;

#[test]
fn encoders_produce_pooled_embeddings() {
    let device = Default::default();
    let x = Tensor::<B, 4>::random([3, 1, 32, 40], Distribution::Normal(0.0, 1.0), &device);
    let cnn = SpectrogramCnnConfig::new()
        .with_channels_1(8)
        .with_channels_2(16)
        .with_d_output(24)
        .init::<B>(&device);
    assert_eq!(cnn.encode(x.clone()).dims(), [3, 24]);
    assert_eq!(cnn.output_dim(), 24);
    let ast = AudioTransformerConfig::new(32, 48)
        .with_hidden_size(32)
        .with_d_output(24)
        .init::<B>(&device)
        .unwrap();
    let out = ast.encode_full(x);
    assert_eq!(out.pooled.dims(), [3, 24]);
    // 32 / 8 mel rows x 40 / 8 frame columns of patches, plus the class token.
    assert_eq!(out.sequence.unwrap().dims(), [3, 4 * 5 + 1, 32]);
    let norms = ast
        .encode_normalized(Tensor::random(
            [2, 1, 32, 16],
            Distribution::Normal(0.0, 1.0),
            &device,
        ))
        .powf_scalar(2.0)
        .sum_dim(1);
    assert!((norms - 1.0).abs().max().into_scalar() < 1e-5);
    // Too many frames, too few, the wrong mel count or channels: errors, not panics.
    for dims in [
        [1, 1, 32, 56],
        [1, 1, 32, 4],
        [1, 1, 24, 40],
        [1, 2, 32, 40],
    ] {
        let bad = Tensor::<B, 4>::zeros(dims, &device);
        let err = ast.try_encode_full(bad).unwrap_err();
        assert!(matches!(err, FeatureError::Shape(_)), "{dims:?}: {err:?}");
        assert!(
            err.to_string().contains("audio transformer"),
            "{dims:?}: {err}"
        );
    }
    assert!(
        ast.try_encode_full(Tensor::zeros([1, 1, 32, 48], &device))
            .is_ok()
    );
    assert!(
        AudioTransformerConfig::new(4, 48)
            .init::<B>(&device)
            .is_err()
    );
}

/// Pure tones (even) and noise (odd), one second each, as normalized log-mels. A pooled CNN
/// tells textures apart, not where a tone sits on the mel axis, so the classes differ in texture.
fn tone_clips(n: usize, seed: u64) -> ClipSet {
    let extractor = MelExtractor::new(MelConfig::new(16_000, 400, 160, 32)).unwrap();
    let mut rng = mm_data::rng::SplitMix64::new(seed);
    let signals: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            let f = 200.0 + 300.0 * (i as f64 + seed as f64);
            (0..16_000)
                .map(|t| {
                    if i % 2 == 0 {
                        (std::f64::consts::TAU * f * t as f64 / 16_000.0).sin() as f32 * 0.5
                    } else {
                        0.3 * rng.normal() as f32
                    }
                })
                .collect()
        })
        .collect();
    let refs: Vec<&[f32]> = signals.iter().map(|s| s.as_slice()).collect();
    let mut features = extractor
        .batch(&refs, FeatureKind::LogMel(Some(80.0)))
        .unwrap();
    features.iter_mut().for_each(normalize_log_mel);
    ClipSet {
        features,
        labels: (0..n).map(|i| i % 2).collect(),
    }
}

#[test]
fn a_few_steps_lower_the_loss_for_both_encoders() {
    let classes = vec!["tone".to_string(), "noise".to_string()];
    let (train, test) = (tone_clips(8, 0), tone_clips(4, 100));
    // The batched features stack into one tensor for a data loader.
    let stacked = to_tensor::<B>(&train.features, 0.0, &Default::default()).unwrap();
    assert_eq!(stacked.dims(), [8, 32, 101]);
    for encoder in [EncoderKind::Cnn, EncoderKind::Transformer] {
        let cfg = AudioClassifierConfig::new()
            .with_encoder(encoder)
            .with_n_mels(32)
            .with_crop_frames(48)
            .with_d_embed(32)
            .with_steps(40)
            .with_batch(8)
            .with_lr(3e-3);
        let tmp = tempfile::tempdir().unwrap();
        let run = RunOptions::new(tmp.path().join("run"));
        let report = train_and_evaluate::<Autodiff<B>>(
            &cfg,
            &classes,
            &train,
            &test,
            &run,
            &[Default::default()],
        )
        .unwrap();
        // The final model folder evaluates to the same accuracy.
        let (model, folder) =
            load_classifier::<B>(&tmp.path().join("run/final"), &Default::default()).unwrap();
        assert_eq!(folder.classes, classes);
        let (accuracy, _) =
            evaluate_classifier(&model, &cfg, 2, &train, &test, &Default::default()).unwrap();
        assert_eq!(accuracy, report.test_accuracy);
        let (first, last) = report.loss_first_last;
        assert!(last < 0.7 * first, "{encoder:?}: loss {first} -> {last}");
        assert!(
            report.test_accuracy > report.majority_baseline,
            "{encoder:?}: {report:?}"
        );
    }
}
