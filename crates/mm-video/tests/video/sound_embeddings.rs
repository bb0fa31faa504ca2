//! Sound embeddings made by another model as the localizer's sound input: the file's named
//! errors, lookup by the sound file's bytes, and a localizer trained on embeddings alone.

use mm_audio::features::Features;
use mm_core::train::RunOptions;
use mm_video::av::localizer::{LocalizerConfig, LocalizerKind};
use mm_video::av::localizer_eval::{evaluate_localizer, load_localizer};
use mm_video::av::localizer_train::{LocalizerTrainConfig, train_localizer};
use mm_video::av::sound_embeddings::SoundEmbeddings;

use crate::localizer::{backgrounds, refusal, scene_config, stamps, test_scenes};

type A = burn::backend::Autodiff<burn::backend::Flex>;

const WIDTH: usize = 12;

/// The toy stamps with their tones replaced by embeddings: stamp k's is 1 at k and k + 6.
fn embedded_stamps() -> Vec<mm_video::av::scenes::Stamp> {
    stamps()
        .into_iter()
        .enumerate()
        .map(|(k, mut s)| {
            let mut data = vec![0.0; WIDTH];
            data[k] = 1.0;
            data[k + 6] = 1.0;
            s.mel = Features {
                rows: 1,
                frames: WIDTH,
                data,
            };
            s
        })
        .collect()
}

fn config() -> LocalizerTrainConfig {
    let mut model = LocalizerConfig::new(LocalizerKind::Attention)
        .with_width(8)
        .with_embed(16);
    model.sound_embedding = Some(WIDTH);
    LocalizerTrainConfig {
        model,
        scenes: scene_config(),
        batch: 16,
        steps: 300,
        lr: 3e-3,
        warmup: 10,
        checkpoint_every: 300,
        sound_embeddings: Some("toy.jsonl".into()),
        ..LocalizerTrainConfig::new(LocalizerKind::Attention)
    }
}

#[test]
fn a_localizer_on_embeddings_points_and_reloads() {
    let _rng = crate::seeded();
    let stamps = embedded_stamps();
    let test = test_scenes(&stamps);
    let dir = tempfile::tempdir().unwrap();
    let run = RunOptions {
        log_every: 1000,
        ..RunOptions::new(dir.path())
    };
    let config = config();
    let model = train_localizer::<A>(
        &config,
        stamps,
        backgrounds(30, 1),
        None,
        &run,
        &[Default::default()],
    )
    .unwrap();
    let report = evaluate_localizer(&model, &config, &test, &Default::default()).unwrap();
    eprintln!("{report:?}");
    assert!(report.pointing_game >= 0.5, "{report:?}");
    assert!(
        report.pointing_game >= report.shuffled_pointing_game + 0.2,
        "{report:?}"
    );
    let (reloaded, loaded) =
        load_localizer::<burn::backend::Flex>(&dir.path().join("final"), &Default::default())
            .unwrap();
    assert_eq!(loaded.model.sound_embedding, Some(WIDTH));
    assert_eq!(loaded.sound_embeddings, config.sound_embeddings);
    let again = evaluate_localizer(&reloaded, &loaded, &test, &Default::default()).unwrap();
    assert_eq!(report.pointing_game, again.pointing_game);
}

#[test]
fn inputs_the_model_does_not_read_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Log-mel stamps given to a model that reads embeddings, and the other way round.
    let why = refusal(&config(), None, dir.path());
    assert!(why.contains("model.sound_embedding (12)"), "{why}");
    let mut augment = config();
    augment.model.sound_embedding = None;
    augment.augment = true;
    augment.sound_embeddings = None;
    assert_eq!(
        refusal(&augment, None, dir.path()),
        "",
        "log-mels with augment train"
    );
    let run = RunOptions::new(dir.path());
    let mut varied = config();
    varied.augment = true;
    let err = train_localizer::<A>(
        &varied,
        embedded_stamps(),
        backgrounds(2, 1),
        None,
        &run,
        &[Default::default()],
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("augment"), "{err}");
}

#[test]
fn embeddings_are_found_by_the_sound_files_bytes_and_bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let sound = dir.path().join("moo.ogg");
    std::fs::write(&sound, b"not really a recording, only bytes to hash").unwrap();
    let hash = mm_data::fetch::sha256_file(&sound).unwrap();
    let file = dir.path().join("embeddings.jsonl");
    let line = |h: &str, e: &str| format!("{{\"sha256\": \"{h}\", \"embedding\": {e}}}\n");
    let other = "0".repeat(64);
    std::fs::write(
        &file,
        line(&hash, "[0.5, -1, 2]") + &line(&other, "[1, 1, 1]"),
    )
    .unwrap();
    let e = SoundEmbeddings::read(&file).unwrap();
    assert_eq!(e.width(), 3);
    let f = e.features(&sound).unwrap();
    assert_eq!((f.rows, f.frames, f.data), (1, 3, vec![0.5, -1.0, 2.0]));
    // The same bytes under another name are the same sound.
    let copy = dir.path().join("sub-copy.ogg");
    std::fs::copy(&sound, &copy).unwrap();
    assert_eq!(e.features(&copy).unwrap().data, vec![0.5, -1.0, 2.0]);
    let unknown = dir.path().join("baa.ogg");
    std::fs::write(&unknown, b"another sound").unwrap();
    let err = e.features(&unknown).unwrap_err().to_string();
    assert!(
        err.contains("baa.ogg") && err.contains("has no embedding"),
        "{err}"
    );
    let bad = |text: String, want: &str| {
        std::fs::write(&file, text).unwrap();
        let err = SoundEmbeddings::read(&file).unwrap_err().to_string();
        assert!(
            err.contains(want) && err.contains("embeddings.jsonl"),
            "{want}: {err}"
        );
    };
    bad(String::new(), "no embeddings");
    bad("{not json\n".into(), "line 1");
    bad(line("abc", "[1]"), "64 hex digits");
    bad(line(&hash, "[]"), "empty or not finite");
    bad(line(&hash, "[1, 2]") + &line(&other, "[1]"), "line 2");
    let missing = SoundEmbeddings::read(&dir.path().join("none.jsonl"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("none.jsonl"), "{missing}");
}
