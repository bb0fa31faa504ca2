//! Clips: N frames at a stride or a frame rate, scaled and centre-cropped, optionally with the
//! audio they span, stacked into Burn tensors `[batch, time, channels, height, width]` (and the
//! `[batch, channels, time, height, width]` view 3D CNNs take).

use burn::tensor::{Tensor, TensorData, backend::Backend};
use image::RgbImage;
use image::imageops::crop_imm;

use crate::error::{Result, VideoError};
use crate::source::{FrameRequest, Video};

/// Mean of torchvision's video models (Kinetics-400), per RGB channel, on `[0, 1]` pixels.
pub const KINETICS_MEAN: [f32; 3] = [0.432_16, 0.394_666, 0.376_45];
/// Standard deviation of torchvision's video models (Kinetics-400).
pub const KINETICS_STD: [f32; 3] = [0.228_03, 0.221_45, 0.216_989];

/// How far apart a clip's frames are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Every `n`-th stored frame (1: consecutive).
    Stride(usize),
    /// Frames at this rate, whatever the video's own.
    Fps(f64),
}

/// What a clip is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSpec {
    /// Frames per clip.
    pub frames: usize,
    /// Spacing of the frames.
    pub step: Step,
    /// Output width and height: frames are scaled to cover it, then centre-cropped.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Also take the clip's audio, mono at this sample rate.
    pub audio_rate: Option<u32>,
}

/// A sampled clip.
#[derive(Debug, Clone)]
pub struct Clip {
    /// The frames, each `width` x `height`.
    pub frames: Vec<RgbImage>,
    /// The clip's rate in frames per second (after the stride).
    pub fps: f64,
    /// Time of the first frame in the video, in seconds.
    pub start_s: f64,
    /// Mono samples over the clip's span, when asked for.
    pub audio: Option<Vec<f32>>,
}

impl ClipSpec {
    /// The clip's frame rate in a video of `video_fps`.
    pub fn fps(&self, video_fps: f64) -> f64 {
        match self.step {
            Step::Stride(n) => video_fps / n.max(1) as f64,
            Step::Fps(f) => f,
        }
    }

    /// Seconds a clip covers in a video of `video_fps` (frames x frame interval).
    pub fn span_s(&self, video_fps: f64) -> f64 {
        self.frames as f64 / self.fps(video_fps)
    }

    fn validate(&self) -> Result<()> {
        let ok = self.frames > 0
            && self.width > 0
            && self.height > 0
            && match self.step {
                Step::Stride(n) => n > 0,
                Step::Fps(f) => f > 0.0 && f.is_finite(),
            };
        if ok {
            Ok(())
        } else {
            Err(VideoError::Request(format!("invalid clip: {self:?}")))
        }
    }

    /// The clip of `video` starting at `start_s`; an error if the video ends before it does.
    pub fn sample(&self, video: &Video, start_s: f64) -> Result<Clip> {
        self.validate()?;
        let info = video.info();
        let fps = self.fps(info.fps);
        let scaled = cover(info.width, info.height, self.width, self.height);
        let request = FrameRequest {
            start_s,
            max_frames: self.frames,
            fps: Some(fps),
            size: Some(scaled),
        };
        let frames = video.frames(&request)?;
        if frames.len() < self.frames {
            return Err(VideoError::Request(format!(
                "{} has {} of the {} frames a clip at {start_s:.2} s needs",
                video.path().display(),
                frames.len(),
                self.frames
            )));
        }
        let frames = frames
            .iter()
            .map(|f| centre_crop(f, self.width, self.height))
            .collect();
        let audio = match self.audio_rate {
            Some(rate) => Some(video.audio(rate, start_s, self.span_s(info.fps))?),
            None => None,
        };
        Ok(Clip {
            frames,
            fps,
            start_s,
            audio,
        })
    }
}

/// The size that keeps `w` x `h`'s aspect and covers `out_w` x `out_h`.
pub fn cover(w: u32, h: u32, out_w: u32, out_h: u32) -> (u32, u32) {
    let scale = (out_w as f64 / w as f64).max(out_h as f64 / h as f64);
    let sw = ((w as f64 * scale).round() as u32).max(out_w);
    let sh = ((h as f64 * scale).round() as u32).max(out_h);
    (sw, sh)
}

/// The centre `w` x `h` of `image` (which must be at least that large).
pub fn centre_crop(image: &RgbImage, w: u32, h: u32) -> RgbImage {
    let x = (image.width() - w) / 2;
    let y = (image.height() - h) / 2;
    crop_imm(image, x, y, w, h).to_image()
}

/// Clips (all of one shape) as `[batch, time, 3, height, width]`, pixels scaled to `[0, 1]`
/// then normalized per channel by `mean` and `std`.
pub fn clips_to_tensor<B: Backend>(
    clips: &[Clip],
    mean: [f32; 3],
    std: [f32; 3],
    device: &B::Device,
) -> Result<Tensor<B, 5>> {
    let Some(first) = clips.first() else {
        return Err(VideoError::Request("no clips to stack".into()));
    };
    let t = first.frames.len();
    let (w, h) = first.frames.first().map_or((0, 0), |f| f.dimensions());
    let plane = (w * h) as usize;
    let mut data = Vec::with_capacity(clips.len() * t * 3 * plane);
    for clip in clips {
        if clip.frames.len() != t || clip.frames.iter().any(|f| f.dimensions() != (w, h)) {
            return Err(VideoError::Request(
                "clips differ in frame count or size".into(),
            ));
        }
        for frame in &clip.frames {
            for c in 0..3 {
                data.extend(
                    frame
                        .pixels()
                        .map(|p| (p.0[c] as f32 / 255.0 - mean[c]) / std[c]),
                );
            }
        }
    }
    let shape = [clips.len(), t, 3, h as usize, w as usize];
    Ok(Tensor::from_data(TensorData::new(data, shape), device))
}

/// `[batch, time, channels, h, w]` as `[batch, channels, time, h, w]`, the layout of 3D CNNs.
pub fn channels_first<B: Backend>(clips: Tensor<B, 5>) -> Tensor<B, 5> {
    clips.swap_dims(1, 2)
}
