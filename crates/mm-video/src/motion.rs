//! The controlled motion set (`cargo xtask data synth motion`): a real sprite (an emoji image)
//! moves across real film frames (consecutive frames of *Big Buck Bunny*, so the background moves
//! too) in one of 8 directions, while it rotates or zooms, with the exact direction as label.
//! Training clips use the Google emoji and the film's training minutes; test clips the Twitter
//! emoji and the test minutes, so neither sprite style nor background is shared.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage, RgbaImage};
use mm_data::manifest::{ImageCaption, Manifest, VideoClip};
use mm_data::rng::SplitMix64;

use crate::datasets::{TEST_START_S, TRAIN_END_S};
use crate::error::{Result, VideoError};
use crate::ffmpeg::Ffmpeg;
use crate::y4m::write_y4m;

/// The classes: direction of travel, counter-clockwise from east, screen up being north.
pub const DIRECTIONS: [&str; 8] = [
    "east",
    "north-east",
    "north",
    "north-west",
    "west",
    "south-west",
    "south",
    "south-east",
];

/// How the set is rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct MotionConfig {
    /// Frame width and height.
    pub size: u32,
    /// Frames per clip.
    pub frames: usize,
    /// Training clips per direction.
    pub train_per_class: usize,
    /// Test clips per direction.
    pub test_per_class: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for MotionConfig {
    fn default() -> Self {
        MotionConfig {
            size: 64,
            frames: 8,
            train_per_class: 200,
            test_per_class: 50,
            seed: 17,
        }
    }
}

/// Renders both splits into `dest` from the film (`film`, the working copy of `data fetch
/// video`) and the emoji manifests (`google`, `twitter` of `data fetch emoji`); returns the
/// manifest (`dest/motion.jsonl`).
pub fn render_motion_set(
    film: &Path,
    google: &Path,
    twitter: &Path,
    dest: &Path,
    config: &MotionConfig,
    ffmpeg: &Ffmpeg,
) -> Result<PathBuf> {
    let duration = ffmpeg.probe(film)?.duration_s;
    let mut records = Vec::new();
    let mut rng = SplitMix64::new(config.seed);
    for (split, sprites, range, per_class) in [
        ("train", google, (0.0, TRAIN_END_S), config.train_per_class),
        (
            "test",
            twitter,
            (TEST_START_S, duration),
            config.test_per_class,
        ),
    ] {
        let sprites = load_sprites(sprites)?;
        let dir = dest.join(split);
        std::fs::create_dir_all(&dir).map_err(|e| VideoError::io(&dir, e))?;
        for i in 0..per_class * DIRECTIONS.len() {
            let direction = i % DIRECTIONS.len();
            let span = config.frames as f64 / 24.0;
            let start = range.0 + rng.uniform() * (range.1 - range.0 - span - 0.1);
            let background = ffmpeg.frames_cover(
                film,
                start,
                config.frames,
                None,
                (config.size, config.size),
            )?;
            if background.len() < config.frames {
                return Err(VideoError::Request(format!(
                    "{} ends before {start:.1} s + {span:.2} s",
                    film.display()
                )));
            }
            let sprite = &sprites[(rng.next_u64() % sprites.len() as u64) as usize];
            let clip = render_clip(background, sprite, direction, &mut rng);
            let name = format!("{split}/{i:05}.y4m");
            let path = dest.join(&name);
            let mut file = std::fs::File::create(&path).map_err(|e| VideoError::io(&path, e))?;
            write_y4m(&mut file, &clip, 24.0).map_err(|e| VideoError::io(&path, e))?;
            records.push(VideoClip {
                audio: None,
                video: name,
                start: None,
                end: None,
                label: Some(DIRECTIONS[direction].to_string()),
                split: Some(split.to_string()),
            });
        }
    }
    let manifest = dest.join("motion.jsonl");
    Manifest::write(&manifest, &records).map_err(|e| VideoError::Request(e.to_string()))?;
    Ok(manifest)
}

/// The RGBA images of an emoji manifest.
pub(crate) fn load_sprites(manifest: &Path) -> Result<Vec<RgbaImage>> {
    let m =
        Manifest::<ImageCaption>::read(manifest).map_err(|e| VideoError::Request(e.to_string()))?;
    m.records
        .iter()
        .step_by(4)
        .map(|r| {
            let path = m.resolve(&r.image);
            image::open(&path)
                .map(|i| i.to_rgba8())
                .map_err(|e| VideoError::Corrupt {
                    path,
                    format: "image",
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// Draws `sprite` moving in `direction` over `background`, rotating or zooming as it goes.
pub fn render_clip(
    mut frames: Vec<RgbImage>,
    sprite: &RgbaImage,
    direction: usize,
    rng: &mut SplitMix64,
) -> Vec<RgbImage> {
    let size = frames[0].width() as f64;
    let n = frames.len() as f64;
    let sprite_px = 16.0 + 8.0 * rng.uniform();
    let speed = 2.0 + 1.5 * rng.uniform();
    let angle = direction as f64 * std::f64::consts::FRAC_PI_4;
    let (dx, dy) = (speed * angle.cos(), -speed * angle.sin());
    // Start so the whole path stays inside the frame.
    let travel = (dx * (n - 1.0), dy * (n - 1.0));
    let margin = sprite_px * 0.75;
    let pick = |rng: &mut SplitMix64, d: f64| {
        let lo = margin - d.min(0.0);
        let hi = size - margin - d.max(0.0);
        lo + rng.uniform() * (hi - lo).max(0.0)
    };
    let (x0, y0) = (pick(rng, travel.0), pick(rng, travel.1));
    let rotating = rng.uniform() < 0.5;
    let spin = (rng.uniform() - 0.5) * 0.4; // radians per frame
    let zoom = 1.0 + (rng.uniform() - 0.5) * 0.08; // scale factor per frame
    for (t, frame) in frames.iter_mut().enumerate() {
        let t = t as f64;
        let (theta, scale) = if rotating {
            (spin * t, 1.0)
        } else {
            (0.0, zoom.powf(t))
        };
        draw_sprite(
            frame,
            sprite,
            (x0 + dx * t, y0 + dy * t),
            sprite_px * scale,
            theta,
        );
    }
    frames
}

/// Alpha-composites `sprite`, scaled to `px` pixels wide and turned by `theta`, centred at
/// `centre` (inverse mapping with bilinear sampling).
pub(crate) fn draw_sprite(
    frame: &mut RgbImage,
    sprite: &RgbaImage,
    centre: (f64, f64),
    px: f64,
    theta: f64,
) {
    let (sw, sh) = (sprite.width() as f64, sprite.height() as f64);
    let unit = sw / px;
    let (cos, sin) = (theta.cos(), theta.sin());
    let reach = px * 0.75;
    let (x_lo, x_hi) = (
        (centre.0 - reach).floor().max(0.0) as u32,
        ((centre.0 + reach).ceil() as u32).min(frame.width()),
    );
    let (y_lo, y_hi) = (
        (centre.1 - reach).floor().max(0.0) as u32,
        ((centre.1 + reach).ceil() as u32).min(frame.height()),
    );
    for y in y_lo..y_hi {
        for x in x_lo..x_hi {
            let (rx, ry) = (x as f64 + 0.5 - centre.0, y as f64 + 0.5 - centre.1);
            let u = (cos * rx + sin * ry) * unit + sw / 2.0 - 0.5;
            let v = (-sin * rx + cos * ry) * unit + sh / 2.0 - 0.5;
            let Some(rgba) = bilinear(sprite, u, v) else {
                continue;
            };
            let a = rgba[3] / 255.0;
            let p = frame.get_pixel_mut(x, y);
            *p = Rgb(std::array::from_fn(|c| {
                (rgba[c] * a + p.0[c] as f64 * (1.0 - a)).round() as u8
            }));
        }
    }
}

fn bilinear(img: &RgbaImage, u: f64, v: f64) -> Option<[f64; 4]> {
    let (w, h) = (img.width() as f64, img.height() as f64);
    if u < 0.0 || v < 0.0 || u > w - 1.0 || v > h - 1.0 {
        return None;
    }
    let (x0, y0) = (u.floor() as u32, v.floor() as u32);
    let (x1, y1) = (
        (x0 + 1).min(img.width() - 1),
        (y0 + 1).min(img.height() - 1),
    );
    let (fx, fy) = (u - x0 as f64, v - y0 as f64);
    let px = |x, y| img.get_pixel(x, y).0.map(|c| c as f64);
    let (a, b, c, d) = (px(x0, y0), px(x1, y0), px(x0, y1), px(x1, y1));
    Some(std::array::from_fn(|k| {
        a[k] * (1.0 - fx) * (1.0 - fy)
            + b[k] * fx * (1.0 - fy)
            + c[k] * (1.0 - fx) * fy
            + d[k] * fx * fy
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The centroid of red pixels in a frame.
    fn red_centroid(frame: &RgbImage) -> (f64, f64) {
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        for (x, y, p) in frame.enumerate_pixels() {
            if p.0[0] > 200 && p.0[1] < 60 {
                sx += x as f64;
                sy += y as f64;
                n += 1.0;
            }
        }
        (sx / n, sy / n)
    }

    #[test]
    fn sprites_move_in_their_direction() {
        let sprite = RgbaImage::from_pixel(16, 16, image::Rgba([255, 0, 0, 255]));
        let mut rng = SplitMix64::new(3);
        for direction in 0..8 {
            let background = vec![RgbImage::from_pixel(64, 64, Rgb([20, 20, 20])); 8];
            let clip = render_clip(background, &sprite, direction, &mut rng);
            let (a, b) = (red_centroid(&clip[0]), red_centroid(&clip[7]));
            let angle = (-(b.1 - a.1)).atan2(b.0 - a.0);
            let want = direction as f64 * std::f64::consts::FRAC_PI_4;
            let diff = (angle - want + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU)
                - std::f64::consts::PI;
            assert!(
                diff.abs() < 0.2,
                "direction {direction}: moved at {angle} rad"
            );
        }
    }
}
