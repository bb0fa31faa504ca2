//! Audio-visual clips in memory: frames at the video's rate and the matching mono sound, with
//! the windows the synchronization model sees (a few frames and the log-mel of the same time).

use std::path::Path;

use image::RgbImage;
use mm_audio::classifier::normalize_log_mel;
use mm_audio::decode::load_audio;
use mm_audio::features::{Features, MelConfig, MelExtractor};
use mm_audio::resample::resample;
use mm_data::manifest::{Manifest, VideoClip};
use rayon::prelude::*;

use crate::error::{Result, VideoError};
use crate::ffmpeg::Ffmpeg;
use crate::source::Video;
use crate::{ClipSpec, Step};

/// Sample rate of every clip's sound.
pub const AV_SAMPLE_RATE: u32 = 16_000;
/// Mel bands of the sound windows.
pub const AV_MELS: usize = 40;
/// Seconds of sound read either side of a clip cut from a longer file.
const CONTEXT_S: f64 = 1.0;
/// Mel frames per second (hop 160 at 16 kHz).
pub const MEL_RATE: f64 = 100.0;

/// One clip: frames and sound over the same span.
#[derive(Debug, Clone)]
pub struct AvClip {
    /// Frames, all the same size.
    pub frames: Vec<RgbImage>,
    /// Frames per second.
    pub fps: f64,
    /// Mono sound at [`AV_SAMPLE_RATE`].
    pub audio: Vec<f32>,
    /// The sound just before and just after the clip, where the source has it (shifting the
    /// sound brings these in instead of silence); empty for a file that is the whole clip.
    pub context: (Vec<f32>, Vec<f32>),
}

/// The mel front-end of the sound windows (25 ms frames, 10 ms hop, 40 bands).
pub fn mel_extractor() -> MelExtractor {
    MelExtractor::new(MelConfig::new(AV_SAMPLE_RATE, 400, 160, AV_MELS))
        .expect("fixed, valid mel settings")
}

/// Mel frames in a window of `window` video frames at `fps`.
pub fn mel_frames(window: usize, fps: f64) -> usize {
    (window as f64 / fps * MEL_RATE).floor() as usize
}

impl AvClip {
    /// The clip's sound delayed by `shift` frames (negative: advanced): the sound from before
    /// (after) the clip fills the gap where the source has it, silence where it does not.
    pub fn shifted_audio(&self, shift: i64) -> Vec<f32> {
        let by = (shift.unsigned_abs() as f64 / self.fps * AV_SAMPLE_RATE as f64).round() as usize;
        let n = self.audio.len();
        let by = by.min(n);
        let (before, after) = &self.context;
        if shift >= 0 {
            let have = by.min(before.len());
            let mut out = vec![0.0; by - have];
            out.extend_from_slice(&before[before.len() - have..]);
            out.extend_from_slice(&self.audio[..n - by]);
            out
        } else {
            let mut out = self.audio[by..].to_vec();
            out.extend(after.iter().take(by));
            out.resize(n, 0.0);
            out
        }
    }

    /// The normalized log-mel (`[AV_MELS][frames]`, in `[0, 1]`) of `audio`.
    pub fn log_mel(audio: &[f32], extractor: &MelExtractor) -> Result<Features> {
        let mut f = extractor
            .log_mel(audio, Some(80.0))
            .map_err(|e| VideoError::Request(format!("log-mel of a clip's sound: {e}")))?;
        normalize_log_mel(&mut f);
        Ok(f)
    }

    /// The frames `[start, start + window)` as `[window * 3, h, w]` values (frame after frame,
    /// RGB planes), scaled to about zero mean and unit spread.
    pub fn frame_window(&self, start: usize, window: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for frame in &self.frames[start..start + window] {
            let (w, h) = frame.dimensions();
            for c in 0..3 {
                for y in 0..h {
                    for x in 0..w {
                        out.push((frame.get_pixel(x, y).0[c] as f32 / 255.0 - 0.45) / 0.25);
                    }
                }
            }
        }
        out
    }

    /// Usable window starts: every frame with `window` frames after it.
    pub fn windows(&self, window: usize) -> usize {
        (self.frames.len() + 1).saturating_sub(window)
    }
}

/// The mel columns of the window starting at video frame `start`, `[AV_MELS, count]`, with
/// zeros past the end of the sound.
pub fn mel_window(mel: &Features, start: usize, fps: f64, count: usize) -> Vec<f32> {
    let first = (start as f64 / fps * MEL_RATE).round() as usize;
    let mut out = Vec::with_capacity(mel.rows * count);
    for r in 0..mel.rows {
        for k in 0..count {
            let col = first + k;
            out.push(if col < mel.frames {
                mel.data[r * mel.frames + col] as f32
            } else {
                0.0
            });
        }
    }
    out
}

/// The clips of one split of an audio-visual manifest at `size` x `size`: Y4M frames with the
/// record's `audio` file, or any video with its own sound through ffmpeg.
pub fn load_av_clips(
    manifest: &Path,
    split: &str,
    size: u32,
    ffmpeg: &Ffmpeg,
) -> Result<Vec<AvClip>> {
    let m =
        Manifest::<VideoClip>::read(manifest).map_err(|e| VideoError::Request(e.to_string()))?;
    let records: Vec<&VideoClip> = m
        .records
        .iter()
        .filter(|r| r.split.as_deref() == Some(split))
        .collect();
    // One ffmpeg process per rayon thread: a process's start-up is most of a window's time.
    let clips: Vec<AvClip> = records
        .par_iter()
        .map(|r| load_av_clip(&m, r, size, ffmpeg))
        .collect::<Result<_>>()?;
    if clips.is_empty() {
        return Err(VideoError::Request(format!(
            "{} has no `{split}` clips",
            manifest.display()
        )));
    }
    Ok(clips)
}

fn load_av_clip(
    m: &Manifest<VideoClip>,
    r: &VideoClip,
    size: u32,
    ffmpeg: &Ffmpeg,
) -> Result<AvClip> {
    let path = m.resolve(&r.video);
    let video = Video::open(&path, ffmpeg)?;
    let info = video.info().clone();
    let start = r.start.unwrap_or(0.0);
    let end = r.end.unwrap_or(info.duration_s);
    let count = ((end - start) * info.fps).floor() as usize;
    let spec = ClipSpec {
        frames: count,
        step: Step::Stride(1),
        width: size,
        height: size,
        audio_rate: None,
    };
    let frames = spec.sample(&video, start)?.frames;
    let seconds = frames.len() as f64 / info.fps;
    let mut context = (Vec::new(), Vec::new());
    let audio = match &r.audio {
        Some(file) => {
            let path = m.resolve(file);
            let bad = |e: String| VideoError::Corrupt {
                path: path.clone(),
                format: "audio",
                reason: e,
            };
            let sound = load_audio(&path).map_err(|e| bad(e.to_string()))?;
            let mono = resample(&sound.to_mono(), sound.sample_rate, AV_SAMPLE_RATE)
                .map_err(|e| bad(e.to_string()))?;
            let skip = (start * AV_SAMPLE_RATE as f64).round() as usize;
            mono.into_iter().skip(skip).collect()
        }
        None => {
            // One second of context either side, for shifting the sound in evaluation.
            let lead = start.min(CONTEXT_S);
            let all = video.audio(AV_SAMPLE_RATE, start - lead, lead + seconds + CONTEXT_S)?;
            let skip = ((lead * AV_SAMPLE_RATE as f64).round() as usize).min(all.len());
            let span = (seconds * AV_SAMPLE_RATE as f64).round() as usize;
            let end = (skip + span).min(all.len());
            context = (all[..skip].to_vec(), all[end..].to_vec());
            all[skip..end].to_vec()
        }
    };
    check_clip(&path, &frames, &audio, info.fps)?;
    let mut audio = audio;
    audio.resize((seconds * AV_SAMPLE_RATE as f64).round() as usize, 0.0);
    Ok(AvClip {
        frames,
        fps: info.fps,
        audio,
        context,
    })
}

/// A clip the models can use: frames, a sound that covers most of them, and not silent.
pub fn check_clip(path: &Path, frames: &[RgbImage], audio: &[f32], fps: f64) -> Result<()> {
    let bad = |reason: String| VideoError::Request(format!("{}: {reason}", path.display()));
    if frames.len() < 8 {
        return Err(bad(format!(
            "{} frames; an audio-visual clip needs at least 8",
            frames.len()
        )));
    }
    let want = frames.len() as f64 / fps * AV_SAMPLE_RATE as f64;
    if (audio.len() as f64) < 0.9 * want {
        return Err(bad(format!(
            "its sound lasts {:.2} s but its frames {:.2} s",
            audio.len() as f64 / AV_SAMPLE_RATE as f64,
            frames.len() as f64 / fps
        )));
    }
    if audio.iter().all(|s| s.abs() < 1e-4) {
        return Err(bad("its sound is silent".into()));
    }
    Ok(())
}
