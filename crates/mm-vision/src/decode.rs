//! Decoding image files into 8-bit RGB.
//!
//! Any format the `image` crate was built with (PNG, JPEG, GIF, WebP) is accepted; the format
//! is sniffed from the bytes, not the file name. GIFs give their first frame. Transparency is
//! composited on white (as a page would show it), grayscale is widened to RGB, and 16-bit or
//! float images are rounded to 8 bits, which is what CLIP preprocessing consumes.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageReader, Limits};

/// Largest width or height accepted, in pixels: guards against decompression bombs.
pub const MAX_SIDE: u32 = 16_384;
/// Largest decoded allocation accepted, in bytes.
pub const MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `height * width * 3` bytes, RGB interleaved.
    pub pixels: Vec<u8>,
}

/// Why an image could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be read.
    #[error("cannot read image {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a supported, valid image.
    #[error("cannot decode image {name}: {source}")]
    Decode {
        /// The file name or a description of the source.
        name: String,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The image is not stored as RGB and the caller accepts nothing else.
    #[error(
        "image {name} is stored as {color}, not RGB, and this model's preprocessor has \
         do_convert_rgb false (transformers refuses such images too)"
    )]
    NotRgb {
        /// The file name or a description of the source.
        name: String,
        /// The stored colour type.
        color: String,
    },
    /// The image decoded to zero pixels.
    #[error("image {name} is empty (0 pixels)")]
    Empty {
        /// The file name or a description of the source.
        name: String,
    },
}

/// What to do with an alpha channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlphaMode {
    /// Composite over white, as a page shows the image (mm's default).
    #[default]
    CompositeOnWhite,
    /// Drop alpha and keep the stored colour, as Pillow's `convert("RGB")` does (and so
    /// transformers' image processors); used for parity with HF pipelines.
    Drop,
    /// Accept only 8-bit RGB images without alpha, as transformers does for a preprocessor
    /// with `do_convert_rgb: false`; others are an [`ImageError::NotRgb`].
    RequireRgb,
}

/// Reads and decodes an image file, compositing transparency on white.
pub fn load_image(path: impl AsRef<Path>) -> Result<RgbImage, ImageError> {
    load_image_with(path, AlphaMode::CompositeOnWhite)
}

/// Reads and decodes an image file with the given alpha handling.
pub fn load_image_with(path: impl AsRef<Path>, alpha: AlphaMode) -> Result<RgbImage, ImageError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_image_with(&bytes, &path.display().to_string(), alpha)
}

/// Decodes image bytes, compositing transparency on white; `name` identifies them in errors.
pub fn decode_image(bytes: &[u8], name: &str) -> Result<RgbImage, ImageError> {
    decode_image_with(bytes, name, AlphaMode::CompositeOnWhite)
}

/// Decodes image bytes with the given alpha handling; `name` identifies them in errors.
pub fn decode_image_with(
    bytes: &[u8],
    name: &str,
    alpha: AlphaMode,
) -> Result<RgbImage, ImageError> {
    let decode_err = |source| ImageError::Decode {
        name: name.to_string(),
        source,
    };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_err(image::ImageError::IoError(e)))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let img = reader.decode().map_err(decode_err)?;
    if img.width() == 0 || img.height() == 0 {
        return Err(ImageError::Empty {
            name: name.to_string(),
        });
    }
    if alpha == AlphaMode::RequireRgb && img.color() != image::ColorType::Rgb8 {
        return Err(ImageError::NotRgb {
            name: name.to_string(),
            color: format!("{:?}", img.color()),
        });
    }
    Ok(match alpha {
        AlphaMode::CompositeOnWhite => to_rgb_on_white(img),
        AlphaMode::Drop | AlphaMode::RequireRgb => RgbImage {
            width: img.width(),
            height: img.height(),
            pixels: img.to_rgb8().into_raw(),
        },
    })
}

/// Flattens any colour type to 8-bit RGB, compositing alpha over white.
fn to_rgb_on_white(img: DynamicImage) -> RgbImage {
    let (width, height) = (img.width(), img.height());
    let pixels = if img.color().has_alpha() {
        let rgba = img.to_rgba32f();
        let mut out = Vec::with_capacity((width * height * 3) as usize);
        for p in rgba.pixels() {
            let a = p.0[3].clamp(0.0, 1.0);
            for c in 0..3 {
                let v = p.0[c].clamp(0.0, 1.0) * a + (1.0 - a);
                out.push((v * 255.0).round() as u8);
            }
        }
        out
    } else {
        img.to_rgb8().into_raw()
    };
    RgbImage {
        width,
        height,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, ImageFormat, Luma, Rgb, Rgba};

    fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, format).unwrap();
        buf.into_inner()
    }

    fn rgb(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
            Rgb([(x * 40) as u8, (y * 40) as u8, 200])
        }))
    }

    #[test]
    fn png_round_trips_exactly() {
        let img = decode_image(&encode(rgb(5, 3), ImageFormat::Png), "t.png").unwrap();
        assert_eq!((img.width, img.height), (5, 3));
        assert_eq!(&img.pixels[..6], &[0, 0, 200, 40, 0, 200]);
    }

    #[test]
    fn gif_webp_and_jpeg_decode() {
        for format in [ImageFormat::Gif, ImageFormat::WebP, ImageFormat::Jpeg] {
            let img = decode_image(&encode(rgb(8, 6), format), "t").unwrap();
            assert_eq!((img.width, img.height), (8, 6), "{format:?}");
            // Lossy formats stay close to the source colour.
            let b = img.pixels[2] as i32;
            assert!((b - 200).abs() < 30, "{format:?}: blue {b}");
        }
    }

    #[test]
    fn transparency_is_composited_on_white() {
        let img = DynamicImage::ImageRgba8(ImageBuffer::from_fn(2, 1, |x, _| {
            if x == 0 {
                Rgba([0, 0, 0, 0])
            } else {
                Rgba([0, 0, 0, 128])
            }
        }));
        let out = decode_image(&encode(img, ImageFormat::Png), "a.png").unwrap();
        assert_eq!(&out.pixels[..3], &[255, 255, 255]);
        assert_eq!(out.pixels[3], 127); // 1 - 128/255 of white
    }

    #[test]
    fn grayscale_and_16_bit_are_widened_to_rgb8() {
        let gray = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(2, 2, Luma([77u8])));
        let out = decode_image(&encode(gray, ImageFormat::Png), "g.png").unwrap();
        assert_eq!(&out.pixels[..3], &[77, 77, 77]);
        let deep =
            DynamicImage::ImageRgb16(ImageBuffer::from_pixel(2, 2, Rgb([65535u16, 0, 32896])));
        let out = decode_image(&encode(deep, ImageFormat::Png), "d.png").unwrap();
        assert_eq!(&out.pixels[..3], &[255, 0, 128]);
    }

    #[test]
    fn rgb_only_mode_refuses_other_colour_types_by_name() {
        let gray = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(2, 2, Luma([7u8])));
        let err = decode_image_with(
            &encode(gray, ImageFormat::Png),
            "g.png",
            AlphaMode::RequireRgb,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("g.png") && err.contains("L8"), "{err}");
        let ok = decode_image_with(
            &encode(rgb(3, 2), ImageFormat::Png),
            "c.png",
            AlphaMode::RequireRgb,
        );
        assert_eq!(ok.unwrap().pixels.len(), 18);
    }

    #[test]
    fn corrupt_and_missing_files_are_named_errors() {
        let err = decode_image(b"definitely not an image", "bad.png")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.png"), "{err}");
        let mut png = encode(rgb(16, 16), ImageFormat::Png);
        png.truncate(png.len() / 2);
        let err = decode_image(&png, "cut.png").unwrap_err().to_string();
        assert!(err.contains("cut.png"), "{err}");
        let err = load_image("/nonexistent/x.png").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/x.png"), "{err}");
    }
}
