//! The controlled audio-visual synchronization set (`cargo xtask data synth av-sync`): real drum
//! hits (sonic-pi samples) at random onsets, and a real sprite (an emoji) over a real film frame
//! that flashes or bounces on the same frames, so the offset between sound and picture is known
//! exactly. Training clips use the Google emoji, the film's training minutes and the samples of
//! the sound manifest's training split; test clips the Twitter emoji, the test minutes and the
//! held-out samples. Each clip is a Y4M (no audio) with a mono 16 kHz WAV beside it.

use std::path::{Path, PathBuf};

use image::{RgbImage, RgbaImage};
use mm_audio::decode::load_audio;
use mm_audio::encode::write_wav_mono16;
use mm_audio::resample::resample;
use mm_data::manifest::{Manifest, VideoClip};
use mm_data::rng::SplitMix64;

use crate::datasets::{TEST_START_S, TRAIN_END_S};
use crate::error::{Result, VideoError};
use crate::ffmpeg::Ffmpeg;
use crate::motion::{draw_sprite, load_sprites};
use crate::y4m::write_y4m;

/// Sound groups of the sonic-pi manifest whose samples are short hits.
pub const HIT_GROUPS: [&str; 4] = ["drum", "bd", "perc", "tabla"];

/// How the set is rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSetConfig {
    /// Frame width and height.
    pub size: u32,
    /// Frames per second.
    pub fps: f64,
    /// Frames per clip.
    pub frames: usize,
    /// Audio sample rate.
    pub sample_rate: u32,
    /// Hits per clip (inclusive range).
    pub hits: (usize, usize),
    /// Fewest frames between two hits.
    pub min_gap: usize,
    /// Training clips.
    pub train_clips: usize,
    /// Test clips.
    pub test_clips: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for SyncSetConfig {
    fn default() -> Self {
        SyncSetConfig {
            size: 48,
            fps: 24.0,
            frames: 72,
            sample_rate: 16_000,
            hits: (3, 5),
            min_gap: 7,
            train_clips: 400,
            test_clips: 100,
            seed: 23,
        }
    }
}

/// How long a hit's sound lasts before it is faded out (seconds).
const HIT_S: f64 = 0.3;

/// Renders both splits into `dest` from the film, the emoji manifests and the sound manifest
/// (`sounds`, from `data fetch sounds`); returns the manifest (`dest/av-sync.jsonl`).
pub fn render_sync_set(
    film: &Path,
    (google, twitter): (&Path, &Path),
    sounds: &Path,
    dest: &Path,
    config: &SyncSetConfig,
    ffmpeg: &Ffmpeg,
) -> Result<PathBuf> {
    let duration = ffmpeg.probe(film)?.duration_s;
    let mut rng = SplitMix64::new(config.seed);
    let mut records = Vec::new();
    for (split, sprites, range, count) in [
        ("train", google, (0.0, TRAIN_END_S), config.train_clips),
        ("test", twitter, (TEST_START_S, duration), config.test_clips),
    ] {
        let sprites = load_sprites(sprites)?;
        let hits = load_hits(sounds, split, config.sample_rate)?;
        let dir = dest.join(split);
        std::fs::create_dir_all(&dir).map_err(|e| VideoError::io(&dir, e))?;
        for i in 0..count {
            let at = range.0 + rng.uniform() * (range.1 - range.0 - 1.0);
            let background = ffmpeg
                .frames_cover(film, at, 1, None, (config.size, config.size))?
                .pop()
                .ok_or_else(|| {
                    VideoError::Request(format!("{} has no frame at {at:.1} s", film.display()))
                })?;
            let sprite = &sprites[(rng.next_u64() % sprites.len() as u64) as usize];
            let onsets = draw_onsets(config, &mut rng);
            let frames = render_frames(&background, sprite, &onsets, config.frames, &mut rng);
            let audio = render_audio(&hits, &onsets, config, &mut rng);
            let (video, wav) = (format!("{split}/{i:05}.y4m"), format!("{split}/{i:05}.wav"));
            let path = dest.join(&video);
            let mut file = std::fs::File::create(&path).map_err(|e| VideoError::io(&path, e))?;
            write_y4m(&mut file, &frames, config.fps).map_err(|e| VideoError::io(&path, e))?;
            write_wav_mono16(&dest.join(&wav), &audio, config.sample_rate)
                .map_err(|e| VideoError::Request(e.to_string()))?;
            records.push(VideoClip {
                video,
                start: None,
                end: None,
                label: Some(format!("{onsets:?}")),
                split: Some(split.to_string()),
                audio: Some(wav),
            });
        }
    }
    let manifest = dest.join("av-sync.jsonl");
    Manifest::write(&manifest, &records).map_err(|e| VideoError::Request(e.to_string()))?;
    Ok(manifest)
}

/// The hit samples of `split`, mono at `rate`, cut to [`HIT_S`] with a linear fade-out.
fn load_hits(sounds: &Path, split: &str, rate: u32) -> Result<Vec<Vec<f32>>> {
    let bad = |e: String| VideoError::Request(format!("{}: {e}", sounds.display()));
    let records = mm_audio::datasets::read_manifest(sounds).map_err(|e| bad(e.to_string()))?;
    let mut hits = Vec::new();
    for (path, record) in records {
        if record.split != split || !HIT_GROUPS.contains(&record.label.as_str()) {
            continue;
        }
        let audio = load_audio(&path).map_err(|e| bad(e.to_string()))?;
        let mut mono =
            resample(&audio.to_mono(), audio.sample_rate, rate).map_err(|e| bad(e.to_string()))?;
        let keep = ((HIT_S * rate as f64) as usize).min(mono.len());
        mono.truncate(keep);
        let fade = keep / 3;
        for (k, s) in mono[keep - fade..].iter_mut().enumerate() {
            *s *= 1.0 - k as f32 / fade as f32;
        }
        let peak = mono.iter().fold(0.0f32, |m, s| m.max(s.abs())).max(1e-6);
        hits.push(mono.iter().map(|s| s / peak).collect());
    }
    if hits.is_empty() {
        return Err(bad(format!(
            "no {split} samples of the groups {HIT_GROUPS:?}"
        )));
    }
    Ok(hits)
}

/// Sorted hit frames, at least `min_gap` apart, clear of the clip's first and last 4 frames.
pub fn draw_onsets(config: &SyncSetConfig, rng: &mut SplitMix64) -> Vec<usize> {
    let (lo, hi) = config.hits;
    let want = lo + (rng.next_u64() % (hi - lo + 1) as u64) as usize;
    let mut onsets: Vec<usize> = Vec::new();
    for _ in 0..1000 {
        if onsets.len() == want {
            break;
        }
        let f = 4 + (rng.next_u64() % (config.frames - 8) as u64) as usize;
        if onsets.iter().all(|&o| o.abs_diff(f) >= config.min_gap) {
            onsets.push(f);
        }
    }
    onsets.sort_unstable();
    onsets
}

/// How strongly the sprite reacts `p` frames after a hit (1 on the hit frame, then fading).
fn reaction(onsets: &[usize], t: usize) -> f64 {
    const DECAY: [f64; 4] = [1.0, 0.6, 0.3, 0.1];
    onsets
        .iter()
        .filter(|&&o| o <= t && t - o < DECAY.len())
        .map(|&o| DECAY[t - o])
        .fold(0.0, f64::max)
}

/// The sprite at rest over `background`, flashing (brightened towards white) or bouncing
/// (lifted) on the onset frames.
pub fn render_frames(
    background: &RgbImage,
    sprite: &RgbaImage,
    onsets: &[usize],
    frames: usize,
    rng: &mut SplitMix64,
) -> Vec<RgbImage> {
    let size = background.width() as f64;
    let px = 0.4 * size + 0.15 * size * rng.uniform();
    let margin = px * 0.75;
    let centre = (
        margin + rng.uniform() * (size - 2.0 * margin),
        margin + rng.uniform() * (size - 2.0 * margin),
    );
    let flashing = rng.uniform() < 0.5;
    (0..frames)
        .map(|t| {
            let r = reaction(onsets, t);
            let mut frame = background.clone();
            if flashing {
                let bright = RgbaImage::from_fn(sprite.width(), sprite.height(), |x, y| {
                    let p = sprite.get_pixel(x, y).0;
                    let lift = |c: u8| (c as f64 + (255.0 - c as f64) * 0.8 * r).round() as u8;
                    image::Rgba([lift(p[0]), lift(p[1]), lift(p[2]), p[3]])
                });
                draw_sprite(&mut frame, &bright, centre, px, 0.0);
            } else {
                let lift = 0.3 * size * r;
                draw_sprite(&mut frame, sprite, (centre.0, centre.1 - lift), px, 0.0);
            }
            frame
        })
        .collect()
}

/// A hit at every onset (a random sample of `hits`, random gain) over faint noise.
pub fn render_audio(
    hits: &[Vec<f32>],
    onsets: &[usize],
    config: &SyncSetConfig,
    rng: &mut SplitMix64,
) -> Vec<f32> {
    let rate = config.sample_rate as f64;
    let len = (config.frames as f64 / config.fps * rate).round() as usize;
    let mut audio: Vec<f32> = (0..len).map(|_| 0.003 * rng.normal() as f32).collect();
    for &onset in onsets {
        let hit = &hits[(rng.next_u64() % hits.len() as u64) as usize];
        let gain = 0.4 + 0.4 * rng.uniform() as f32;
        let at = (onset as f64 / config.fps * rate).round() as usize;
        for (s, h) in audio[at.min(len)..].iter_mut().zip(hit) {
            *s += gain * h;
        }
    }
    audio.iter().map(|s| s.clamp(-1.0, 1.0)).collect()
}
