//! A synchronization baseline that learns nothing: how much the picture moves on each frame
//! against how sharply the sound starts on it. Its offset for a clip is the shift that
//! correlates the two best. Where events that are seen are also heard (a drum hit on a flash),
//! it finds the offset; where the sound is laid over the pictures (a film score, end credits),
//! it cannot. It is reported beside every trained sync model, so that a figure near chance says
//! whether the model failed or the clips have no timing to find.

use mm_audio::features::Features;

use super::clips::{AvClip, MEL_RATE, mel_extractor};
use super::sync_eval::OffsetEstimate;
use crate::error::{Result, VideoError};

/// How much the picture changes into each frame: the mean absolute difference of its RGB
/// values from the frame before (the first frame copies the second's, 0 for a single frame).
pub fn motion_energy(clip: &AvClip) -> Vec<f64> {
    let mut out: Vec<f64> = clip
        .frames
        .windows(2)
        .map(|pair| {
            let (a, b) = (pair[0].as_raw(), pair[1].as_raw());
            let sum: u64 = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y) as u64).sum();
            sum as f64 / a.len().max(1) as f64
        })
        .collect();
    out.insert(0, out.first().copied().unwrap_or(0.0));
    out
}

/// How sharply the sound starts on each of `frames` video frames at `fps`: the spectral flux
/// of the log-mel (the summed rise of every band from one mel column to the next), averaged
/// over the mel columns that fall in the frame (0 where there are none).
pub fn onset_strength(mel: &Features, fps: f64, frames: usize) -> Vec<f64> {
    let flux: Vec<f64> = (0..mel.frames)
        .map(|c| {
            if c == 0 {
                return 0.0;
            }
            (0..mel.rows)
                .map(|r| {
                    let row = &mel.data[r * mel.frames..(r + 1) * mel.frames];
                    (row[c] - row[c - 1]).max(0.0)
                })
                .sum()
        })
        .collect();
    (0..frames)
        .map(|t| {
            let first = (t as f64 / fps * MEL_RATE).round() as usize;
            let end = (((t + 1) as f64 / fps * MEL_RATE).round() as usize).min(flux.len());
            if first >= end {
                0.0
            } else {
                flux[first..end].iter().sum::<f64>() / (end - first) as f64
            }
        })
        .collect()
}

/// Pearson correlation of two series of equal length (0 when either is constant).
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += (x - ma) * (y - mb);
        aa += (x - ma) * (x - ma);
        bb += (y - mb) * (y - mb);
    }
    if aa <= 1e-12 || bb <= 1e-12 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// Scores `audio` against the frames of `clip` at every shift in `-max_offset..=max_offset`
/// as the correlation of motion at frame `t` with onset strength at frame `t + shift`, over
/// the frames that have a sound frame at every shift, as [`super::estimate_offset`] does with
/// a model's embeddings (positive: the sound comes late).
pub fn motion_onset_offset(
    clip: &AvClip,
    audio: &[f32],
    max_offset: usize,
) -> Result<OffsetEstimate> {
    let n = clip.frames.len();
    if n < 2 * max_offset + 3 {
        return Err(VideoError::Request(format!(
            "the clip has {n} frames; correlating motion with sound over +-{max_offset} frames needs {}",
            2 * max_offset + 3
        )));
    }
    let mel = AvClip::log_mel(audio, &mel_extractor())?;
    let motion = motion_energy(clip);
    let onset = onset_strength(&mel, clip.fps, n);
    let times = max_offset..n - max_offset;
    let scores: Vec<f64> = (0..=2 * max_offset)
        .map(|k| {
            let sound = &onset[times.start + k - max_offset..times.end + k - max_offset];
            correlation(&motion[times.clone()], sound)
        })
        .collect();
    Ok(OffsetEstimate::from_scores(scores))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_of_hand_made_series() {
        assert!((correlation(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((correlation(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(correlation(&[1.0, 1.0, 1.0], &[3.0, 2.0, 1.0]), 0.0);
    }

    #[test]
    fn onset_strength_averages_the_rises_within_each_frame() {
        // One band, 100 columns a second; at 50 fps each frame holds two columns.
        let mel = Features {
            rows: 1,
            frames: 6,
            data: vec![0.0, 0.0, 3.0, 1.0, 1.0, 5.0],
        };
        assert_eq!(onset_strength(&mel, 50.0, 4), vec![0.0, 1.5, 2.0, 0.0]);
    }
}
