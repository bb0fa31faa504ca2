//! One handle on any video: a real codec through ffmpeg, or Y4M / GIF / APNG / a frame folder
//! in pure Rust, chosen by the path. Every kind answers the same two questions: what is in it
//! ([`VideoInfo`]) and which frames lie at given times.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use image::RgbImage;
use image::imageops::{FilterType, resize};

use crate::animated::{FrameSet, frame_files, read_animation, read_frame_file};
use crate::error::{Result, VideoError};
use crate::ffmpeg::Ffmpeg;
use crate::info::VideoInfo;
use crate::y4m::Y4mReader;

/// Frame rate given to a folder of frames when none is said.
pub const DEFAULT_FOLDER_FPS: f64 = 25.0;

/// Which frames to read.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameRequest {
    /// Time of the first frame, in seconds.
    pub start_s: f64,
    /// At most this many frames (fewer at the end of the video).
    pub max_frames: usize,
    /// Resample to this frame rate (`None`: the video's own frames, one after another).
    pub fps: Option<f64>,
    /// Scale every frame to (width, height) (`None`: as stored).
    pub size: Option<(u32, u32)>,
}

/// Where a video's frames come from.
#[derive(Debug, Clone)]
enum Kind {
    Ffmpeg(Ffmpeg),
    Y4m,
    Decoded(Vec<RgbImage>),
    Folder(Vec<PathBuf>),
}

/// An opened video.
#[derive(Debug, Clone)]
pub struct Video {
    path: PathBuf,
    info: VideoInfo,
    kind: Kind,
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

impl Video {
    /// Opens `path`: a folder of frames (at 25 fps), `.y4m`, `.gif`, `.png`/`.apng` in pure
    /// Rust, anything else (`.mp4`, `.mkv`, `.webm`, `.avi`, ...) through `ffmpeg`.
    pub fn open(path: impl AsRef<Path>, ffmpeg: &Ffmpeg) -> Result<Self> {
        let path = path.as_ref();
        if path.is_dir() {
            return Self::open_folder(path, DEFAULT_FOLDER_FPS);
        }
        match extension(path).as_str() {
            "y4m" => Self::open_y4m(path),
            "gif" | "png" | "apng" => {
                let set = read_animation(path)?;
                Ok(Self::decoded(path, set, "gif/png"))
            }
            _ => {
                let info = ffmpeg.probe(path)?;
                Ok(Video {
                    path: path.to_path_buf(),
                    info,
                    kind: Kind::Ffmpeg(ffmpeg.clone()),
                })
            }
        }
    }

    /// A folder of numbered frames shown at `fps`.
    pub fn open_folder(dir: &Path, fps: f64) -> Result<Self> {
        if !(fps > 0.0 && fps.is_finite()) {
            return Err(VideoError::Request(format!(
                "frame rate {fps} for {}",
                dir.display()
            )));
        }
        let files = frame_files(dir)?;
        let first = read_frame_file(&files[0])?;
        let frames = files.len() as u64;
        Ok(Video {
            path: dir.to_path_buf(),
            info: still_info(first.dimensions(), frames, fps, "frames"),
            kind: Kind::Folder(files),
        })
    }

    fn open_y4m(path: &Path) -> Result<Self> {
        let mut reader = y4m_reader(path)?;
        let header = reader.header().clone();
        let mut frames = 0u64;
        while reader.next_frame()?.is_some() {
            frames += 1;
        }
        Ok(Video {
            path: path.to_path_buf(),
            info: still_info((header.width, header.height), frames, header.fps, "y4m"),
            kind: Kind::Y4m,
        })
    }

    fn decoded(path: &Path, set: FrameSet, codec: &str) -> Self {
        let info = still_info(
            set.frames[0].dimensions(),
            set.frames.len() as u64,
            set.fps,
            codec,
        );
        Video {
            path: path.to_path_buf(),
            info,
            kind: Kind::Decoded(set.frames),
        }
    }

    /// What the video holds.
    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// Where it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The frames `request` asks for.
    pub fn frames(&self, request: &FrameRequest) -> Result<Vec<RgbImage>> {
        if request.max_frames == 0 || request.start_s.is_nan() || request.start_s < 0.0 {
            return Err(VideoError::Request(format!(
                "{} frames from {} s of {}",
                request.max_frames,
                request.start_s,
                self.path.display()
            )));
        }
        if let Kind::Ffmpeg(ffmpeg) = &self.kind {
            return ffmpeg.frames(
                &self.path,
                &self.info,
                request.start_s,
                request.max_frames,
                request.fps,
                request.size,
            );
        }
        let indices = frame_indices(&self.info, request);
        let mut out = Vec::with_capacity(indices.len());
        match &self.kind {
            Kind::Decoded(frames) => out.extend(indices.iter().map(|&i| frames[i].clone())),
            Kind::Folder(files) => {
                for &i in &indices {
                    out.push(read_frame_file(&files[i])?);
                }
            }
            Kind::Y4m => {
                let mut reader = y4m_reader(&self.path)?;
                let mut at = 0usize;
                let mut current = None;
                for &i in &indices {
                    while at <= i {
                        current = reader.next_frame()?;
                        at += 1;
                    }
                    out.push(current.clone().expect("index below the frame count"));
                }
            }
            Kind::Ffmpeg(_) => unreachable!("handled above"),
        }
        if let Some((w, h)) = request.size {
            if w == 0 || h == 0 {
                return Err(VideoError::Request(format!("frame size {w}x{h}")));
            }
            for frame in &mut out {
                if frame.dimensions() != (w, h) {
                    *frame = resize(frame, w, h, FilterType::Triangle);
                }
            }
        }
        Ok(out)
    }

    /// Mono samples at `sample_rate` from `start_s` for `duration_s` (ffmpeg sources only; the
    /// pure-Rust formats carry no sound).
    pub fn audio(&self, sample_rate: u32, start_s: f64, duration_s: f64) -> Result<Vec<f32>> {
        match &self.kind {
            Kind::Ffmpeg(ffmpeg) if self.info.audio_sample_rate.is_some() => {
                ffmpeg.audio(&self.path, sample_rate, start_s, duration_s)
            }
            _ => Err(VideoError::NoAudioStream {
                path: self.path.clone(),
            }),
        }
    }
}

fn y4m_reader(path: &Path) -> Result<Y4mReader<BufReader<File>>> {
    let file = File::open(path).map_err(|e| VideoError::io(path, e))?;
    Y4mReader::new(BufReader::new(file), path)
}

fn still_info((width, height): (u32, u32), frames: u64, fps: f64, codec: &str) -> VideoInfo {
    VideoInfo {
        fps,
        frames,
        width,
        height,
        duration_s: frames as f64 / fps,
        codec: codec.to_string(),
        audio_sample_rate: None,
        audio_channels: None,
    }
}

/// The stored frames a request picks: from the frame at `start_s` on, every frame or the
/// nearest frame to each tick of the requested rate, stopping at the end of the video.
pub fn frame_indices(info: &VideoInfo, request: &FrameRequest) -> Vec<usize> {
    let first = request.start_s * info.fps;
    (0..request.max_frames)
        .map(|k| match request.fps {
            Some(fps) => (first + k as f64 * info.fps / fps + 1e-6).floor(),
            None => (first + 1e-6).floor() + k as f64,
        })
        .take_while(|&i| i < info.frames as f64)
        .map(|i| i as usize)
        .collect()
}
