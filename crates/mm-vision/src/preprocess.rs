//! CLIP image preprocessing: shortest side resized (bicubic) to `size`, center crop to
//! `crop_size`, scaled to [0, 1] and normalized per channel.
//!
//! Field names follow HF `preprocessor_config.json` (`CLIPImageProcessor`), so a checkpoint's
//! file deserializes as it is.

use burn::tensor::{Tensor, TensorData, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::decode::RgbImage;
use crate::resample::resize_bicubic;

/// The per-channel mean of OpenAI CLIP's training images.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// The per-channel standard deviation of OpenAI CLIP's training images.
pub const CLIP_STD: [f32; 3] = [0.268_629_55, 0.261_302_6, 0.275_777_1];

/// A size as HF writes it: `{"shortest_edge": 224}` or `{"height": 224, "width": 224}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SizeSpec {
    /// Resize so the shorter side has this length.
    ShortestEdge {
        /// Target length of the shorter side.
        shortest_edge: u32,
    },
    /// An exact height and width.
    HeightWidth {
        /// Height in pixels.
        height: u32,
        /// Width in pixels.
        width: u32,
    },
    /// A bare number (older configs): a square side.
    Square(u32),
}

/// CLIP preprocessing settings (HF `CLIPImageProcessor`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipImageProcessor {
    /// Target of the shortest-side resize.
    pub size: SizeSpec,
    /// Center crop size.
    pub crop_size: SizeSpec,
    /// Per-channel mean subtracted after scaling to [0, 1].
    pub image_mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub image_std: [f32; 3],
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
            size: SizeSpec::ShortestEdge {
                shortest_edge: image_size,
            },
            crop_size: SizeSpec::HeightWidth {
                height: image_size,
                width: image_size,
            },
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
        }
    }

    /// Output `(height, width)` of [`Self::preprocess`].
    pub fn output_size(&self) -> (u32, u32) {
        match self.crop_size {
            SizeSpec::ShortestEdge { shortest_edge: s } | SizeSpec::Square(s) => (s, s),
            SizeSpec::HeightWidth { height, width } => (height, width),
        }
    }

    /// Resizes, crops and normalizes one image into `3 * h * w` channel-first values.
    pub fn preprocess(&self, image: &RgbImage) -> Vec<f32> {
        let resized = self.resize(image);
        let (crop_h, crop_w) = self.output_size();
        let cropped = center_crop(&resized, crop_h, crop_w);
        self.normalize(&cropped)
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

    /// Scales to [0, 1] and normalizes, HWC bytes to CHW floats.
    pub fn normalize(&self, image: &RgbImage) -> Vec<f32> {
        let plane = (image.width * image.height) as usize;
        let mut out = vec![0.0; 3 * plane];
        for (i, px) in image.pixels.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * plane + i] =
                    (px[c] as f32 / 255.0 - self.image_mean[c]) / self.image_std[c];
            }
        }
        out
    }

    /// The bicubic resize step alone (transformers `image_transforms.py` `resize` with
    /// `get_resize_output_image_size(default_to_square=False)`, through Pillow's bicubic
    /// filter, reproduced bit-exactly by [`resize_bicubic`]).
    pub fn resize(&self, image: &RgbImage) -> RgbImage {
        let (w, h) = (image.width, image.height);
        let (nw, nh) = match self.size {
            SizeSpec::ShortestEdge { shortest_edge: s } => {
                let (short, long) = if w <= h { (w, h) } else { (h, w) };
                let new_long = ((s as u64 * long as u64) / short as u64) as u32;
                if w <= h { (s, new_long) } else { (new_long, s) }
            }
            SizeSpec::HeightWidth { height, width } => (width, height),
            SizeSpec::Square(s) => (s, s),
        };
        if (nw, nh) == (w, h) {
            return image.clone();
        }
        resize_bicubic(image, nw.max(1), nh.max(1))
    }
}

/// Crops the centre `crop_h x crop_w` (padding with black where the image is smaller, as
/// transformers `center_crop` does).
pub fn center_crop(image: &RgbImage, crop_h: u32, crop_w: u32) -> RgbImage {
    let (w, h) = (image.width as i64, image.height as i64);
    let top = (h - crop_h as i64) / 2;
    let left = (w - crop_w as i64) / 2;
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
    fn hf_preprocessor_config_deserializes() {
        let json = r#"{"crop_size": {"height": 224, "width": 224}, "do_center_crop": true,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3,
            "size": {"shortest_edge": 224}}"#;
        let p: ClipImageProcessor = serde_json::from_str(json).unwrap();
        assert_eq!(p.output_size(), (224, 224));
        assert_eq!(p.size, SizeSpec::ShortestEdge { shortest_edge: 224 });
    }
}
