//! Labels that footage gives for free and that need temporal modelling, as in the
//! self-supervised video literature: the arrow of time (a clip played forward or reversed) and
//! playback speed (frames taken at stride 1, 2 or 4), plus the synthetic motion set (a sprite
//! moving in one of 8 directions, `crate::motion`).
//!
//! Footage is decoded once into [`Strip`]s (the frames of one manifest window, at the video's
//! own rate, already scaled and cropped), and a clip is a list of frame indices into a strip.

use std::collections::HashMap;
use std::path::Path;

use image::RgbImage;
use mm_data::manifest::{Manifest, VideoClip};
use mm_data::rng::SplitMix64;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, VideoError};
use crate::ffmpeg::Ffmpeg;
use crate::source::Video;

/// What a video classifier is trained to tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoTask {
    /// Forward or reversed.
    Arrow,
    /// Stride 1, 2 or 4 between the clip's frames.
    Speed,
    /// Direction of a moving sprite (8 classes), from `data synth motion`.
    Motion,
}

/// Strides of the speed classes.
pub const SPEED_STRIDES: [usize; 3] = [1, 2, 4];
/// Stride of arrow-of-time clips.
pub const ARROW_STRIDE: usize = 2;

impl VideoTask {
    /// Class names, in the order of the head's outputs.
    pub fn classes(self) -> Vec<String> {
        let names: &[&str] = match self {
            VideoTask::Arrow => &["forward", "reversed"],
            VideoTask::Speed => &["1x", "2x", "4x"],
            VideoTask::Motion => &crate::motion::DIRECTIONS,
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Frames a clip of `frames` spans in its strip, at most.
    pub fn span(self, frames: usize) -> usize {
        match self {
            VideoTask::Arrow => (frames - 1) * ARROW_STRIDE + 1,
            VideoTask::Speed => (frames - 1) * SPEED_STRIDES[2] + 1,
            VideoTask::Motion => frames,
        }
    }

    /// The frame indices and label of a clip starting at `start` with class `label`.
    pub fn clip(self, start: usize, frames: usize, label: usize) -> Vec<usize> {
        match self {
            VideoTask::Arrow => {
                let forward = (0..frames).map(|k| start + k * ARROW_STRIDE);
                if label == 1 {
                    forward.rev().collect()
                } else {
                    forward.collect()
                }
            }
            VideoTask::Speed => (0..frames)
                .map(|k| start + k * SPEED_STRIDES[label])
                .collect(),
            VideoTask::Motion => (start..start + frames).collect(),
        }
    }
}

/// The decoded frames of one window (or one synthetic clip) and its label, if it has one.
#[derive(Debug, Clone)]
pub struct Strip {
    /// Frames at the video's own rate, all `size` x `size`.
    pub frames: Vec<RgbImage>,
    /// The window's label (synthetic clips); `None` when the task makes the labels.
    pub label: Option<usize>,
}

/// The strips of one split of a manifest, decoded at `size` x `size` (scaled to cover, centre
/// crop). Film windows come through ffmpeg; Y4M and other pure-Rust files through [`Video`].
/// Each distinct film is probed once, and the windows decode in parallel (one ffmpeg process
/// per rayon thread; a process's start-up, mostly dynamic linking, was most of the time).
pub fn load_strips(
    manifest: &Path,
    split: &str,
    size: u32,
    classes: &[String],
    ffmpeg: &Ffmpeg,
) -> Result<Vec<Strip>> {
    let m =
        Manifest::<VideoClip>::read(manifest).map_err(|e| VideoError::Request(e.to_string()))?;
    let records: Vec<&VideoClip> = m
        .records
        .iter()
        .filter(|r| r.split.as_deref() == Some(split))
        .collect();
    if records.is_empty() {
        return Err(VideoError::Request(format!(
            "{} has no `{split}` clips",
            manifest.display()
        )));
    }
    let mut probed = HashMap::new();
    for r in &records {
        let path = m.resolve(&r.video);
        if !is_y4m(&path) && !probed.contains_key(&path) {
            let info = ffmpeg.probe(&path)?;
            probed.insert(path, info);
        }
    }
    records
        .par_iter()
        .map(|r| {
            let path = m.resolve(&r.video);
            let label = match &r.label {
                Some(l) => Some(classes.iter().position(|c| c == l).ok_or_else(|| {
                    VideoError::Request(format!(
                        "{}: label `{l}` is not one of {classes:?}",
                        manifest.display()
                    ))
                })?),
                None => None,
            };
            let start = r.start.unwrap_or(0.0);
            let frames = match probed.get(&path) {
                None => {
                    let video = Video::open(&path, ffmpeg)?;
                    let spec = crate::ClipSpec {
                        frames: video.info().frames as usize,
                        step: crate::Step::Stride(1),
                        width: size,
                        height: size,
                        audio_rate: None,
                    };
                    spec.sample(&video, start)?.frames
                }
                Some(info) => {
                    let end = r.end.unwrap_or(info.duration_s);
                    let count = ((end - start) * info.fps).floor() as usize;
                    ffmpeg.frames_cover(&path, start, count, None, (size, size))?
                }
            };
            Ok(Strip { frames, label })
        })
        .collect()
}

fn is_y4m(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "y4m")
}

/// Draws of [`random_clip`] before it settles for a clip that moves less than asked.
pub const MOTION_TRIES: usize = 64;

/// How much a clip moves: the mean absolute difference of consecutive frames (in the order
/// given), over every pixel and channel, in 8-bit levels (0: a still picture). Films hold still
/// for seconds at a time; a still clip looks the same played either way.
pub fn clip_motion(strip: &Strip, indices: &[usize]) -> f32 {
    if indices.len() < 2 {
        return 0.0;
    }
    let mut total = 0u64;
    let mut count = 0u64;
    for pair in indices.windows(2) {
        let (a, b) = (&strip.frames[pair[0]], &strip.frames[pair[1]]);
        total += a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(&x, &y)| x.abs_diff(y) as u64)
            .sum::<u64>();
        count += a.as_raw().len() as u64;
    }
    total as f32 / count.max(1) as f32
}

/// A training clip: strip, frame indices and label, drawn from `rng`. With `min_motion` above
/// 0 it draws again (at most [`MOTION_TRIES`] times) while the clip's [`clip_motion`] is below it.
pub fn random_clip(
    task: VideoTask,
    strips: &[Strip],
    frames: usize,
    min_motion: f32,
    rng: &mut SplitMix64,
) -> (usize, Vec<usize>, usize) {
    let mut draw = || {
        let s = (rng.next_u64() % strips.len() as u64) as usize;
        let strip = &strips[s];
        let label = match strip.label {
            Some(l) => l,
            None => (rng.next_u64() % task.classes().len() as u64) as usize,
        };
        let room = strip.frames.len().saturating_sub(task.span(frames)) + 1;
        let start = (rng.next_u64() % room as u64) as usize;
        (s, task.clip(start, frames, label), label)
    };
    let mut clip = draw();
    for _ in 1..MOTION_TRIES {
        if min_motion <= 0.0 || clip_motion(&strips[clip.0], &clip.1) >= min_motion {
            break;
        }
        clip = draw();
    }
    clip
}

/// The fixed test clips: from every strip, each class (or its own label) at the strip's start
/// and, where the strip is long enough, at its middle. With `min_motion` above 0, a start is
/// kept only when its first class's clip moves at least that much ([`clip_motion`]), so every
/// class keeps the same starts.
pub fn test_clips(
    task: VideoTask,
    strips: &[Strip],
    frames: usize,
    min_motion: f32,
) -> Vec<(usize, Vec<usize>, usize)> {
    let span = task.span(frames);
    let mut out = Vec::new();
    for (s, strip) in strips.iter().enumerate() {
        let n = strip.frames.len();
        if n < span {
            continue;
        }
        let mut starts = vec![0];
        if n >= 2 * span {
            starts.push(n / 2);
        }
        let labels: Vec<usize> = match strip.label {
            Some(l) => vec![l],
            None => (0..task.classes().len()).collect(),
        };
        for &start in &starts {
            let first = task.clip(start, frames, labels[0]);
            if min_motion > 0.0 && clip_motion(strip, &first) < min_motion {
                continue;
            }
            for &label in &labels {
                out.push((s, task.clip(start, frames, label), label));
            }
        }
    }
    out
}

/// Frames of a clip in `[time, 3, size, size]` order, scaled to `[0, 1]` and normalized by
/// torchvision's video statistics; `mirror` flips every frame left to right.
pub fn clip_values(strip: &Strip, indices: &[usize], mirror: bool) -> Vec<f32> {
    let (mean, std) = (crate::KINETICS_MEAN, crate::KINETICS_STD);
    let mut out = Vec::new();
    for &i in indices {
        let frame = &strip.frames[i];
        let (w, h) = frame.dimensions();
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let x = if mirror { w - 1 - x } else { x };
                    let v = frame.get_pixel(x, y).0[c];
                    out.push((v as f32 / 255.0 - mean[c]) / std[c]);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_follow_their_labels() {
        assert_eq!(VideoTask::Arrow.clip(3, 4, 0), vec![3, 5, 7, 9]);
        assert_eq!(VideoTask::Arrow.clip(3, 4, 1), vec![9, 7, 5, 3]);
        assert_eq!(VideoTask::Speed.clip(0, 3, 2), vec![0, 4, 8]);
        assert_eq!(VideoTask::Speed.span(8), 29);
        let strips = vec![Strip {
            frames: vec![RgbImage::new(2, 2); 48],
            label: None,
        }];
        let test = test_clips(VideoTask::Speed, &strips, 8, 0.0);
        assert_eq!(test.len(), 3);
        let mut rng = SplitMix64::new(1);
        for _ in 0..100 {
            let (_, idx, label) = random_clip(VideoTask::Speed, &strips, 8, 0.0, &mut rng);
            assert!(idx.iter().all(|&i| i < 48));
            assert_eq!(idx[1] - idx[0], SPEED_STRIDES[label]);
        }
    }

    #[test]
    fn mirrored_clips_flip_each_row() {
        let mut frame = RgbImage::new(3, 1);
        for x in 0..3 {
            frame.put_pixel(x, 0, image::Rgb([x as u8 * 100; 3]));
        }
        let strip = Strip {
            frames: vec![frame],
            label: None,
        };
        let plain = clip_values(&strip, &[0], false);
        let mirrored = clip_values(&strip, &[0], true);
        for c in 0..3 {
            let row = &plain[c * 3..c * 3 + 3];
            let flipped: Vec<f32> = row.iter().rev().copied().collect();
            assert_eq!(&mirrored[c * 3..c * 3 + 3], &flipped[..]);
            assert!(row[0] < row[2]);
        }
    }

    /// A strip that holds still for its first 20 frames, then changes by 10 levels a frame.
    fn still_then_moving() -> Strip {
        let frames = (0..40u8)
            .map(|i| RgbImage::from_pixel(2, 2, image::Rgb([i.saturating_sub(19) * 10; 3])))
            .collect();
        Strip {
            frames,
            label: None,
        }
    }

    #[test]
    fn the_motion_filter_leaves_still_clips_out() {
        let strip = still_then_moving();
        assert_eq!(clip_motion(&strip, &[0, 5, 10]), 0.0);
        assert_eq!(clip_motion(&strip, &[20, 21, 22]), 10.0);
        // Reversed or not, a clip moves as much.
        assert_eq!(clip_motion(&strip, &[30, 28, 26]), 20.0);
        assert_eq!(clip_motion(&strip, &[19, 21]), 20.0);
        assert_eq!(clip_motion(&strip, &[7]), 0.0);
        let strips = vec![strip];
        // Starts 0 and 20: only the second moves, and both of its classes stay.
        assert_eq!(test_clips(VideoTask::Arrow, &strips, 4, 0.0).len(), 4);
        let moving = test_clips(VideoTask::Arrow, &strips, 4, 5.0);
        assert_eq!(moving.len(), 2);
        assert!(
            moving
                .iter()
                .all(|(_, idx, _)| idx.iter().all(|&i| i >= 20))
        );
        assert_eq!(moving[0].2 + moving[1].2, 1);
        let mut rng = SplitMix64::new(3);
        let mut still = 0;
        for _ in 0..200 {
            let (s, idx, _) = random_clip(VideoTask::Arrow, &strips, 4, 5.0, &mut rng);
            assert!(clip_motion(&strips[s], &idx) >= 5.0);
            let (s, idx, _) = random_clip(VideoTask::Arrow, &strips, 4, 0.0, &mut rng);
            still += usize::from(clip_motion(&strips[s], &idx) < 5.0);
        }
        // Unfiltered draws do land on the still part (starts 0-12 of 0-33 can).
        assert!(still > 20, "{still}");
    }
}
