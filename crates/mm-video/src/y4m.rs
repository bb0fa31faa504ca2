//! YUV4MPEG2 (`.y4m`), the uncompressed format ffmpeg and test suites use: read and write in
//! pure Rust, 8-bit 4:2:0, 4:2:2, 4:4:4 and mono, BT.601 limited range as ffmpeg converts it.

use std::io::{BufRead, Read, Write};
use std::path::Path;

use image::RgbImage;

use crate::error::{Result, VideoError};
use crate::info::parse_rate;

/// Chroma subsampling of a Y4M stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chroma {
    /// Both chroma planes at half width and half height (`C420`, `C420jpeg`, ...; the default).
    C420,
    /// Chroma at half width.
    C422,
    /// Full-resolution chroma.
    C444,
    /// Luma only.
    Mono,
}

impl Chroma {
    /// Width and height of one chroma plane of a `w` x `h` frame (0 x 0 for mono).
    fn plane(self, w: usize, h: usize) -> (usize, usize) {
        match self {
            Chroma::C420 => (w.div_ceil(2), h.div_ceil(2)),
            Chroma::C422 => (w.div_ceil(2), h),
            Chroma::C444 => (w, h),
            Chroma::Mono => (0, 0),
        }
    }
}

/// A Y4M stream's header.
#[derive(Debug, Clone, PartialEq)]
pub struct Y4mHeader {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: f64,
    /// Chroma layout.
    pub chroma: Chroma,
}

/// Reads the frames of a Y4M stream one at a time.
pub struct Y4mReader<R> {
    input: R,
    header: Y4mHeader,
    path: std::path::PathBuf,
}

fn corrupt(path: &Path, reason: impl Into<String>) -> VideoError {
    VideoError::Corrupt {
        path: path.to_path_buf(),
        format: "Y4M",
        reason: reason.into(),
    }
}

/// One line up to `\n` (at most 1 KiB, as a header or frame line never is longer).
fn read_line(input: &mut impl BufRead, path: &Path) -> Result<Option<String>> {
    let mut line = Vec::new();
    let n = Read::take(input, 1024)
        .read_until(b'\n', &mut line)
        .map_err(|e| VideoError::io(path, e))?;
    if n == 0 {
        return Ok(None);
    }
    if line.pop() != Some(b'\n') {
        return Err(corrupt(
            path,
            "a header line without its end (truncated or not Y4M)",
        ));
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| corrupt(path, "a header line that is not text"))
}

impl<R: BufRead> Y4mReader<R> {
    /// Reads the stream header of `input` (`path` names it in errors).
    pub fn new(mut input: R, path: &Path) -> Result<Self> {
        let line = read_line(&mut input, path)?.ok_or_else(|| corrupt(path, "empty file"))?;
        let mut fields = line.split(' ');
        if fields.next() != Some("YUV4MPEG2") {
            return Err(corrupt(path, "no YUV4MPEG2 signature"));
        }
        let (mut width, mut height, mut fps, mut chroma) = (0u32, 0u32, None, Chroma::C420);
        for field in fields.filter(|f| !f.is_empty()) {
            // The tag is one character, which need not be one byte in a damaged header.
            let tag_len = field.chars().next().map_or(0, char::len_utf8);
            let (tag, value) = field.split_at(tag_len);
            match tag {
                "W" => width = value.parse().unwrap_or(0),
                "H" => height = value.parse().unwrap_or(0),
                "F" => fps = parse_rate(&value.replace(':', "/")),
                "C" => {
                    chroma = match value {
                        "420" | "420jpeg" | "420paldv" | "420mpeg2" => Chroma::C420,
                        "422" => Chroma::C422,
                        "444" => Chroma::C444,
                        "mono" => Chroma::Mono,
                        other => {
                            return Err(corrupt(
                                path,
                                format!(
                                    "colour space C{other} is not supported (8-bit 420, 422, 444, mono are)"
                                ),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        if width == 0 || height == 0 || width > 16384 || height > 16384 {
            return Err(corrupt(path, format!("frame size {width}x{height}")));
        }
        let fps = fps.ok_or_else(|| corrupt(path, "no frame rate (F)"))?;
        Ok(Y4mReader {
            input,
            header: Y4mHeader {
                width,
                height,
                fps,
                chroma,
            },
            path: path.to_path_buf(),
        })
    }

    /// The stream header.
    pub fn header(&self) -> &Y4mHeader {
        &self.header
    }

    /// The next frame as RGB, or `None` at the end of the stream.
    pub fn next_frame(&mut self) -> Result<Option<RgbImage>> {
        let Some(line) = read_line(&mut self.input, &self.path)? else {
            return Ok(None);
        };
        if !line.starts_with("FRAME") {
            return Err(corrupt(&self.path, "a frame without its FRAME marker"));
        }
        let (w, h) = (self.header.width as usize, self.header.height as usize);
        let (cw, ch) = self.header.chroma.plane(w, h);
        let mut planes = vec![0u8; w * h + 2 * cw * ch];
        self.input
            .read_exact(&mut planes)
            .map_err(|_| corrupt(&self.path, "the last frame is truncated"))?;
        let (y, uv) = planes.split_at(w * h);
        let (u, v) = uv.split_at(cw * ch);
        let mut rgb = RgbImage::new(w as u32, h as u32);
        for (i, px) in rgb.pixels_mut().enumerate() {
            let (row, col) = (i / w, i % w);
            let c = if cw == 0 {
                None
            } else {
                let (sx, sy) = (w.div_ceil(cw), h.div_ceil(ch));
                Some((row / sy) * cw + col / sx)
            };
            let (cu, cv) = c.map_or((128, 128), |c| (u[c], v[c]));
            px.0 = yuv_to_rgb(y[i], cu, cv);
        }
        Ok(Some(rgb))
    }
}

/// BT.601 limited-range YUV to RGB.
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let (y, u, v) = (
        1.164 * (y as f32 - 16.0),
        u as f32 - 128.0,
        v as f32 - 128.0,
    );
    let clamp = |x: f32| x.round().clamp(0.0, 255.0) as u8;
    [
        clamp(y + 1.596 * v),
        clamp(y - 0.392 * u - 0.813 * v),
        clamp(y + 2.017 * u),
    ]
}

/// BT.601 limited-range RGB to YUV (as `f32`, before rounding).
fn rgb_to_yuv([r, g, b]: [u8; 3]) -> [f32; 3] {
    let (r, g, b) = (r as f32, g as f32, b as f32);
    [
        16.0 + 0.257 * r + 0.504 * g + 0.098 * b,
        128.0 - 0.148 * r - 0.291 * g + 0.439 * b,
        128.0 + 0.439 * r - 0.368 * g - 0.071 * b,
    ]
}

/// Writes `frames` (all of one size) as a 4:2:0 Y4M stream at `fps` (a whole or fractional
/// rate, written as a ratio over 1000).
pub fn write_y4m(out: &mut impl Write, frames: &[RgbImage], fps: f64) -> std::io::Result<()> {
    let Some(first) = frames.first() else {
        return Err(std::io::Error::other("no frames to write"));
    };
    let (w, h) = (first.width() as usize, first.height() as usize);
    let rate = (fps * 1000.0).round() as u64;
    writeln!(out, "YUV4MPEG2 W{w} H{h} F{rate}:1000 Ip A1:1 C420jpeg")?;
    let (cw, ch) = Chroma::C420.plane(w, h);
    for frame in frames {
        if frame.dimensions() != first.dimensions() {
            return Err(std::io::Error::other("frames differ in size"));
        }
        let yuv: Vec<[f32; 3]> = frame.pixels().map(|p| rgb_to_yuv(p.0)).collect();
        let byte = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        let mut planes: Vec<u8> = yuv.iter().map(|p| byte(p[0])).collect();
        #[allow(clippy::needless_range_loop)] // c picks the U or V component of each pixel
        for c in 1..3 {
            for cy in 0..ch {
                for cx in 0..cw {
                    let mut sum = 0.0;
                    let mut n = 0.0;
                    for y in 2 * cy..(2 * cy + 2).min(h) {
                        for x in 2 * cx..(2 * cx + 2).min(w) {
                            sum += yuv[y * w + x][c];
                            n += 1.0;
                        }
                    }
                    planes.push(byte(sum / n));
                }
            }
        }
        out.write_all(b"FRAME\n")?;
        out.write_all(&planes)?;
    }
    Ok(())
}
