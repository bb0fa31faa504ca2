//! What a video holds: frame rate, frame count, size, duration and its audio stream, as
//! ffprobe reports them.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Result, VideoError};

/// A video's streams, in the units users expect (`cargo xtask video info --json` prints it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoInfo {
    /// Frames per second of the video stream.
    pub fps: f64,
    /// Number of frames (counted by the container, or duration x fps when it does not say).
    pub frames: u64,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Duration of the video stream in seconds.
    pub duration_s: f64,
    /// The video codec (`h264`, `vp9`, `rawvideo`, `gif`...).
    pub codec: String,
    /// Sample rate of the first audio stream, if there is one.
    pub audio_sample_rate: Option<u32>,
    /// Channels of the first audio stream, if there is one.
    pub audio_channels: Option<u32>,
}

impl VideoInfo {
    /// The time of frame `index`, in seconds.
    pub fn frame_time(&self, index: u64) -> f64 {
        index as f64 / self.fps
    }

    /// Reads the JSON of `ffprobe -print_format json -show_format -show_streams` for `path`.
    pub fn from_ffprobe_json(path: &Path, json: &str) -> Result<Self> {
        let corrupt = |reason: String| VideoError::Corrupt {
            path: path.to_path_buf(),
            format: "video",
            reason,
        };
        let v: Value = serde_json::from_str(json)
            .map_err(|e| corrupt(format!("ffprobe printed no JSON ({e})")))?;
        let streams = v["streams"].as_array().cloned().unwrap_or_default();
        let of_type = |kind: &str| {
            streams
                .iter()
                .find(|s| s["codec_type"].as_str() == Some(kind))
        };
        let video = of_type("video").ok_or_else(|| VideoError::NoVideoStream {
            path: path.to_path_buf(),
        })?;
        let fps = ["avg_frame_rate", "r_frame_rate"]
            .iter()
            .filter_map(|k| video[*k].as_str().and_then(parse_rate))
            .find(|r| *r > 0.0)
            .ok_or_else(|| corrupt("the video stream has no frame rate".into()))?;
        let number = |v: &Value| {
            v.as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .or_else(|| v.as_f64())
        };
        let duration_s = number(&video["duration"])
            .or_else(|| number(&v["format"]["duration"]))
            .filter(|d| d.is_finite() && *d >= 0.0)
            .ok_or_else(|| corrupt("no duration".into()))?;
        let frames = number(&video["nb_frames"])
            .map(|n| n as u64)
            .filter(|n| *n > 0)
            .unwrap_or_else(|| (duration_s * fps).round() as u64);
        let dim = |k: &str| {
            video[k]
                .as_u64()
                .filter(|n| *n > 0)
                .map(|n| n as u32)
                .ok_or_else(|| corrupt(format!("the video stream has no {k}")))
        };
        let audio = of_type("audio");
        Ok(VideoInfo {
            fps,
            frames,
            width: dim("width")?,
            height: dim("height")?,
            duration_s,
            codec: video["codec_name"].as_str().unwrap_or("?").to_string(),
            audio_sample_rate: audio
                .and_then(|a| number(&a["sample_rate"]))
                .map(|r| r as u32),
            audio_channels: audio.and_then(|a| a["channels"].as_u64()).map(|c| c as u32),
        })
    }
}

/// `"24000/1001"` or `"25"` as frames per second; `None` for `0/0` and other non-rates.
pub fn parse_rate(s: &str) -> Option<f64> {
    let rate = match s.split_once('/') {
        Some((n, d)) => n.trim().parse::<f64>().ok()? / d.trim().parse::<f64>().ok()?,
        None => s.trim().parse().ok()?,
    };
    (rate.is_finite() && rate > 0.0).then_some(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: &str = r#"{"streams": [
        {"codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720,
         "r_frame_rate": "24/1", "avg_frame_rate": "24/1", "duration": "634.500000", "nb_frames": "15228"},
        {"codec_type": "audio", "codec_name": "aac", "sample_rate": "44100", "channels": 2}],
        "format": {"duration": "634.533000"}}"#;

    #[test]
    fn reads_ffprobe_json() {
        let info = VideoInfo::from_ffprobe_json(Path::new("bbb.mp4"), PROBE).unwrap();
        assert_eq!((info.width, info.height, info.frames), (1280, 720, 15228));
        assert_eq!(info.fps, 24.0);
        assert_eq!(info.duration_s, 634.5);
        assert_eq!(info.audio_sample_rate, Some(44100));
        assert_eq!(info.audio_channels, Some(2));
        assert_eq!(info.codec, "h264");
    }

    #[test]
    fn counts_frames_from_duration_when_the_container_does_not() {
        let json = r#"{"streams": [{"codec_type": "video", "codec_name": "vp9", "width": 64,
            "height": 48, "r_frame_rate": "30000/1001", "avg_frame_rate": "0/0"}],
            "format": {"duration": "2.002"}}"#;
        let info = VideoInfo::from_ffprobe_json(Path::new("a.webm"), json).unwrap();
        assert!((info.fps - 29.97).abs() < 0.01);
        assert_eq!(info.frames, 60);
        assert_eq!(info.audio_sample_rate, None);
    }

    #[test]
    fn names_a_file_without_video() {
        let json = r#"{"streams": [{"codec_type": "audio", "sample_rate": "8000"}], "format": {}}"#;
        let err = VideoInfo::from_ffprobe_json(Path::new("song.ogg"), json).unwrap_err();
        assert!(
            err.to_string().contains("song.ogg has no video stream"),
            "{err}"
        );
        let err = VideoInfo::from_ffprobe_json(Path::new("x.mp4"), "not json").unwrap_err();
        assert!(err.to_string().contains("x.mp4"), "{err}");
    }

    #[test]
    fn parses_rates() {
        assert_eq!(parse_rate("25"), Some(25.0));
        assert_eq!(parse_rate("0/0"), None);
        assert_eq!(parse_rate("abc"), None);
    }
}
