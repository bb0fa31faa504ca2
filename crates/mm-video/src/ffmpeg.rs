//! Real codecs through an `ffmpeg` executable, the way imageio-ffmpeg and moviepy read video:
//! `ffprobe` reads the streams first, then `ffmpeg` decodes raw RGB frames or PCM samples into
//! a pipe that we read. Nothing is linked; any ffmpeg build the user has will do.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use image::RgbImage;

use crate::error::{Result, VideoError};
use crate::info::VideoInfo;

/// Where the `ffmpeg` and `ffprobe` executables are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ffmpeg {
    /// The decoder.
    pub ffmpeg: PathBuf,
    /// The stream reader (beside `ffmpeg` when that was given as a path).
    pub ffprobe: PathBuf,
}

impl Default for Ffmpeg {
    /// `MM_FFMPEG` when set, else `ffmpeg` and `ffprobe` on the `PATH`.
    fn default() -> Self {
        match std::env::var_os("MM_FFMPEG") {
            Some(p) => Ffmpeg::at(p),
            None => Ffmpeg {
                ffmpeg: "ffmpeg".into(),
                ffprobe: "ffprobe".into(),
            },
        }
    }
}

impl Ffmpeg {
    /// An `ffmpeg` at `path`, with the `ffprobe` in the same folder.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        let ffmpeg: PathBuf = path.into();
        let ffprobe = match ffmpeg.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join("ffprobe"),
            _ => "ffprobe".into(),
        };
        Ffmpeg { ffmpeg, ffprobe }
    }

    /// Checks that both programs run (`-version`).
    pub fn check(&self) -> Result<()> {
        for program in [&self.ffmpeg, &self.ffprobe] {
            run(Command::new(program).arg("-version"), program)?;
        }
        Ok(())
    }

    /// The streams of `path`.
    pub fn probe(&self, path: &Path) -> Result<VideoInfo> {
        exists(path)?;
        let out = run(
            Command::new(&self.ffprobe)
                .args(["-v", "error", "-print_format", "json"])
                .args(["-show_format", "-show_streams"])
                .arg(path),
            &self.ffprobe,
        )?;
        if !out.status.success() {
            return Err(VideoError::Unreadable {
                path: path.to_path_buf(),
                reason: stderr_line(&out.stderr),
            });
        }
        VideoInfo::from_ffprobe_json(path, &String::from_utf8_lossy(&out.stdout))
    }

    /// Up to `max_frames` RGB frames of `path` from `start_s` on, resampled to `fps` (ffmpeg's
    /// `fps` filter; `None`: every frame) and scaled to `size` = (width, height) bilinearly
    /// (`None`: the stored size).
    pub fn frames(
        &self,
        path: &Path,
        info: &VideoInfo,
        start_s: f64,
        max_frames: usize,
        fps: Option<f64>,
        size: Option<(u32, u32)>,
    ) -> Result<Vec<RgbImage>> {
        let (width, height) = size.unwrap_or((info.width, info.height));
        let scale = format!("scale={width}:{height}:flags=bilinear");
        self.filtered(path, start_s, max_frames, fps, &scale, (width, height))
    }

    /// Like [`Ffmpeg::frames`], but each frame is scaled to cover `width` x `height` with its
    /// aspect kept, then centre-cropped to it (what clip sampling does on the host).
    pub fn frames_cover(
        &self,
        path: &Path,
        start_s: f64,
        max_frames: usize,
        fps: Option<f64>,
        (width, height): (u32, u32),
    ) -> Result<Vec<RgbImage>> {
        let filter = format!(
            "scale={width}:{height}:force_original_aspect_ratio=increase:flags=area,crop={width}:{height}"
        );
        self.filtered(path, start_s, max_frames, fps, &filter, (width, height))
    }

    /// Frames through `filter`, which must output `width` x `height`.
    fn filtered(
        &self,
        path: &Path,
        start_s: f64,
        max_frames: usize,
        fps: Option<f64>,
        filter: &str,
        (width, height): (u32, u32),
    ) -> Result<Vec<RgbImage>> {
        exists(path)?;
        if width == 0 || height == 0 || max_frames == 0 {
            return Err(VideoError::Request(format!(
                "asked for {max_frames} frames of {width}x{height} from {}",
                path.display()
            )));
        }
        let mut filters = Vec::new();
        if let Some(fps) = fps {
            filters.push(format!("fps={fps}"));
        }
        filters.push(filter.to_string());
        let mut cmd = self.seek(path, start_s);
        cmd.args(["-map", "0:v:0", "-frames:v", &max_frames.to_string()])
            .args(["-vf", &filters.join(",")])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]);
        let bytes = self.pipe(cmd, path)?;
        let frame = width as usize * height as usize * 3;
        Ok(bytes
            .chunks_exact(frame)
            .map(|b| RgbImage::from_raw(width, height, b.to_vec()).expect("exact frame size"))
            .collect())
    }

    /// Mono `f32` samples of the first audio stream of `path` at `sample_rate`, from `start_s`
    /// for `duration_s` seconds (channels averaged by ffmpeg).
    pub fn audio(
        &self,
        path: &Path,
        sample_rate: u32,
        start_s: f64,
        duration_s: f64,
    ) -> Result<Vec<f32>> {
        exists(path)?;
        if sample_rate == 0 || duration_s.is_nan() || duration_s <= 0.0 {
            return Err(VideoError::Request(format!(
                "asked for {duration_s} s of audio at {sample_rate} Hz from {}",
                path.display()
            )));
        }
        let mut cmd = self.seek(path, start_s);
        cmd.args(["-map", "0:a:0", "-t", &format!("{duration_s:.6}")])
            .args(["-ac", "1", "-ar", &sample_rate.to_string()])
            .args(["-f", "f32le", "pipe:1"]);
        let bytes = self.pipe(cmd, path).map_err(|e| match e {
            VideoError::Decode { stderr, .. } if stderr.contains("matches no streams") => {
                VideoError::NoAudioStream {
                    path: path.to_path_buf(),
                }
            }
            e => e,
        })?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// Re-encodes `src` into `dest` at `width` x `height` (H.264, CRF 18, a keyframe every
    /// `gop` frames so clips seek fast), copying the audio as it is. Written to a temporary
    /// name first, so a killed run leaves no half file under `dest`.
    pub fn transcode(
        &self,
        src: &Path,
        dest: &Path,
        width: u32,
        height: u32,
        gop: u32,
    ) -> Result<()> {
        exists(src)?;
        let partial = dest.with_extension("partial.mp4");
        let mut cmd = Command::new(&self.ffmpeg);
        cmd.args(["-nostdin", "-v", "error", "-y", "-i"])
            .arg(src)
            .args(["-vf", &format!("scale={width}:{height}:flags=area")])
            .args([
                "-c:v", "libx264", "-preset", "fast", "-crf", "18", "-pix_fmt", "yuv420p",
            ])
            .args(["-g", &gop.to_string(), "-c:a", "copy"])
            .arg(&partial);
        self.pipe(cmd, src)?;
        std::fs::rename(&partial, dest).map_err(|e| VideoError::io(dest, e))
    }

    /// `ffmpeg` quiet, without stdin, reading `path` from `start_s` on (input seeking).
    fn seek(&self, path: &Path, start_s: f64) -> Command {
        let mut cmd = Command::new(&self.ffmpeg);
        cmd.args([
            "-nostdin",
            "-v",
            "error",
            "-ss",
            &format!("{start_s:.6}"),
            "-i",
        ])
        .arg(path);
        cmd
    }

    /// Runs `cmd` and returns everything it wrote to stdout; its stderr becomes the error.
    fn pipe(&self, mut cmd: Command, path: &Path) -> Result<Vec<u8>> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| missing(&self.ffmpeg, e))?;
        let mut stderr = child.stderr.take().expect("piped");
        // Drain stderr on its own thread so a chatty ffmpeg never blocks on a full pipe.
        let errors = std::thread::spawn(move || {
            let mut s = Vec::new();
            stderr.read_to_end(&mut s).ok();
            s
        });
        let mut bytes = Vec::new();
        child
            .stdout
            .take()
            .expect("piped")
            .read_to_end(&mut bytes)
            .map_err(|e| VideoError::io(path, e))?;
        let status = child.wait().map_err(|e| VideoError::io(path, e))?;
        let stderr = errors.join().unwrap_or_default();
        if !status.success() {
            return Err(VideoError::Decode {
                path: path.to_path_buf(),
                stderr: stderr_line(&stderr),
            });
        }
        Ok(bytes)
    }
}

/// `path` exists and is a file, or the error that says so.
fn exists(path: &Path) -> Result<()> {
    std::fs::metadata(path)
        .map_err(|e| VideoError::io(path, e))
        .and_then(|m| {
            if m.is_file() {
                Ok(())
            } else {
                Err(VideoError::Unreadable {
                    path: path.to_path_buf(),
                    reason: "not a file".into(),
                })
            }
        })
}

/// Runs a probe-like command to completion.
fn run(cmd: &mut Command, program: &Path) -> Result<std::process::Output> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| missing(program, e))
}

fn missing(program: &Path, e: std::io::Error) -> VideoError {
    VideoError::FfmpegMissing {
        program: program.display().to_string(),
        reason: e.to_string(),
    }
}

/// ffmpeg's message, trimmed to its last few lines.
fn stderr_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    if tail.is_empty() {
        "no message".into()
    } else {
        tail.join(" / ")
    }
}
