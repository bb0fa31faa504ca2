//! The localizer on a frozen backbone's feature maps (`mm_video::av::backbone`), with the
//! tiny TensorFlow.js graph of mm-vision's fixtures standing in for CenterNet: feature maps
//! come at the localizer's grid, training draws from the feature pool and learns to point,
//! a trained model reloads with the same figures, and every inconsistent setting is refused
//! before training.

use burn::backend::Flex;
use image::RgbImage;
use mm_data::rng::SplitMix64;
use mm_video::av::backbone::{Backbone, BackboneConfig, picture_inputs};
use mm_video::av::bridge::evaluate_bridge;
use mm_video::av::localizer::{LocalizerConfig, LocalizerKind};
use mm_video::av::localizer_eval::{evaluate_localizer, load_localizer};
use mm_video::av::localizer_train::LocalizerTrainConfig;
use mm_video::av::scenes::compose;

use crate::localizer::{backgrounds, refusal, scene_config, stamps, test_scenes, train_toy};

/// The tiny graph's first depthwise stage: 8 channels at half the input's side.
fn tiny_backbone() -> BackboneConfig {
    BackboneConfig {
        folder: mm_data::package_dir!().join("../mm-vision/tests/fixtures/tfjs/tiny"),
        node: "d1".into(),
        input: 48,
        channels: 8,
        // Random weights: 0..1 pixels keep its ReLU6 from saturating.
        pixel_scale: 1.0,
    }
}

fn config(steps: usize) -> LocalizerTrainConfig {
    let mut c = LocalizerTrainConfig::new(LocalizerKind::Attention);
    c.model = LocalizerConfig::new(LocalizerKind::Attention)
        .with_width(8)
        .with_embed(16)
        .with_features(Some(8));
    c.scenes = scene_config();
    c.batch = 16;
    c.steps = steps;
    c.lr = 3e-3;
    c.warmup = 10;
    c.checkpoint_every = 1000;
    c.backbone = Some(tiny_backbone());
    c.feature_pool = 256;
    c
}

#[test]
fn feature_maps_come_at_the_localizer_grid() {
    let device = Default::default();
    let backbone = Backbone::<Flex>::load(&tiny_backbone(), &device).unwrap();
    let stamps = stamps();
    let mut rng = SplitMix64::new(3);
    let scenes: Vec<RgbImage> = backgrounds(2, 4)
        .iter()
        .map(|b| compose(b, &stamps, &scene_config(), &mut rng).image)
        .collect();
    let images: Vec<&RgbImage> = scenes.iter().collect();
    let mels = vec![&stamps[0].mel; 2];
    let (maps, sounds) = picture_inputs(Some(&backbone), &images, &mels, &device).unwrap();
    // 48-pixel scenes: a 6x6 grid (an eighth of the side).
    assert_eq!(maps.dims(), [2, 8, 6, 6]);
    assert_eq!(sounds.dims()[0], 2);
    let v = maps.into_data().to_vec::<f32>().unwrap();
    assert!(v.iter().all(|x| x.is_finite()));
    let (a, b) = v.split_at(v.len() / 2);
    assert!(a != b, "two different scenes gave the same features");

    let wrong = BackboneConfig {
        channels: 9,
        ..tiny_backbone()
    };
    let err = Backbone::<Flex>::load(&wrong, &device)
        .unwrap()
        .features(
            picture_inputs::<Flex>(None, &images, &mels, &device)
                .unwrap()
                .0,
        )
        .unwrap_err();
    assert!(err.contains("has 8 channels"), "{err}");
    let missing = BackboneConfig {
        folder: "/nonexistent".into(),
        ..tiny_backbone()
    };
    let err = Backbone::<Flex>::load(&missing, &device).err().unwrap();
    assert!(err.contains("data fetch centernet"), "{err}");
    let no_node = BackboneConfig {
        node: "nope".into(),
        ..tiny_backbone()
    };
    let err = Backbone::<Flex>::load(&no_node, &device).err().unwrap();
    assert!(err.contains("no node named nope"), "{err}");
}

#[test]
fn a_localizer_on_backbone_features_points_and_reloads() {
    let _rng = crate::seeded();
    let stamps = stamps();
    let test = test_scenes(&stamps);
    let config = config(300);
    let (trained, dir) = train_toy(&config, None);
    let report = evaluate_localizer(&trained, &config, &test, &Default::default()).unwrap();
    eprintln!("{report:?}");
    let (reloaded, loaded) =
        load_localizer::<Flex>(&dir.path().join("final"), &Default::default()).unwrap();
    assert_eq!(loaded.backbone, config.backbone);
    let again = evaluate_localizer(&reloaded, &loaded, &test, &Default::default()).unwrap();
    assert_eq!(report.pointing_game, again.pointing_game);
    assert!(
        report.pointing_game >= report.centre_pointing_game + 0.25,
        "{report:?}"
    );
    assert!(
        report.pointing_game > report.shuffled_pointing_game,
        "{report:?}"
    );
}

#[test]
fn inconsistent_backbone_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |c: LocalizerTrainConfig, says: &str| {
        let err = refusal(&c, None, dir.path());
        assert!(err.contains(says), "{err}");
    };
    let mut c = config(10);
    c.backbone = None;
    refused(c, "no backbone is set");
    let mut c = config(10);
    c.model.features = Some(16);
    refused(c, "model.features must say so");
    let mut c = config(10);
    c.augment = true;
    refused(c, "not available with it");
    let mut c = config(10);
    c.feature_pool = 4;
    refused(c, "fewer scenes than a batch");
}

#[test]
fn the_text_bridge_trains_on_backbone_features_too() {
    use crate::localizer_bridge::{EMBED, anchors, new_scenes};
    let _rng = crate::seeded();
    let stamps = stamps();
    let mut config = config(300);
    config.model.embed = EMBED;
    config.bridge = 1.0;
    let (model, _dir) = train_toy(&config, Some(anchors(&stamps)));
    let device = Default::default();
    let backbone = Backbone::<Flex>::load(&tiny_backbone(), &device).unwrap();
    let (scenes, texts) = new_scenes(&stamps);
    let report = evaluate_bridge(&model, Some(&backbone), &scenes, &texts, &device).unwrap();
    eprintln!("{report:?}");
    // Six captions, chance 1 in 6: the sound side ties to them through the pooled steps.
    // (The tiny graph's 8 random channels are too poor a picture side for the captions'
    // axes; the real backbone's caption pointing is measured in docs/audio-visual.md.)
    assert!(report.sound_caption_top1 >= 0.9, "{report:?}");
    assert!((0.0..=1.0).contains(&report.caption_pointing_game));
    assert_eq!(report.captions, 6);
}
