//! The errors of reading video: each names the file (or program) and what is wrong with it.

use std::path::PathBuf;

/// Why a video could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// The ffmpeg (or ffprobe) executable could not be run.
    #[error(
        "cannot run {program} ({reason}); install ffmpeg (Debian: apt-get install ffmpeg) or point to one with --ffmpeg PATH / MM_FFMPEG"
    )]
    FfmpegMissing {
        /// The program that was tried.
        program: String,
        /// What the system said.
        reason: String,
    },
    /// The file does not exist or cannot be opened.
    #[error("cannot open video {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file opened but holds no video stream.
    #[error("{path} has no video stream")]
    NoVideoStream {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no audio stream (and audio was asked for).
    #[error("{path} has no audio stream")]
    NoAudioStream {
        /// The file.
        path: PathBuf,
    },
    /// The file's bytes are not a valid video of its format.
    #[error("{path} is not a valid {format} file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The format that was expected.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// ffmpeg ran but failed on the file.
    #[error("ffmpeg failed on {path}: {stderr}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// ffmpeg's own message.
        stderr: String,
    },
    /// A request that cannot be met (zero frames, a start past the end, a zero size).
    #[error("{0}")]
    Request(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, VideoError>;

impl VideoError {
    /// An [`VideoError::Unreadable`] from an I/O error.
    pub fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        VideoError::Unreadable {
            path: path.into(),
            reason: err.to_string(),
        }
    }
}
