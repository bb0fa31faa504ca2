//! Scenes for sound-source localization (`cargo xtask data synth scenes`): 2-4 Tux Paint stamps
//! (photo and clip-art cutouts) composited onto a film frame, one of them playing its own
//! sound; that stamp's alpha channel, as placed, is the exact ground-truth mask. Training
//! scenes are composed on the fly from the training stamps and the film's training minutes;
//! test scenes, written to disk with their masks, from the held-out stamps (and so held-out
//! sounds) over the test minutes.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{GrayImage, Luma, RgbImage, RgbaImage};
use mm_audio::decode::load_audio;
use mm_audio::features::Features;
use mm_audio::resample::resample;
use mm_data::manifest::{ImageMask, ImageSound, Manifest};
use mm_data::rng::SplitMix64;

use super::clips::AV_SAMPLE_RATE;
use super::sound_embeddings::SoundInput;
use crate::datasets::{TEST_START_S, TRAIN_END_S};
use crate::error::{Result, VideoError};
use crate::ffmpeg::Ffmpeg;

/// Seconds of each stamp's sound the models hear (shorter sounds are padded with silence).
pub const SOUND_S: f64 = 2.0;
/// Longest side of a stamp as loaded (scenes scale it down further).
const STAMP_PX: u32 = 64;

/// A stamp: its cutout, what it is and the log-mel of its sound.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// The cutout, longest side [`STAMP_PX`].
    pub image: RgbaImage,
    /// Its caption ("A frog.").
    pub name: String,
    /// The manifest's path of its sound.
    pub audio_path: String,
    /// Normalized log-mel of the first [`SOUND_S`] of its sound, `[40][200]`.
    pub mel: Features,
}

/// How scenes are drawn.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SceneConfig {
    /// Scene width and height.
    pub size: u32,
    /// Stamps per scene (inclusive range).
    pub objects: (usize, usize),
    /// Longest side of a placed stamp, as a fraction of the scene (inclusive range).
    pub scale: (f64, f64),
    /// Test scenes written by `data synth scenes`.
    pub test_scenes: usize,
    /// Seed of the test scenes.
    pub seed: u64,
}

impl Default for SceneConfig {
    fn default() -> Self {
        SceneConfig {
            size: 64,
            objects: (3, 3),
            scale: (0.3, 0.4),
            test_scenes: 300,
            seed: 41,
        }
    }
}

/// A composed scene.
#[derive(Debug, Clone)]
pub struct Scene {
    /// The picture.
    pub image: RgbImage,
    /// Indices (into the stamp list) of the stamps in it; the first is the sounding one.
    pub objects: Vec<usize>,
    /// The sounding stamp's mask (255 inside).
    pub mask: GrayImage,
}

/// The stamps of one split of a `stamp-sounds.jsonl` manifest, leaving out those whose sound
/// is silent.
pub fn load_stamps(manifest: &Path, split: &str) -> Result<Vec<Stamp>> {
    load_stamps_with(manifest, split, SoundInput::LogMel)
}

/// [`load_stamps`], each sound read as `input` (its log-mel, or its embedding from a file).
pub fn load_stamps_with(manifest: &Path, split: &str, input: SoundInput) -> Result<Vec<Stamp>> {
    let m =
        Manifest::<ImageSound>::read(manifest).map_err(|e| VideoError::Request(e.to_string()))?;
    let mut stamps = Vec::new();
    for r in m
        .records
        .iter()
        .filter(|r| r.split.as_deref() == Some(split))
    {
        let path = m.resolve(&r.image);
        let image = open_picture(&path)?;
        if !image.color().has_alpha() {
            return Err(VideoError::Request(format!(
                "{}: a stamp needs an alpha channel (its mask); this image has none",
                path.display()
            )));
        }
        let image = cutout(&image);
        let audio = m.resolve(&r.audio);
        let sound = load_sound(&audio)?;
        if is_silent(&sound) {
            // A stamp whose sound file is silence (the iguana's) has nothing to localize.
            continue;
        }
        stamps.push(Stamp {
            image,
            name: r.caption.clone().unwrap_or_else(|| r.image.clone()),
            audio_path: r.audio.clone(),
            mel: input.features(&sound, &audio)?,
        });
    }
    if stamps.len() < 4 {
        return Err(VideoError::Request(format!(
            "{} has {} `{split}` stamps with sound; scenes need at least 4",
            manifest.display(),
            stamps.len()
        )));
    }
    Ok(stamps)
}

/// The picture at `path`, or an error that names it.
pub(crate) fn open_picture(path: &Path) -> Result<image::DynamicImage> {
    image::open(path).map_err(|e| VideoError::Corrupt {
        path: path.to_path_buf(),
        format: "image",
        reason: e.to_string(),
    })
}

/// A picture as a stamp's cutout: longest side [`STAMP_PX`], with an alpha channel (opaque
/// where the picture has none).
pub(crate) fn cutout(image: &image::DynamicImage) -> RgbaImage {
    image
        .resize(STAMP_PX, STAMP_PX, FilterType::Triangle)
        .to_rgba8()
}

/// The first [`SOUND_S`] of the sound at `path`, mono at 16 kHz, padded with silence.
pub fn load_sound(path: &Path) -> Result<Vec<f32>> {
    let bad = |e: String| VideoError::Corrupt {
        path: path.to_path_buf(),
        format: "audio",
        reason: e,
    };
    let sound = load_audio(path).map_err(|e| bad(e.to_string()))?;
    let mut mono = resample(&sound.to_mono(), sound.sample_rate, AV_SAMPLE_RATE)
        .map_err(|e| bad(e.to_string()))?;
    mono.resize((SOUND_S * AV_SAMPLE_RATE as f64) as usize, 0.0);
    Ok(mono)
}

/// Whether a sound is silent (every sample below -80 dB full scale).
pub fn is_silent(samples: &[f32]) -> bool {
    samples.iter().all(|s| s.abs() < 1e-4)
}

/// The sound at `path` read as `input`: the normalized log-mel of its first [`SOUND_S`]
/// (padded with silence), or its embedding; a sound that is silent there is refused.
pub fn sound_features(path: &Path, input: SoundInput) -> Result<Features> {
    let mono = load_sound(path)?;
    if is_silent(&mono) {
        return Err(VideoError::Corrupt {
            path: path.to_path_buf(),
            format: "audio",
            reason: format!("silent over its first {SOUND_S} s"),
        });
    }
    input.features(&mono, path)
}

/// `count` film frames spread over `[from, to)` seconds, `size` x `size` (one ffmpeg run).
pub fn backgrounds(
    film: &Path,
    (from, to): (f64, f64),
    count: usize,
    size: u32,
    ffmpeg: &Ffmpeg,
) -> Result<Vec<RgbImage>> {
    let fps = count as f64 / (to - from);
    let frames = ffmpeg.frames_cover(film, from, count, Some(fps), (size, size))?;
    if frames.is_empty() {
        return Err(VideoError::Request(format!(
            "{} has no frames in {from}-{to} s",
            film.display()
        )));
    }
    Ok(frames)
}

/// The film's training and test background ranges (seconds).
pub fn background_range(split: &str, duration_s: f64) -> (f64, f64) {
    if split == "test" {
        (TEST_START_S, duration_s - 1.0)
    } else {
        (0.0, TRAIN_END_S)
    }
}

/// Composes a scene: distinct stamps at non-overlapping places over `background`.
pub fn compose(
    background: &RgbImage,
    stamps: &[Stamp],
    config: &SceneConfig,
    rng: &mut SplitMix64,
) -> Scene {
    compose_with(background, stamps, config, false, rng)
}

/// [`compose`], and when `augment` each stamp is mirrored left to right half the time and its
/// brightness scaled by 0.7-1.3 (training scenes only: the same stamp never looks quite the
/// same twice). Without `augment` it draws exactly [`compose`]'s numbers.
pub fn compose_with(
    background: &RgbImage,
    stamps: &[Stamp],
    config: &SceneConfig,
    augment: bool,
    rng: &mut SplitMix64,
) -> Scene {
    let size = config.size;
    let (lo, hi) = config.objects;
    let want = (lo + (rng.next_u64() % (hi - lo + 1) as u64) as usize).min(stamps.len());
    let mut objects: Vec<usize> = Vec::new();
    while objects.len() < want {
        let s = (rng.next_u64() % stamps.len() as u64) as usize;
        if !objects.contains(&s) {
            objects.push(s);
        }
    }
    let mut image = background.clone();
    let mut boxes: Vec<(i64, i64, i64, i64)> = Vec::new();
    let mut mask = GrayImage::new(size, size);
    for (k, &s) in objects.iter().enumerate() {
        let side =
            (config.scale.0 + rng.uniform() * (config.scale.1 - config.scale.0)) * size as f64;
        let stamp = &stamps[s].image;
        let f = side / stamp.width().max(stamp.height()) as f64;
        let (w, h) = (
            ((stamp.width() as f64 * f).round() as u32).max(1),
            ((stamp.height() as f64 * f).round() as u32).max(1),
        );
        let mut placed = image::imageops::resize(stamp, w, h, FilterType::Triangle);
        if augment {
            if rng.next_u64() % 2 == 1 {
                image::imageops::flip_horizontal_in_place(&mut placed);
            }
            let gain = 0.7 + 0.6 * rng.uniform();
            for p in placed.pixels_mut() {
                for c in 0..3 {
                    p.0[c] = (p.0[c] as f64 * gain).round().min(255.0) as u8;
                }
            }
        }
        let mut at = (0i64, 0i64);
        for _ in 0..200 {
            at = (
                (rng.next_u64() % (size - w + 1) as u64) as i64,
                (rng.next_u64() % (size - h + 1) as u64) as i64,
            );
            let free = boxes.iter().all(|&(x, y, bw, bh)| {
                at.0 + w as i64 <= x || x + bw <= at.0 || at.1 + h as i64 <= y || y + bh <= at.1
            });
            if free {
                break;
            }
        }
        boxes.push((at.0, at.1, w as i64, h as i64));
        for (x, y, p) in placed.enumerate_pixels() {
            let (px, py) = (at.0 as u32 + x, at.1 as u32 + y);
            let a = p.0[3] as f32 / 255.0;
            let q = image.get_pixel_mut(px, py);
            for c in 0..3 {
                q.0[c] = (p.0[c] as f32 * a + q.0[c] as f32 * (1.0 - a)).round() as u8;
            }
            if k == 0 && p.0[3] >= 128 {
                mask.put_pixel(px, py, Luma([255]));
            }
        }
    }
    Scene {
        image,
        objects,
        mask,
    }
}

/// Writes the test scenes of `stamp_sounds` over the film's test minutes into `dest` (scene and
/// mask PNGs) and returns the manifests: `dest/scenes.jsonl` (the held-out stamps, the
/// figure that matters) and `dest/scenes-seen.jsonl` (the training stamps in new scenes over
/// the test minutes: localizing a sound the model has heard). Records are [`ImageMask`]s whose
/// `audio` is the sounding stamp's own sound file.
pub fn render_test_scenes(
    film: &Path,
    stamp_sounds: &Path,
    dest: &Path,
    config: &SceneConfig,
    ffmpeg: &Ffmpeg,
) -> Result<(PathBuf, PathBuf)> {
    let duration = ffmpeg.probe(film)?.duration_s;
    let range = background_range("test", duration);
    let backs = backgrounds(film, range, 100, config.size, ffmpeg)?;
    let held_out = render_scenes(stamp_sounds, "test", &backs, dest, "test", config)?;
    let seen = render_scenes(stamp_sounds, "train", &backs, dest, "seen", config)?;
    Ok((held_out, seen))
}

/// Scenes of the `split` stamps over `backs` in `dest/folder`, with their manifest.
fn render_scenes(
    stamp_sounds: &Path,
    split: &str,
    backs: &[RgbImage],
    dest: &Path,
    folder: &str,
    config: &SceneConfig,
) -> Result<PathBuf> {
    let stamps = load_stamps(stamp_sounds, split)?;
    let dir = dest.join(folder);
    std::fs::create_dir_all(&dir).map_err(|e| VideoError::io(&dir, e))?;
    let sounds_root = stamp_sounds.parent().unwrap_or(Path::new("."));
    let mut rng = SplitMix64::new(config.seed ^ (split == "train") as u64);
    let mut records = Vec::new();
    for i in 0..config.test_scenes {
        let back = &backs[(rng.next_u64() % backs.len() as u64) as usize];
        let scene = compose(back, &stamps, config, &mut rng);
        let (image, mask) = (
            format!("{folder}/{i:05}.png"),
            format!("{folder}/{i:05}-mask.png"),
        );
        for (path, result) in [
            (dest.join(&image), scene.image.save(dest.join(&image))),
            (dest.join(&mask), scene.mask.save(dest.join(&mask))),
        ] {
            result.map_err(|e| VideoError::io(&path, std::io::Error::other(e)))?;
        }
        let sounding = &stamps[scene.objects[0]];
        let audio = relative_to(&sounds_root.join(&sounding.audio_path), dest);
        records.push(ImageMask {
            image,
            mask,
            label: Some(sounding.name.clone()),
            split: Some("test".into()),
            audio: Some(audio),
        });
    }
    let name = if folder == "test" {
        "scenes.jsonl".to_string()
    } else {
        format!("scenes-{folder}.jsonl")
    };
    let manifest = dest.join(name);
    Manifest::write(&manifest, &records).map_err(|e| VideoError::Request(e.to_string()))?;
    Ok(manifest)
}

/// `path` relative to the folder `base` (both under a common root), with `..` as needed.
fn relative_to(path: &Path, base: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (path, base) = (abs(path), abs(base));
    let common = path
        .components()
        .zip(base.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = base.components().count() - common;
    let mut out = PathBuf::new();
    for _ in 0..ups {
        out.push("..");
    }
    for c in path.components().skip(common) {
        out.push(c);
    }
    out.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_out_of_the_base() {
        assert_eq!(
            relative_to(
                Path::new("/d/stamps/a/frog.ogg"),
                Path::new("/d/synth/scenes")
            ),
            "../../stamps/a/frog.ogg"
        );
    }
}
