//! Photometric and flip augmentation of training images, as CLIP-style training uses to make a
//! model see objects rather than one drawing style: horizontal flips, grayscale, and jitter of
//! brightness, contrast and saturation (torchvision's `ColorJitter` formulas, on 8-bit RGB).
//!
//! Draws come from the trainer's seeded step generator, so a resumed run sees the same images.
//! With every probability and amplitude at zero nothing is drawn, which keeps runs that do not
//! augment identical to runs before augmentation existed.

use mm_vision::decode::RgbImage;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

/// How training images are augmented (all off by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColourAugment {
    /// Probability of a horizontal flip.
    #[serde(default)]
    pub flip: f64,
    /// Probability of turning the image gray (luma, kept in three channels).
    #[serde(default)]
    pub grayscale: f64,
    /// Largest relative change of brightness, contrast and saturation: each factor is drawn
    /// uniformly from `[1 - jitter, 1 + jitter]`.
    #[serde(default)]
    pub jitter: f64,
}

/// What is done to one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    /// Mirror left to right.
    pub flip: bool,
    /// Drop colour.
    pub gray: bool,
    /// Brightness, contrast and saturation factors (1: unchanged).
    pub factors: [f32; 3],
}

impl Draw {
    /// The identity.
    pub const NONE: Draw = Draw {
        flip: false,
        gray: false,
        factors: [1.0; 3],
    };
}

impl ColourAugment {
    /// Whether nothing is ever changed.
    pub fn is_off(&self) -> bool {
        self.flip <= 0.0 && self.grayscale <= 0.0 && self.jitter <= 0.0
    }

    /// Checks the settings: probabilities in [0, 1], jitter in [0, 1).
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [("flip", self.flip), ("grayscale", self.grayscale)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!(
                    "augment.{name} must be a probability in [0, 1], got {p}"
                ));
            }
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(format!(
                "augment.jitter must be in [0, 1), got {}",
                self.jitter
            ));
        }
        Ok(())
    }

    /// Draws for `n` images (nothing is drawn from `rng` when off).
    pub fn draw(&self, rng: &mut dyn RngCore, n: usize) -> Vec<Draw> {
        if self.is_off() {
            return vec![Draw::NONE; n];
        }
        let j = self.jitter as f32;
        (0..n)
            .map(|_| Draw {
                flip: rng.random::<f64>() < self.flip,
                gray: rng.random::<f64>() < self.grayscale,
                factors: std::array::from_fn(|_| 1.0 + j * (2.0 * rng.random::<f32>() - 1.0)),
            })
            .collect()
    }
}

fn luma(p: &[f32]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

/// `img` with `draw` applied: flip, brightness, contrast (towards the mean luma), saturation
/// (towards each pixel's luma), then grayscale; each step clamped to [0, 255].
pub fn apply(img: &RgbImage, draw: &Draw) -> RgbImage {
    if *draw == Draw::NONE {
        return img.clone();
    }
    let (w, h) = (img.width as usize, img.height as usize);
    let mut px: Vec<f32> = img.pixels.iter().map(|&v| v as f32).collect();
    if draw.flip {
        for row in px.chunks_mut(w * 3) {
            for x in 0..w / 2 {
                for c in 0..3 {
                    row.swap(x * 3 + c, (w - 1 - x) * 3 + c);
                }
            }
        }
    }
    let clamp = |v: f32| v.clamp(0.0, 255.0);
    let [brightness, contrast, saturation] = draw.factors;
    px.iter_mut().for_each(|v| *v = clamp(*v * brightness));
    let mean = px.chunks(3).map(luma).sum::<f32>() / (w * h).max(1) as f32;
    px.iter_mut()
        .for_each(|v| *v = clamp(mean + contrast * (*v - mean)));
    for p in px.chunks_mut(3) {
        let y = luma(p);
        for v in p.iter_mut() {
            *v = clamp(y + saturation * (*v - y));
        }
        if draw.gray {
            let y = luma(p);
            p.fill(y);
        }
    }
    RgbImage {
        width: img.width,
        height: img.height,
        pixels: px.iter().map(|v| v.round() as u8).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn image() -> RgbImage {
        // 2x1: a red pixel, then a blue one.
        RgbImage {
            width: 2,
            height: 1,
            pixels: vec![200, 0, 0, 0, 0, 100],
        }
    }

    #[test]
    fn off_draws_nothing_and_changes_nothing() {
        let mut rng = StdRng::seed_from_u64(1);
        let before: u64 = StdRng::seed_from_u64(1).random();
        let draws = ColourAugment::default().draw(&mut rng, 4);
        assert!(draws.iter().all(|d| *d == Draw::NONE));
        assert_eq!(
            rng.random::<u64>(),
            before,
            "the generator was not advanced"
        );
        assert_eq!(apply(&image(), &Draw::NONE), image());
    }

    #[test]
    fn flips_and_grays() {
        let flipped = apply(
            &image(),
            &Draw {
                flip: true,
                ..Draw::NONE
            },
        );
        assert_eq!(flipped.pixels, vec![0, 0, 100, 200, 0, 0]);
        let gray = apply(
            &image(),
            &Draw {
                gray: true,
                ..Draw::NONE
            },
        );
        // Luma of (200, 0, 0) is 59.8; of (0, 0, 100) 11.4.
        assert_eq!(gray.pixels, vec![60, 60, 60, 11, 11, 11]);
    }

    #[test]
    fn jitter_scales_brightness_and_saturation() {
        let brighter = apply(
            &image(),
            &Draw {
                factors: [1.2, 1.0, 1.0],
                ..Draw::NONE
            },
        );
        assert_eq!(brighter.pixels, vec![240, 0, 0, 0, 0, 120]);
        let desaturated = apply(
            &image(),
            &Draw {
                factors: [1.0, 1.0, 0.0],
                ..Draw::NONE
            },
        );
        assert_eq!(desaturated.pixels, vec![60, 60, 60, 11, 11, 11]);
        let aug = ColourAugment {
            jitter: 0.4,
            flip: 0.5,
            grayscale: 0.0,
        };
        let draws = aug.draw(&mut StdRng::seed_from_u64(3), 200);
        assert!(draws.iter().all(|d| !d.gray));
        assert!(
            draws
                .iter()
                .flat_map(|d| d.factors)
                .all(|f| (0.6..=1.4).contains(&f))
        );
        let flips = draws.iter().filter(|d| d.flip).count();
        assert!((70..130).contains(&flips), "{flips} flips of 200");
        assert!(aug.validate().is_ok());
        assert!(ColourAugment { flip: 1.5, ..aug }.validate().is_err());
        assert!(ColourAugment { jitter: 1.0, ..aug }.validate().is_err());
    }
}
