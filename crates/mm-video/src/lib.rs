//! Video in: real files through an `ffmpeg` executable (as imageio-ffmpeg and moviepy read
//! them), Y4M, GIF, APNG and frame folders in pure Rust, and clip sampling into Burn tensors
//! for the video and audio-visual models.
//!
//! ```no_run
//! use mm_video::{ClipSpec, Ffmpeg, Step, Video};
//! let video = Video::open("clip.mp4", &Ffmpeg::default())?;
//! println!("{} frames at {} fps", video.info().frames, video.info().fps);
//! let spec = ClipSpec { frames: 8, step: Step::Stride(2), width: 112, height: 112, audio_rate: Some(16_000) };
//! let clip = spec.sample(&video, 1.5)?;
//! # Ok::<(), mm_video::VideoError>(())
//! ```

pub mod animated;
pub mod av;
pub mod class_strips;
pub mod clip;
pub mod datasets;
pub mod error;
pub mod evaluate;
pub mod ffmpeg;
pub mod info;
pub mod models;
pub mod motion;
pub mod source;
pub mod tasks;
pub mod train;
pub mod y4m;

pub use clip::{
    Clip, ClipSpec, KINETICS_MEAN, KINETICS_STD, Step, channels_first, clips_to_tensor,
};
pub use error::{Result, VideoError};
pub use ffmpeg::Ffmpeg;
pub use info::VideoInfo;
pub use source::{FrameRequest, Video};
