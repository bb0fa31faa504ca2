//! CLIP image preprocessing: shortest side resized (bicubic) to `size`, center crop to
//! `crop_size`, scaled to [0, 1] and normalized per channel, each step switchable as in
//! transformers' `CLIPImageProcessor`.
//!
//! Field names follow HF `preprocessor_config.json` (`CLIPImageProcessor`); the file's older
//! and newer forms (bare integer sizes, nested `processor_config.json`) are read by
//! [`crate::processor_config`].

use burn::tensor::{Tensor, TensorData, backend::Backend};
use serde::Serialize;

use crate::decode::{AlphaMode, RgbImage};
use crate::resample::{Filter, resize};

/// The per-channel mean of OpenAI CLIP's training images.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// The per-channel standard deviation of OpenAI CLIP's training images.
pub const CLIP_STD: [f32; 3] = [0.268_629_55, 0.261_302_6, 0.275_777_1];

/// The resize target of a [`ClipImageProcessor`], as transformers holds it after
/// `get_size_dict`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SizeSpec {
    /// Resize so the shorter side has this length, keeping the aspect ratio.
    ShortestEdge {
        /// Target length of the shorter side.
        shortest_edge: u32,
    },
    /// An exact height and width (the aspect ratio is not kept).
    HeightWidth {
        /// Height in pixels.
        height: u32,
        /// Width in pixels.
        width: u32,
    },
}

/// A center-crop size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CropSize {
    /// Height in pixels.
    pub height: u32,
    /// Width in pixels.
    pub width: u32,
}

/// CLIP preprocessing settings (HF `CLIPImageProcessor`), applied in transformers' order:
/// resize, center crop, rescale, normalize. [`crate::processor_config`] reads them from every
/// form of `preprocessor_config.json` / `processor_config.json`.
///
/// Serialized (for export) in HF's dict form; read only through [`crate::processor_config`], so
/// there is one reading of the file's forms, not two.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClipImageProcessor {
    /// Whether to resize.
    pub do_resize: bool,
    /// Target of the resize.
    pub size: SizeSpec,
    /// Resampling filter of the resize (serialized as Pillow's number).
    #[serde(serialize_with = "filter_code::serialize")]
    pub resample: Filter,
    /// Whether to center-crop.
    pub do_center_crop: bool,
    /// Center crop size.
    pub crop_size: CropSize,
    /// Whether to multiply the 8-bit values by `rescale_factor`.
    pub do_rescale: bool,
    /// Scale applied to the 8-bit values (1/255 maps them to [0, 1]).
    pub rescale_factor: f64,
    /// Whether to subtract `image_mean` and divide by `image_std`.
    pub do_normalize: bool,
    /// Per-channel mean subtracted after rescaling.
    pub image_mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub image_std: [f32; 3],
    /// Whether other colour types are converted to RGB (Pillow `convert("RGB")`: alpha
    /// dropped, gray widened); when false, only images stored as RGB are accepted, as
    /// transformers accepts no others then.
    pub do_convert_rgb: bool,
}

mod filter_code {
    use super::Filter;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(f: &Filter, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(f.pillow_code())
    }
}

/// A batch of preprocessed images, channel-first.
#[derive(Debug, Clone)]
pub struct PixelBatch {
    /// `batch * 3 * height * width` values.
    pub data: Vec<f32>,
    /// Number of images.
    pub batch: usize,
    /// Height of each image.
    pub height: usize,
    /// Width of each image.
    pub width: usize,
}

impl PixelBatch {
    /// Moves the batch to `device`.
    ///
    /// # Shapes
    /// - output: `[batch, 3, height, width]`
    pub fn to_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 4> {
        let shape = [self.batch, 3, self.height, self.width];
        Tensor::from_data(TensorData::new(self.data.clone(), shape), device)
    }
}

impl ClipImageProcessor {
    /// OpenAI CLIP's settings for a square input of `image_size` pixels.
    pub fn clip(image_size: u32) -> Self {
        Self {
            do_resize: true,
            size: SizeSpec::ShortestEdge {
                shortest_edge: image_size,
            },
            resample: Filter::Bicubic,
            do_center_crop: true,
            crop_size: CropSize {
                height: image_size,
                width: image_size,
            },
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
            do_convert_rgb: true,
        }
    }

    /// The `(height, width)` every image comes out at, if the settings fix one: the crop size,
    /// or a `{height, width}` resize without a crop. `None` when the output follows each
    /// image's own size (no crop and a shortest-edge resize, or neither step).
    pub fn fixed_output_size(&self) -> Option<(u32, u32)> {
        if self.do_center_crop {
            return Some((self.crop_size.height, self.crop_size.width));
        }
        match (self.do_resize, self.size) {
            (true, SizeSpec::HeightWidth { height, width }) => Some((height, width)),
            _ => None,
        }
    }

    /// Output `(height, width)` of [`Self::preprocess`]: [`Self::fixed_output_size`], or the
    /// crop size for settings that fix none (a model takes one size, so such outputs are
    /// center-cropped to it; [`crate::processor_config`] refuses those settings).
    pub fn output_size(&self) -> (u32, u32) {
        self.fixed_output_size()
            .unwrap_or((self.crop_size.height, self.crop_size.width))
    }

    /// The alpha handling these settings imply when decoding for them: Pillow's
    /// `convert("RGB")` with `do_convert_rgb`, RGB-only without.
    pub fn alpha_mode(&self) -> AlphaMode {
        if self.do_convert_rgb {
            AlphaMode::Drop
        } else {
            AlphaMode::RequireRgb
        }
    }

    /// Resizes, crops, rescales and normalizes one image into `3 * h * w` channel-first values
    /// (transformers `CLIPImageProcessor.preprocess`).
    pub fn preprocess(&self, image: &RgbImage) -> Vec<f32> {
        let resized = self.resize(image);
        let (crop_h, crop_w) = self.output_size();
        if (resized.height, resized.width) == (crop_h, crop_w) {
            return self.normalize(&resized);
        }
        self.normalize(&center_crop(&resized, crop_h, crop_w))
    }

    /// Preprocesses several images into one batch.
    pub fn preprocess_batch<'a>(
        &self,
        images: impl IntoIterator<Item = &'a RgbImage>,
    ) -> PixelBatch {
        let (h, w) = self.output_size();
        let mut data = Vec::new();
        let mut batch = 0;
        for img in images {
            data.extend(self.preprocess(img));
            batch += 1;
        }
        PixelBatch {
            data,
            batch,
            height: h as usize,
            width: w as usize,
        }
    }

    /// Rescales and normalizes (each step if enabled), HWC bytes to CHW floats. As
    /// transformers `rescale` and `normalize`: the rescale in f64 rounded to f32, the
    /// normalization in f32.
    pub fn normalize(&self, image: &RgbImage) -> Vec<f32> {
        let plane = (image.width * image.height) as usize;
        let mut out = vec![0.0; 3 * plane];
        let scale = if self.do_rescale {
            self.rescale_factor
        } else {
            1.0
        };
        for (i, px) in image.pixels.chunks_exact(3).enumerate() {
            for c in 0..3 {
                let v = (px[c] as f64 * scale) as f32;
                out[c * plane + i] = if self.do_normalize {
                    (v - self.image_mean[c]) / self.image_std[c]
                } else {
                    v
                };
            }
        }
        out
    }

    /// The resize step alone (transformers `CLIPImageProcessor.resize`:
    /// `get_resize_output_image_size(default_to_square=False)` for a shortest edge, the exact
    /// size otherwise, through Pillow's filter, reproduced bit-exactly by [`resize`]).
    pub fn resize(&self, image: &RgbImage) -> RgbImage {
        if !self.do_resize {
            return image.clone();
        }
        let (w, h) = (image.width, image.height);
        let (nw, nh) = match self.size {
            SizeSpec::ShortestEdge { shortest_edge: s } => {
                let (short, long) = if w <= h { (w, h) } else { (h, w) };
                let new_long = ((s as u64 * long as u64) / short as u64) as u32;
                if w <= h { (s, new_long) } else { (new_long, s) }
            }
            SizeSpec::HeightWidth { height, width } => (width, height),
        };
        resize(image, nw.max(1), nh.max(1), self.resample)
    }
}

/// Crops the centre `crop_h x crop_w` (padding with black where the image is smaller), as
/// transformers `image_transforms.py` `center_crop` does: the offset is the floor of half the
/// difference, so an odd shortfall puts the extra black row or column first.
pub fn center_crop(image: &RgbImage, crop_h: u32, crop_w: u32) -> RgbImage {
    let (w, h) = (image.width as i64, image.height as i64);
    let top = (h - crop_h as i64).div_euclid(2);
    let left = (w - crop_w as i64).div_euclid(2);
    let mut pixels = vec![0u8; (crop_h * crop_w * 3) as usize];
    for y in 0..crop_h as i64 {
        let sy = y + top;
        if sy < 0 || sy >= h {
            continue;
        }
        for x in 0..crop_w as i64 {
            let sx = x + left;
            if sx < 0 || sx >= w {
                continue;
            }
            let src = ((sy * w + sx) * 3) as usize;
            let dst = ((y * crop_w as i64 + x) * 3) as usize;
            pixels[dst..dst + 3].copy_from_slice(&image.pixels[src..src + 3]);
        }
    }
    RgbImage {
        width: crop_w,
        height: crop_h,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, rgb: [u8; 3]) -> RgbImage {
        RgbImage {
            width: w,
            height: h,
            pixels: rgb.repeat((w * h) as usize),
        }
    }

    #[test]
    fn shortest_side_is_resized_and_aspect_kept() {
        let p = ClipImageProcessor::clip(32);
        let out = p.resize(&solid(100, 50, [1, 2, 3]));
        assert_eq!((out.width, out.height), (64, 32));
        let out = p.resize(&solid(40, 90, [1, 2, 3]));
        assert_eq!((out.width, out.height), (32, 72));
    }

    #[test]
    fn center_crop_takes_the_middle() {
        let img = RgbImage {
            width: 4,
            height: 1,
            pixels: (0..12).collect(),
        };
        let out = center_crop(&img, 1, 2);
        assert_eq!(out.pixels, vec![3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn normalization_uses_clip_statistics() {
        let p = ClipImageProcessor::clip(8);
        let out = p.preprocess(&solid(10, 8, [255, 0, 128]));
        assert_eq!(out.len(), 3 * 8 * 8);
        let expect_r = (1.0 - CLIP_MEAN[0]) / CLIP_STD[0];
        let expect_g = (0.0 - CLIP_MEAN[1]) / CLIP_STD[1];
        assert!((out[0] - expect_r).abs() < 1e-6);
        assert!((out[64] - expect_g).abs() < 1e-6);
    }

    #[test]
    fn center_crop_pads_an_odd_shortfall_first_as_transformers() {
        // 1 x 3 into 1 x 6: Python's (3 - 6) // 2 = -2 puts two black columns first.
        let img = RgbImage {
            width: 3,
            height: 1,
            pixels: (1..=9).collect(),
        };
        let out = center_crop(&img, 1, 6);
        assert_eq!(&out.pixels[..6], &[0; 6]);
        assert_eq!(&out.pixels[6..15], &(1..=9).collect::<Vec<u8>>()[..]);
        assert_eq!(&out.pixels[15..], &[0; 3]);
    }

    #[test]
    fn switched_off_steps_are_skipped() {
        let mut p = ClipImageProcessor::clip(4);
        p.do_normalize = false;
        let out = p.preprocess(&solid(4, 4, [255, 0, 51]));
        assert!((out[0] - 1.0).abs() < 1e-7 && (out[32] - 0.2).abs() < 1e-7);
        p.do_rescale = false;
        assert_eq!(p.preprocess(&solid(4, 4, [255, 0, 51]))[32], 51.0);
        p.do_resize = false;
        p.do_center_crop = false;
        assert_eq!(p.fixed_output_size(), None);
        p.do_resize = true;
        p.size = SizeSpec::HeightWidth {
            height: 3,
            width: 5,
        };
        assert_eq!(p.fixed_output_size(), Some((3, 5)));
        assert_eq!(p.preprocess(&solid(9, 2, [1, 2, 3])).len(), 3 * 3 * 5);
    }
}
