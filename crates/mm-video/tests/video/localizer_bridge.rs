//! The text bridge (`mm_video::av::bridge`): its settings are checked before any training,
//! training with it ties each sound's query to its stamp's caption embedding (which the
//! correspondence loss alone leaves anywhere in the space) and each caption to its stamp's
//! place in a scene, and its evaluation measures both halves.

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use mm_video::av::bridge::{TextAnchors, evaluate_bridge};
use mm_video::av::localizer::{LocalizerConfig, LocalizerKind, LocalizerNet};
use mm_video::av::localizer_eval::TestScene;
use mm_video::av::localizer_train::LocalizerTrainConfig;
use mm_video::av::scenes::Stamp;

use crate::localizer::{refusal, scene_config, stamps, test_scenes, train_toy};

pub(crate) const EMBED: usize = 16;

/// A unit "caption embedding" per stamp: stamp `k` is the `k`-th axis.
fn axis(k: usize) -> Vec<f32> {
    (0..EMBED).map(|i| (i == k) as u8 as f32).collect()
}

pub(crate) fn anchors(stamps: &[Stamp]) -> TextAnchors {
    TextAnchors {
        stamps: stamps.to_vec(),
        texts: (0..stamps.len()).map(axis).collect(),
        sound_texts: (0..stamps.len()).map(axis).collect(),
    }
}

fn config(kind: LocalizerKind, bridge: f32, steps: usize) -> LocalizerTrainConfig {
    LocalizerTrainConfig {
        model: LocalizerConfig::new(kind).with_width(8).with_embed(EMBED),
        scenes: scene_config(),
        batch: 16,
        steps,
        lr: 3e-3,
        warmup: 10,
        checkpoint_every: 1000,
        bridge,
        ..LocalizerTrainConfig::new(kind)
    }
}

/// The share of stamps whose sound's query is nearest its own caption axis.
fn sounds_nearest_their_caption(model: &LocalizerNet<Flex>, stamps: &[Stamp]) -> f64 {
    let LocalizerNet::Attention(m) = model else {
        panic!("the bridge trains the attention form")
    };
    let mel = &stamps[0].mel;
    let data: Vec<f32> = stamps
        .iter()
        .flat_map(|s| s.mel.data.iter().map(|&v| v as f32))
        .collect();
    let mels = Tensor::<Flex, 4>::from_data(
        TensorData::new(data, [stamps.len(), 1, mel.rows, mel.frames]),
        &Default::default(),
    );
    let q = m.unit_queries(mels).into_data().to_vec::<f32>().unwrap();
    let hits = (0..stamps.len())
        .filter(|&k| {
            let row = &q[k * EMBED..(k + 1) * EMBED];
            let best = (0..stamps.len())
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap();
            best == k
        })
        .count();
    hits as f64 / stamps.len() as f64
}

/// 40 new scenes of `stamps` over other frames, each with its sounding stamp's caption axis.
pub(crate) fn new_scenes(stamps: &[Stamp]) -> (Vec<TestScene>, Vec<Vec<f32>>) {
    let scenes = test_scenes(stamps);
    let texts = scenes
        .iter()
        .map(|s| axis(stamps.iter().position(|t| t.name == s.label).unwrap()))
        .collect();
    (scenes, texts)
}

#[test]
fn the_bridge_ties_sounds_and_captions_to_their_stamps() {
    let _rng = crate::seeded();
    let stamps = stamps();
    let mut shares = Vec::new();
    for bridge in [0.0, 1.0] {
        let config = config(LocalizerKind::Attention, bridge, 300);
        let (model, _dir) = train_toy(&config, Some(anchors(&stamps)));
        shares.push(sounds_nearest_their_caption(&model, &stamps));
        if bridge > 0.0 {
            // The halves apart on new scenes: the caption points at its stamp, and each
            // scene's sound finds its caption.
            let (scenes, texts) = new_scenes(&stamps);
            let report =
                evaluate_bridge(&model, None, &scenes, &texts, &Default::default()).unwrap();
            eprintln!("{report:?}");
            assert_eq!(report.captions, 6);
            assert_eq!(report.sound_caption_top1, 1.0, "{report:?}");
            assert!(report.caption_pointing_game >= 0.5, "{report:?}");
            let err = evaluate_bridge(&model, None, &scenes, &texts[1..], &Default::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("one each"), "{err}");
        }
    }
    eprintln!("sounds nearest their caption, without and with the bridge: {shares:?}");
    // Without the bridge the queries owe the caption axes nothing; with it every sound finds
    // its own caption among the six.
    assert_eq!(shares[1], 1.0, "{shares:?}");
    assert!(shares[0] < 1.0, "{shares:?}");
}

#[test]
fn bridge_settings_are_refused_before_training() {
    let stamps = stamps();
    let dir = tempfile::tempdir().unwrap();
    let attempt = |config: LocalizerTrainConfig, anchors: Option<TextAnchors>| {
        refusal(&config, anchors, dir.path())
    };
    let concat = attempt(
        config(LocalizerKind::Concat, 1.0, 1),
        Some(anchors(&stamps)),
    );
    assert!(concat.contains("concat form"), "{concat}");
    let missing = attempt(config(LocalizerKind::Attention, 1.0, 1), None);
    assert!(missing.contains("no caption embeddings"), "{missing}");
    let mut narrow = anchors(&stamps);
    narrow.texts.iter_mut().for_each(|t| t.truncate(8));
    let width = attempt(config(LocalizerKind::Attention, 1.0, 1), Some(narrow));
    assert!(width.contains("model.embed (16)"), "{width}");
    let mut short = anchors(&stamps);
    short.sound_texts.pop();
    let count = attempt(config(LocalizerKind::Attention, 1.0, 1), Some(short));
    assert!(count.contains("each of the 6 stamps with sound"), "{count}");
    let negative = attempt(config(LocalizerKind::Attention, -1.0, 1), None);
    assert!(negative.contains("0 or more"), "{negative}");
    let mut off = config(LocalizerKind::Attention, 0.0, 1);
    off.bridge_sources = vec!["emoji".into()];
    let sources = attempt(off, None);
    assert!(
        sources.contains("bridge_sources") && sources.contains("off"),
        "{sources}"
    );
    let mut pretrain_off = config(LocalizerKind::Attention, 0.0, 10);
    pretrain_off.bridge_pretrain = 5;
    let off = attempt(pretrain_off, None);
    assert!(
        off.contains("bridge_pretrain 5") && off.contains("off"),
        "{off}"
    );
    let mut all_steps = config(LocalizerKind::Attention, 1.0, 10);
    all_steps.bridge_pretrain = 10;
    let all = attempt(all_steps, Some(anchors(&stamps)));
    assert!(all.contains("none of the 10 steps"), "{all}");
    // Nothing was trained: the run folder holds no model.
    assert!(!dir.path().join("final").exists());
}

#[test]
fn pretraining_on_captions_leaves_the_sound_side_untrained() {
    let _rng = crate::seeded();
    let stamps = stamps();
    // Every step but the last on the captions alone: the picture side learns where each
    // caption's stamp is, and the sound side, which only the last step touches, does not
    // learn which caption each sound goes with (the full bridge puts all six on theirs,
    // the test above).
    let mut settings = config(LocalizerKind::Attention, 1.0, 301);
    settings.bridge_pretrain = 300;
    let (model, dir) = train_toy(&settings, Some(anchors(&stamps)));
    let (scenes, texts) = new_scenes(&stamps);
    let report = evaluate_bridge(&model, None, &scenes, &texts, &Default::default()).unwrap();
    eprintln!("{report:?}");
    assert!(report.caption_pointing_game >= 0.5, "{report:?}");
    assert!(report.sound_caption_top1 < 1.0, "{report:?}");
    // The setting is written to the run only when set, so runs saved before it resume.
    let saved = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    assert!(saved.contains("\"bridge_pretrain\": 300"), "{saved}");
}
