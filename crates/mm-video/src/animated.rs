//! Frames that need no codec: animated GIF and APNG (through the `image` crate), and a folder
//! of numbered images.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use image::codecs::gif::GifDecoder;
use image::codecs::png::PngDecoder;
use image::{AnimationDecoder, Frames, RgbImage};

use crate::error::{Result, VideoError};

/// Decoded frames with their frame rate.
#[derive(Debug, Clone)]
pub struct FrameSet {
    /// The frames, in order.
    pub frames: Vec<RgbImage>,
    /// Frames per second.
    pub fps: f64,
}

/// Image extensions a frame folder may hold.
const FRAME_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

fn corrupt(path: &Path, format: &'static str, reason: impl ToString) -> VideoError {
    VideoError::Corrupt {
        path: path.to_path_buf(),
        format,
        reason: reason.to_string(),
    }
}

/// The frames of an animated GIF or PNG (APNG; a still PNG is one frame). The frame rate is the
/// inverse of the median frame delay (10 fps when the file gives none).
pub fn read_animation(path: &Path) -> Result<FrameSet> {
    let file = File::open(path).map_err(|e| VideoError::io(path, e))?;
    let reader = BufReader::new(file);
    let is_gif = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("gif"));
    let format = if is_gif { "GIF" } else { "PNG" };
    let frames: Frames = if is_gif {
        GifDecoder::new(reader)
            .map_err(|e| corrupt(path, format, e))?
            .into_frames()
    } else {
        let decoder = PngDecoder::new(reader).map_err(|e| corrupt(path, format, e))?;
        if !decoder.is_apng().map_err(|e| corrupt(path, format, e))? {
            // A still PNG: one frame.
            let image =
                image::DynamicImage::from_decoder(decoder).map_err(|e| corrupt(path, format, e))?;
            return Ok(FrameSet {
                frames: vec![image.to_rgb8()],
                fps: 10.0,
            });
        }
        decoder
            .apng()
            .map_err(|e| corrupt(path, format, e))?
            .into_frames()
    };
    let mut images = Vec::new();
    let mut delays = Vec::new();
    for frame in frames {
        let frame = frame.map_err(|e| corrupt(path, format, e))?;
        let (num, den) = frame.delay().numer_denom_ms();
        delays.push(num as f64 / den.max(1) as f64);
        images.push(image::DynamicImage::ImageRgba8(frame.into_buffer()).to_rgb8());
    }
    if images.is_empty() {
        return Err(corrupt(path, format, "no frames"));
    }
    delays.sort_by(f64::total_cmp);
    let delay_ms = delays[delays.len() / 2];
    let fps = if delay_ms > 0.0 {
        1000.0 / delay_ms
    } else {
        10.0
    };
    Ok(FrameSet {
        frames: images,
        fps,
    })
}

/// The image files of a frame folder, sorted by name (`0001.png`, `0002.png`, ...).
pub fn frame_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| VideoError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| FRAME_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(VideoError::NoVideoStream {
            path: dir.to_path_buf(),
        });
    }
    Ok(files)
}

/// One frame of a folder, as RGB.
pub fn read_frame_file(path: &Path) -> Result<RgbImage> {
    image::open(path)
        .map(|i| i.to_rgb8())
        .map_err(|e| corrupt(path, "image", e))
}
