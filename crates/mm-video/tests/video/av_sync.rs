//! The audio-visual synchronization pipeline on small clips made here (a square that flashes
//! or jumps over noise, and noise-burst hits on the same frames): rendering puts the picture
//! and the sound events on the same frames, the trained model finds the shift of the sound far
//! above chance, the shuffled-sound control does not, and bad clips get named errors.

use burn::backend::{Autodiff, Flex};
use image::{Rgb, RgbImage, RgbaImage};
use mm_core::train::RunOptions;
use mm_data::rng::SplitMix64;
use mm_video::av::clips::{AV_SAMPLE_RATE, check_clip};
use mm_video::av::sync_train::fit_config_to_clips;
use mm_video::av::synth::{SyncSetConfig, draw_onsets, render_audio, render_frames};
use mm_video::av::{
    AvClip, SyncNetConfig, SyncTrainConfig, evaluate_offsets, evaluate_sync, load_sync,
    motion_onset_offset, train_sync,
};

type A = Autodiff<Flex>;

fn set_config() -> SyncSetConfig {
    SyncSetConfig {
        size: 16,
        frames: 60,
        ..SyncSetConfig::default()
    }
}

/// Decaying noise bursts, the stand-in for drum samples.
fn hits(rng: &mut SplitMix64) -> Vec<Vec<f32>> {
    (0..4)
        .map(|_| {
            (0..1600)
                .map(|i| rng.normal() as f32 * (-(i as f32) / 300.0).exp())
                .collect()
        })
        .collect()
}

fn clip(rng: &mut SplitMix64, hits: &[Vec<f32>]) -> (AvClip, Vec<usize>) {
    let cfg = set_config();
    let background = RgbImage::from_fn(16, 16, |_, _| Rgb([(rng.next_u64() % 80) as u8 + 40; 3]));
    let shade = (rng.next_u64() % 100) as u8 + 60;
    let sprite = RgbaImage::from_pixel(8, 8, image::Rgba([shade, 40, 200 - shade, 255]));
    let onsets = draw_onsets(&cfg, rng);
    let frames = render_frames(&background, &sprite, &onsets, cfg.frames, rng);
    let audio = render_audio(hits, &onsets, &cfg, rng);
    (
        AvClip {
            frames,
            fps: cfg.fps,
            audio,
            context: (Vec::new(), Vec::new()),
        },
        onsets,
    )
}

fn clips(n: usize, seed: u64) -> Vec<AvClip> {
    let mut rng = SplitMix64::new(seed);
    let hits = hits(&mut rng);
    (0..n).map(|_| clip(&mut rng, &hits).0).collect()
}

#[test]
fn picture_and_sound_events_fall_on_the_same_frames() {
    let mut rng = SplitMix64::new(9);
    let hits = hits(&mut rng);
    for _ in 0..5 {
        let (clip, onsets) = clip(&mut rng, &hits);
        assert!(onsets.len() >= 3);
        let change = |t: usize| -> u64 {
            let (a, b) = (&clip.frames[t - 1], &clip.frames[t]);
            a.pixels()
                .zip(b.pixels())
                .map(|(p, q)| (0..3).map(|c| p.0[c].abs_diff(q.0[c]) as u64).sum::<u64>())
                .sum()
        };
        let energy = |t: usize| -> f32 {
            let per = AV_SAMPLE_RATE as usize / 24;
            clip.audio[t * per..(t + 1) * per]
                .iter()
                .map(|s| s * s)
                .sum()
        };
        for &o in &onsets {
            // The picture changes most on the hit frame, and the sound is loud from it on.
            assert!(change(o) > 0, "no change at onset {o}");
            assert!(change(o) >= change(o - 2), "onset {o}");
            assert!(energy(o) > 20.0 * energy(o - 1).max(1e-3), "onset {o}");
        }
    }
}

#[test]
fn shifting_the_sound_delays_or_advances_it() {
    let audio: Vec<f32> = (0..AV_SAMPLE_RATE as usize).map(|i| i as f32).collect();
    let mut clip = AvClip {
        frames: Vec::new(),
        fps: 25.0,
        audio,
        context: (Vec::new(), Vec::new()),
    };
    let per = AV_SAMPLE_RATE as usize / 25;
    let late = clip.shifted_audio(2);
    assert_eq!(late.len(), clip.audio.len());
    assert_eq!(late[2 * per], 0.0);
    assert_eq!(late[2 * per + 5], 5.0);
    assert_eq!(late[..2 * per].iter().sum::<f32>(), 0.0);
    let early = clip.shifted_audio(-1);
    assert_eq!(early[0], per as f32);
    assert_eq!(*early.last().unwrap(), 0.0);
    // With the sound around the clip, shifting brings it in instead of silence.
    clip.context = (vec![-1.0; 2 * per], vec![-2.0; 2 * per]);
    let late = clip.shifted_audio(1);
    assert_eq!((late[0], late[per - 1], late[per]), (-1.0, -1.0, 0.0));
    let early = clip.shifted_audio(-2);
    assert_eq!(*early.last().unwrap(), -2.0);
    assert_eq!(
        early[early.len() - 2 * per - 1],
        (AV_SAMPLE_RATE - 1) as f32
    );
}

#[test]
fn the_model_finds_the_shift_and_the_shuffled_control_does_not() {
    let _rng = crate::seeded();
    let dir = tempfile::tempdir().unwrap();
    let config = SyncTrainConfig {
        model: SyncNetConfig::new().with_width(8).with_embed(32),
        batch: 32,
        steps: 200,
        lr: 3e-3,
        warmup: 10,
        checkpoint_every: 100,
        ..SyncTrainConfig::default()
    };
    let run = RunOptions {
        log_every: 1000,
        ..RunOptions::new(dir.path())
    };
    let trained = train_sync::<A>(&config, clips(48, 1), &run, &[Default::default()]).unwrap();
    let (reloaded, fitted) =
        load_sync::<Flex>(&dir.path().join("final"), &Default::default()).unwrap();
    assert_eq!(fitted.model.mel_frames, 20);
    let test = clips(16, 2);
    let report = evaluate_sync(&trained, &fitted, &test, &Default::default()).unwrap();
    let again = evaluate_sync(&reloaded, &fitted, &test, &Default::default()).unwrap();
    assert_eq!(
        report.offset_top1, again.offset_top1,
        "reloaded model differs"
    );
    eprintln!("{report:?}");
    assert!(report.offset_top1 >= 0.75, "{report:?}");
    assert!(report.auc >= 0.8, "{report:?}");
    assert!(report.shuffled_offset_top1 <= 0.4, "{report:?}");
    // The baseline that learns nothing is scored on the same clips and shifts beside it.
    let baseline = report
        .motion_onset
        .as_ref()
        .expect("the baseline's figures");
    assert_eq!(baseline.n_test, report.n_test);
    assert!(baseline.motion_onset.is_none());
}

#[test]
fn motion_against_onsets_finds_the_shift_where_seen_events_are_heard() {
    let test = clips(24, 3);
    let report = evaluate_offsets(&test, 15, 5, |clip, audio| {
        motion_onset_offset(clip, audio, 15)
    })
    .unwrap();
    eprintln!("{report:?}");
    assert!(report.offset_top1 >= 0.9, "{report:?}");
    assert!(report.auc >= 0.9, "{report:?}");
    assert!(report.shuffled_offset_top1 <= 0.4, "{report:?}");
    assert!(report.shuffled_auc <= 0.75, "{report:?}");
    // A still picture gives the baseline nothing to go on: every shift scores 0.
    let mut still = test[0].clone();
    still.frames = vec![still.frames[0].clone(); still.frames.len()];
    let estimate = motion_onset_offset(&still, &still.audio, 15).unwrap();
    assert!(estimate.scores.iter().all(|&s| s == 0.0), "{estimate:?}");
    // Too few frames for the search is a named error.
    let mut short = test[0].clone();
    short.frames.truncate(32);
    let err = motion_onset_offset(&short, &short.audio, 15).unwrap_err();
    assert!(err.to_string().contains("32 frames"), "{err}");
}

#[test]
fn bad_clips_get_named_errors() {
    let frames = vec![RgbImage::new(8, 8); 40];
    let path = std::path::Path::new("clip.y4m");
    let silent = vec![0.0; AV_SAMPLE_RATE as usize * 2];
    let err = check_clip(path, &frames, &silent, 24.0).unwrap_err();
    assert!(err.to_string().contains("silent"), "{err}");
    let short = vec![0.1; 1000];
    let err = check_clip(path, &frames, &short, 24.0).unwrap_err();
    assert!(err.to_string().contains("sound lasts"), "{err}");
    let err = check_clip(path, &frames[..3], &short, 24.0).unwrap_err();
    assert!(err.to_string().contains("at least 8"), "{err}");

    let mut mixed = clips(2, 3);
    mixed[1].fps = 25.0;
    let err = fit_config_to_clips(&mut SyncTrainConfig::default(), &mixed).unwrap_err();
    assert!(err.to_string().contains("one frame rate"), "{err}");
    let tight = SyncTrainConfig {
        max_offset: 2,
        ..SyncTrainConfig::default()
    };
    let err = fit_config_to_clips(&mut tight.clone(), &clips(1, 5)).unwrap_err();
    assert!(err.to_string().contains("max_offset"), "{err}");
    let mut short_clip = clips(1, 4);
    short_clip[0].frames.truncate(20);
    let err = fit_config_to_clips(&mut SyncTrainConfig::default(), &short_clip).unwrap_err();
    assert!(err.to_string().contains("offset search"), "{err}");
}
