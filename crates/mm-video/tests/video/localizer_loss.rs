//! The localizer's training signal: both pair losses against their definitions computed here
//! in f64, and the training-time variation of sounds and scenes (what `augment` may and may not
//! change).

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use mm_audio::features::Features;
use mm_data::rng::SplitMix64;
use mm_video::av::localizer_train::{PairLoss, augment_mel, pair_loss};
use mm_video::av::scenes::{SceneConfig, Stamp, compose, compose_with};

type B = Flex;

/// Scores of 4 scenes against 4 sounds, and which sound is of a stamp in which scene (the
/// diagonal, plus two scenes that hold a second scene's sounding stamp).
fn scores() -> (Vec<f64>, Vec<f64>) {
    let logits = vec![
        2.0, -1.0, 0.5, -3.0, //
        0.3, 1.2, -0.7, 0.1, //
        -2.0, 0.4, 0.9, 1.5, //
        0.0, -0.5, 2.5, 3.0,
    ];
    let present = vec![
        1.0, 0.0, 1.0, 0.0, //
        0.0, 1.0, 0.0, 0.0, //
        0.0, 0.0, 1.0, 0.0, //
        0.0, 1.0, 0.0, 1.0,
    ];
    (logits, present)
}

fn loss_of(kind: PairLoss) -> f64 {
    let (l, p) = scores();
    let device = Default::default();
    let t = |v: Vec<f64>| {
        Tensor::<B, 2>::from_data(
            TensorData::new(v.iter().map(|&x| x as f32).collect(), [4, 4]),
            &device,
        )
    };
    pair_loss(t(l), t(p), kind).into_scalar() as f64
}

#[test]
fn binary_cross_entropy_is_the_mean_over_every_pair() {
    let (l, p) = scores();
    let expected = l
        .iter()
        .zip(&p)
        .map(|(&x, &y)| {
            let sig = 1.0 / (1.0 + (-x).exp());
            -(y * sig.ln() + (1.0 - y) * (1.0 - sig).ln())
        })
        .sum::<f64>()
        / 16.0;
    let got = loss_of(PairLoss::Bce);
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
}

#[test]
fn contrastive_loss_puts_the_softmax_mass_on_the_positives_both_ways() {
    let (l, p) = scores();
    let at = |i: usize, j: usize| l[i * 4 + j];
    let is = |i: usize, j: usize| p[i * 4 + j] == 1.0;
    // Scenes over sounds (rows), then sounds over scenes (columns).
    let mut rows = 0.0;
    let mut cols = 0.0;
    for a in 0..4 {
        let all: f64 = (0..4).map(|b| at(a, b).exp()).sum();
        let pos: f64 = (0..4).filter(|&b| is(a, b)).map(|b| at(a, b).exp()).sum();
        rows += -(pos / all).ln() / 4.0;
        let all: f64 = (0..4).map(|b| at(b, a).exp()).sum();
        let pos: f64 = (0..4).filter(|&b| is(b, a)).map(|b| at(b, a).exp()).sum();
        cols += -(pos / all).ln() / 4.0;
    }
    let expected = (rows + cols) / 2.0;
    let got = loss_of(PairLoss::Contrastive);
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
}

/// A 40-band, 200-frame log-mel (2 s) with a distinct value in every cell of its first
/// `sounding` frames and silence after.
fn mel(sounding: usize) -> Features {
    Features {
        rows: 40,
        frames: 200,
        data: (0..8000)
            .map(|i| {
                if i % 200 < sounding {
                    0.1 + i as f64 / 9000.0
                } else {
                    0.0
                }
            })
            .collect(),
    }
}

#[test]
fn a_varied_sound_is_the_same_sound_delayed_shifted_and_masked() {
    let mut rng = SplitMix64::new(3);
    let mut delays = std::collections::BTreeSet::new();
    let mut shifts = std::collections::BTreeSet::new();
    for round in 0..40 {
        // Long sounds and short ones (a fifth of a second, as the shortest stamp sounds).
        let original = mel(if round % 2 == 0 { 200 } else { 20 });
        let varied = augment_mel(&original, &mut rng);
        assert_eq!((varied.rows, varied.frames), (40, 200));
        assert_eq!(varied.data.len(), 8000);
        // Every non-silent cell is the original's cell one delay and one band shift away,
        // and one (delay, shift) explains all of them.
        let explains = |delay: usize, shift: isize| {
            varied.data.iter().enumerate().all(|(i, &v)| {
                let (r, t) = ((i / 200) as isize, i % 200);
                let from = r - shift;
                v == 0.0
                    || (t >= delay
                        && (0..40).contains(&from)
                        && v == original.data[from as usize * 200 + t - delay])
            })
        };
        let found: Vec<(usize, isize)> = (0..=40)
            .flat_map(|d| (-2..=2).map(move |s| (d, s)))
            .filter(|&(d, s)| explains(d, s))
            .collect();
        assert!(!found.is_empty(), "no delay and band shift explains it");
        // Most of the sound survives: the masks take at most half its span and 5 bands, the
        // delay at most 0.4 s of its end.
        let kept = varied.data.iter().filter(|&&v| v != 0.0).count();
        let had = original.data.iter().filter(|&&v| v != 0.0).count();
        assert!(
            kept * 4 >= had,
            "round {round}: kept {kept} of {had} sounding cells"
        );
        if let [(d, s)] = found[..] {
            delays.insert(d);
            shifts.insert(s);
        }
    }
    assert!(delays.len() > 5, "delays drawn: {delays:?}");
    assert!(shifts.len() >= 3, "band shifts drawn: {shifts:?}");
}

fn stamps() -> Vec<Stamp> {
    (0..4)
        .map(|k| Stamp {
            image: RgbaImage::from_fn(16, 16, |x, _| {
                Rgba([40 * k as u8 + 60, (x * 12) as u8, 90, 255])
            }),
            name: format!("stamp {k}"),
            audio_path: String::new(),
            mel: mel(200),
        })
        .collect()
}

/// A flat 48x48 background and the default scene settings at that size.
fn plain_backdrop() -> (RgbImage, SceneConfig) {
    let back = RgbImage::from_pixel(48, 48, Rgb([100, 120, 140]));
    let config = SceneConfig {
        size: 48,
        ..SceneConfig::default()
    };
    (back, config)
}

#[test]
fn without_variation_a_scene_is_drawn_exactly_as_before() {
    let (back, config) = plain_backdrop();
    let (mut a, mut b) = (SplitMix64::new(5), SplitMix64::new(5));
    for _ in 0..5 {
        let plain = compose(&back, &stamps(), &config, &mut a);
        let same = compose_with(&back, &stamps(), &config, false, &mut b);
        assert_eq!(plain.image, same.image);
        assert_eq!(plain.objects, same.objects);
        assert_eq!(plain.mask, same.mask);
    }
}

#[test]
fn a_varied_scene_keeps_its_stamps_and_their_masks_but_not_their_pixels() {
    let (back, config) = plain_backdrop();
    let mut rng = SplitMix64::new(9);
    let mut changed = 0;
    for _ in 0..10 {
        let varied = compose_with(&back, &stamps(), &config, true, &mut rng);
        assert_eq!(varied.objects.len(), 3);
        // The stamps are opaque squares: the mask is the sounding stamp's whole square,
        // mirrored or not, and nothing else.
        let inside = varied.mask.pixels().filter(|p| p.0[0] == 255).count();
        let side = (inside as f64).sqrt().round() as usize;
        assert_eq!(side * side, inside, "the mask is not one square");
        assert!((14..=20).contains(&side), "mask side {side}");
        // A stamp's pixels differ from what an unvaried scene of the same draws would hold
        // when its brightness changed or it was mirrored.
        let plain_like = varied
            .image
            .pixels()
            .filter(|p| p.0 == [100, 120, 140])
            .count();
        assert!(plain_like < 48 * 48, "no stamp was drawn");
        changed += varied
            .image
            .pixels()
            .any(|p| p.0[0] != 60 && p.0[0] != 100 && p.0[0] != 140 && p.0[0] != 180)
            as usize;
    }
    assert!(changed > 0, "no stamp's brightness ever changed");
}
