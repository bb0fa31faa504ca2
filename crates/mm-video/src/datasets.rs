//! The real footage: *Big Buck Bunny* (Blender Foundation, CC-BY 3.0; 10 min, 24 fps, with its
//! soundtrack), which the PyPI source archive of `moviepy` 2.2.1 carries in a zip under its
//! docs. Fetched with `pip download` by name, checked by sha256, cut into 2 s windows: minutes
//! 0-7 for training, 8 to the end for testing, minute 7-8 left out so no clip straddles the two.
//! The story ends at 8:09 and the end credits run from there, so the audio-visual windows also
//! come in a second split whose test minutes lie inside the story (`film-av-story.jsonl`:
//! minutes 0-6 for training, 6:06-8:09 for testing).
//!
//! ```json
//! {"video": "bbb-160x90.mp4", "start": 12.0, "end": 14.0, "split": "train"}
//! ```

use std::path::{Path, PathBuf};

use mm_data::fetch::{
    FetchError, PipPackage, extract_tgz, extract_zip_entry, pip_download, verify_sha256,
};
use mm_data::manifest::{Manifest, ManifestError, VideoClip};

use crate::error::VideoError;
use crate::ffmpeg::Ffmpeg;

/// moviepy's source archive, pinned.
pub const MOVIEPY_SOURCE: PipPackage = PipPackage {
    name: "moviepy",
    version: "2.2.1",
    file: "moviepy-2.2.1.tar.gz",
    sha256: "c80cb56815ece94e5e3e2d361aa40070eeb30a09d23a24c4e684d03e16deacb1",
};
/// The zip inside the archive.
const ZIP_IN_SOURCE: &str =
    "moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/moviepy_10_minutes.zip";
/// The film inside the zip.
const FILM_IN_ZIP: &str = "moviepy_10_minutes/resources/bbb.mp4";
/// sha256 of the film (1280x720 H.264, AAC stereo 44.1 kHz, 596.5 s).
pub const FILM_SHA256: &str = "475fbbf34c4c367998f80c29ea03b15a743941179b12da3373fc6706e68621d0";
/// Training clips end by this time (minute 7).
pub const TRAIN_END_S: f64 = 420.0;
/// Test clips start at this time (minute 8).
pub const TEST_START_S: f64 = 480.0;
/// Story split: training clips end by this time (minute 6).
pub const STORY_TRAIN_END_S: f64 = 360.0;
/// Story split: test clips start here, more than the 1 s of surrounding sound that the
/// audio-visual clips read after the last training window.
pub const STORY_TEST_START_S: f64 = 365.0;
/// The story's end: the iris-out at 8:09, after which the end credits roll.
pub const STORY_END_S: f64 = 489.0;
/// Length of a manifest window.
pub const WINDOW_S: f64 = 2.0;
/// Length of a window of the audio-visual manifest (`film-av.jsonl`): room for the offset search.
pub const AV_WINDOW_S: f64 = 3.0;
/// Size of the working copy the models read (the film's 16:9).
pub const SMALL_SIZE: (u32, u32) = (160, 90);

/// Why the film could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// Fetching or unpacking failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// ffmpeg could not read or re-encode the film.
    #[error(transparent)]
    Video(#[from] VideoError),
    /// The manifest could not be written.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// What [`prepare_film`] wrote.
#[derive(Debug, Clone)]
pub struct FilmData {
    /// The film as shipped.
    pub film: PathBuf,
    /// The 160x90 working copy with a keyframe every 12 frames.
    pub small: PathBuf,
    /// The window manifest.
    pub manifest: PathBuf,
    /// The manifest of longer windows with their sound, for the audio-visual models.
    pub av_manifest: PathBuf,
    /// The same windows split inside the story (test minutes 6:06-8:09, no credits).
    pub av_story_manifest: PathBuf,
    /// Training windows.
    pub train: usize,
    /// Test windows.
    pub test: usize,
}

/// Fetches and unpacks the film into `dest` (once; a verified copy is kept), makes the small
/// working copy and writes `dest/film.jsonl`.
pub fn prepare_film(cache: &Path, dest: &Path, ffmpeg: &Ffmpeg) -> Result<FilmData, DatasetError> {
    let film = dest.join("bbb.mp4");
    if verify_sha256(&film, FILM_SHA256).is_err() {
        let source = pip_download(&MOVIEPY_SOURCE, cache)?;
        let unpacked = cache.join("moviepy-2.2.1-docs");
        extract_tgz(&source, &unpacked, |p| p == ZIP_IN_SOURCE)?;
        extract_zip_entry(&unpacked.join(ZIP_IN_SOURCE), FILM_IN_ZIP, &film)?;
        std::fs::remove_dir_all(&unpacked).ok();
        verify_sha256(&film, FILM_SHA256)?;
    }
    let (w, h) = SMALL_SIZE;
    let small = dest.join(format!("bbb-{w}x{h}.mp4"));
    if !small.exists() {
        ffmpeg.transcode(&film, &small, w, h, 12)?;
    }
    let info = ffmpeg.probe(&small)?;
    let records = windows(info.duration_s, &format!("bbb-{w}x{h}.mp4"), WINDOW_S);
    let manifest = dest.join("film.jsonl");
    Manifest::write(&manifest, &records)?;
    let av_manifest = dest.join("film-av.jsonl");
    let av_records = windows(info.duration_s, &format!("bbb-{w}x{h}.mp4"), AV_WINDOW_S);
    Manifest::write(&av_manifest, &av_records)?;
    let av_story_manifest = dest.join("film-av-story.jsonl");
    let story = Split {
        train_end: STORY_TRAIN_END_S,
        test_start: STORY_TEST_START_S,
        test_end: STORY_END_S,
    };
    let story_records = story.windows(info.duration_s, &format!("bbb-{w}x{h}.mp4"), AV_WINDOW_S);
    Manifest::write(&av_story_manifest, &story_records)?;
    let count = |split: &str| {
        records
            .iter()
            .filter(|r| r.split.as_deref() == Some(split))
            .count()
    };
    Ok(FilmData {
        film,
        small,
        manifest,
        av_manifest,
        av_story_manifest,
        train: count("train"),
        test: count("test"),
    })
}

/// The `window_s` windows of a `duration_s` film: train before minute 7, test from minute 8.
pub fn windows(duration_s: f64, video: &str, window_s: f64) -> Vec<VideoClip> {
    Split {
        train_end: TRAIN_END_S,
        test_start: TEST_START_S,
        test_end: f64::INFINITY,
    }
    .windows(duration_s, video, window_s)
}

/// Where a film's training windows end and its test windows lie (seconds).
#[derive(Debug, Clone, Copy)]
pub struct Split {
    /// Training windows end by this time.
    pub train_end: f64,
    /// Test windows start at or after this time...
    pub test_start: f64,
    /// ...and end by this one (or the film's end).
    pub test_end: f64,
}

impl Split {
    /// The back-to-back `window_s` windows of a `duration_s` film that fall in either split.
    pub fn windows(&self, duration_s: f64, video: &str, window_s: f64) -> Vec<VideoClip> {
        let mut out = Vec::new();
        let mut start = 0.0;
        while start + window_s <= duration_s {
            let end = start + window_s;
            let split = if end <= self.train_end {
                Some("train")
            } else if start >= self.test_start && end <= self.test_end {
                Some("test")
            } else {
                None
            };
            if let Some(split) = split {
                out.push(VideoClip {
                    audio: None,
                    video: video.to_string(),
                    start: Some(start),
                    end: Some(end),
                    label: None,
                    split: Some(split.to_string()),
                });
            }
            start = end;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_minutes_never_meet_training_windows() {
        let w = windows(596.458, "bbb.mp4", WINDOW_S);
        let train: Vec<_> = w
            .iter()
            .filter(|r| r.split.as_deref() == Some("train"))
            .collect();
        let test: Vec<_> = w
            .iter()
            .filter(|r| r.split.as_deref() == Some("test"))
            .collect();
        assert_eq!(train.len(), 210);
        assert_eq!(test.len(), 58);
        assert!(train.iter().all(|r| r.end.unwrap() <= TRAIN_END_S));
        assert!(
            test.iter()
                .all(|r| r.start.unwrap() >= TEST_START_S && r.end.unwrap() <= 596.458)
        );
    }

    #[test]
    fn the_story_split_tests_inside_the_story_only() {
        let split = Split {
            train_end: STORY_TRAIN_END_S,
            test_start: STORY_TEST_START_S,
            test_end: STORY_END_S,
        };
        let w = split.windows(596.458, "bbb.mp4", AV_WINDOW_S);
        let (train, test): (Vec<_>, Vec<_>) =
            w.iter().partition(|r| r.split.as_deref() == Some("train"));
        assert_eq!((train.len(), test.len()), (120, 41));
        assert!(train.iter().all(|r| r.end.unwrap() <= STORY_TRAIN_END_S));
        assert!(
            test.iter()
                .all(|r| r.start.unwrap() >= STORY_TEST_START_S && r.end.unwrap() <= STORY_END_S)
        );
        // A second apart at least: the sound read around a test window is never trained on.
        let first_test = test
            .iter()
            .map(|r| r.start.unwrap())
            .fold(f64::MAX, f64::min);
        let last_train = train.iter().map(|r| r.end.unwrap()).fold(0.0, f64::max);
        assert!(
            first_test - 1.0 > last_train + 1.0,
            "{last_train} {first_test}"
        );
    }
}
