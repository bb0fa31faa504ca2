//! `cargo xtask video info FILE [--json]`: what a video holds (frame rate, frame count, size,
//! duration, audio stream), read by ffprobe or, for Y4M, GIF, APNG and frame folders, in pure
//! Rust.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use mm_video::{Ffmpeg, Video};

/// Flags of `video`.
#[derive(Args)]
pub struct VideoArgs {
    #[command(subcommand)]
    command: VideoCommand,
}

#[derive(Subcommand)]
enum VideoCommand {
    /// Frame rate, frame count, size, duration and audio stream of a video file or frame folder.
    Info(InfoArgs),
}

#[derive(Args)]
struct InfoArgs {
    /// A video file (.mp4, .mkv, .webm, .avi, ... through ffmpeg; .y4m, .gif, .png natively)
    /// or a folder of frames.
    file: PathBuf,
    /// Print JSON (`fps`, `frames`, `width`, `height`, `duration_s`, `codec`,
    /// `audio_sample_rate`, `audio_channels`).
    #[arg(long)]
    json: bool,
    /// The ffmpeg executable (ffprobe is taken from the same folder); default: MM_FFMPEG, else
    /// ffmpeg on the PATH.
    #[arg(long)]
    ffmpeg: Option<PathBuf>,
}

/// Runs `video`.
pub fn run(args: VideoArgs) -> Result<()> {
    match args.command {
        VideoCommand::Info(args) => info(args),
    }
}

fn info(args: InfoArgs) -> Result<()> {
    let ffmpeg = args.ffmpeg.map(Ffmpeg::at).unwrap_or_default();
    let video = Video::open(&args.file, &ffmpeg)?;
    let info = video.info();
    if args.json {
        println!("{}", serde_json::to_string_pretty(info)?);
        return Ok(());
    }
    println!("{}", args.file.display());
    println!(
        "  video: {} {}x{}, {:.3} fps, {} frames, {:.3} s",
        info.codec, info.width, info.height, info.fps, info.frames, info.duration_s
    );
    match (info.audio_sample_rate, info.audio_channels) {
        (Some(rate), channels) => {
            println!("  audio: {rate} Hz, {} channel(s)", channels.unwrap_or(0))
        }
        (None, _) => println!("  audio: none"),
    }
    Ok(())
}
