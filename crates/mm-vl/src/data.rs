//! Image-caption datasets read from a manifest, decoded once and held in memory.
//!
//! Records whose image is missing or cannot be decoded are skipped, counted and reported (with
//! the file and the reason), so one bad file does not stop a run; a dataset with no usable
//! record is an error.

use std::path::PathBuf;

use mm_data::manifest::{ImageCaption, Manifest, ManifestError};
use mm_vision::decode::{RgbImage, load_image};
use mm_vision::preprocess::{ClipImageProcessor, PixelBatch, center_crop};
use rand::Rng;

use crate::augment::{Draw, apply};

/// Why a dataset could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The manifest is missing or malformed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Every record was skipped.
    #[error("no usable image in {path}: {skipped} record(s) skipped, first: {first}")]
    NoImages {
        /// The manifest.
        path: PathBuf,
        /// How many were skipped.
        skipped: usize,
        /// The first reason.
        first: String,
    },
    /// The split filter matched nothing.
    #[error("manifest {path} has no record with split `{split}`")]
    NoSplit {
        /// The manifest.
        path: PathBuf,
        /// The requested split.
        split: String,
    },
}

/// A record that was left out, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The image file.
    pub path: PathBuf,
    /// The decoder's or file system's message.
    pub reason: String,
}

/// Decoded, resized and center-cropped images with their captions and labels.
#[derive(Debug, Clone)]
pub struct ImageTextSet {
    /// The preprocessing used (its crop size is the images' size).
    pub processor: ClipImageProcessor,
    /// Resized and cropped images, not yet normalized.
    pub images: Vec<RgbImage>,
    /// Captions of each image (at least one).
    pub captions: Vec<Vec<String>>,
    /// Label of each image, when the manifest has them.
    pub labels: Vec<Option<String>>,
    /// Source file of each image.
    pub paths: Vec<PathBuf>,
    /// Records that were left out.
    pub skipped: Vec<Skipped>,
}

impl ImageTextSet {
    /// Loads every record of `manifest` (or those of `split`) through `processor`.
    pub fn load(
        manifest: &Manifest<ImageCaption>,
        processor: &ClipImageProcessor,
        split: Option<&str>,
    ) -> Result<Self, DataError> {
        let (crop_h, crop_w) = processor.output_size();
        let mut set = Self {
            processor: processor.clone(),
            images: Vec::new(),
            captions: Vec::new(),
            labels: Vec::new(),
            paths: Vec::new(),
            skipped: Vec::new(),
        };
        let mut matched = 0;
        for record in &manifest.records {
            if split.is_some_and(|s| record.split.as_deref() != Some(s)) {
                continue;
            }
            matched += 1;
            let path = manifest.image_path(record);
            match load_image(&path) {
                Ok(img) => {
                    set.images
                        .push(center_crop(&processor.resize(&img), crop_h, crop_w));
                    set.captions.push(record.captions.clone());
                    set.labels.push(record.label.clone());
                    set.paths.push(path);
                }
                Err(e) => set.skipped.push(Skipped {
                    path,
                    reason: e.to_string(),
                }),
            }
        }
        if let Some(s) = split.filter(|_| matched == 0) {
            return Err(DataError::NoSplit {
                path: manifest.path.clone(),
                split: s.to_string(),
            });
        }
        if set.images.is_empty() {
            return Err(DataError::NoImages {
                path: manifest.path.clone(),
                skipped: set.skipped.len(),
                first: set
                    .skipped
                    .first()
                    .map(|s| s.reason.clone())
                    .unwrap_or_default(),
            });
        }
        Ok(set)
    }

    /// Number of usable samples.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether the set is empty (never true for a loaded set).
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The first caption of each image, as used for retrieval evaluation.
    pub fn primary_captions(&self) -> Vec<String> {
        self.captions.iter().map(|c| c[0].clone()).collect()
    }

    /// Normalized pixels of `indices`; with `rng`, each image is shifted by up to `max_shift`
    /// pixels (padding with white) as light augmentation.
    pub fn pixels(
        &self,
        indices: &[usize],
        augment: Option<(&mut dyn rand::RngCore, u32)>,
    ) -> PixelBatch {
        let shifts = match augment {
            Some((rng, max_shift)) => draw_shifts(rng, max_shift, indices.len()),
            None => vec![(0, 0); indices.len()],
        };
        self.pixels_shifted(indices, &shifts)
    }

    /// Normalized pixels of `indices`, image `k` translated by `shifts[k]` (x, y) pixels.
    pub fn pixels_shifted(&self, indices: &[usize], shifts: &[(i64, i64)]) -> PixelBatch {
        shifted_pixels(&self.processor, &self.images, indices, shifts)
    }

    /// Normalized pixels of `indices`, image `k` translated by `shifts[k]`, then augmented by
    /// `draws[k]`.
    pub fn pixels_augmented(
        &self,
        indices: &[usize],
        shifts: &[(i64, i64)],
        draws: &[Draw],
    ) -> PixelBatch {
        augmented_pixels(&self.processor, &self.images, indices, shifts, draws)
    }
}

/// Normalized pixels of `images[indices]` (already resized to `processor`'s output size),
/// image `k` translated by `shifts[k]` (x, y) pixels with white filling the gap.
pub fn shifted_pixels(
    processor: &ClipImageProcessor,
    images: &[RgbImage],
    indices: &[usize],
    shifts: &[(i64, i64)],
) -> PixelBatch {
    augmented_pixels(
        processor,
        images,
        indices,
        shifts,
        &vec![Draw::NONE; indices.len()],
    )
}

/// [`shifted_pixels`], each image then augmented by `draws[k]` ([`crate::augment::apply`]).
pub fn augmented_pixels(
    processor: &ClipImageProcessor,
    images: &[RgbImage],
    indices: &[usize],
    shifts: &[(i64, i64)],
    draws: &[Draw],
) -> PixelBatch {
    let (h, w) = processor.output_size();
    let mut data = Vec::with_capacity(indices.len() * 3 * (h * w) as usize);
    for ((&i, &(dx, dy)), draw) in indices.iter().zip(shifts).zip(draws) {
        let shifted = if (dx, dy) == (0, 0) {
            None
        } else {
            Some(shift(&images[i], dx, dy))
        };
        let image = shifted.as_ref().unwrap_or(&images[i]);
        if *draw == Draw::NONE {
            data.extend(processor.normalize(image));
        } else {
            data.extend(processor.normalize(&apply(image, draw)));
        }
    }
    PixelBatch {
        data,
        batch: indices.len(),
        height: h as usize,
        width: w as usize,
    }
}

/// `n` random offsets in `[-max, max]` on each axis (none drawn when `max` is 0).
pub fn draw_shifts(rng: &mut dyn rand::RngCore, max: u32, n: usize) -> Vec<(i64, i64)> {
    if max == 0 {
        return vec![(0, 0); n];
    }
    let m = max as i64;
    (0..n)
        .map(|_| {
            let dx = rng.random_range(-m..=m);
            let dy = rng.random_range(-m..=m);
            (dx, dy)
        })
        .collect()
}

/// Translates `img` by `(dx, dy)`, filling with white.
fn shift(img: &RgbImage, dx: i64, dy: i64) -> RgbImage {
    let (w, h) = (img.width as i64, img.height as i64);
    let mut pixels = vec![255u8; img.pixels.len()];
    for y in 0..h {
        let sy = y - dy;
        if !(0..h).contains(&sy) {
            continue;
        }
        for x in 0..w {
            let sx = x - dx;
            if !(0..w).contains(&sx) {
                continue;
            }
            let (src, dst) = (((sy * w + sx) * 3) as usize, ((y * w + x) * 3) as usize);
            pixels[dst..dst + 3].copy_from_slice(&img.pixels[src..src + 3]);
        }
    }
    RgbImage {
        width: img.width,
        height: img.height,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn write_png(path: &Path, rgb: [u8; 3]) {
        image::RgbImage::from_pixel(12, 10, image::Rgb(rgb))
            .save(path)
            .unwrap();
    }

    #[test]
    fn loads_records_and_reports_bad_images() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("a.png"), [255, 0, 0]);
        std::fs::write(dir.path().join("bad.png"), b"not a png").unwrap();
        let text = r#"{"image": "a.png", "captions": ["red"], "label": "warm", "split": "train"}
{"image": "bad.png", "captions": ["broken"], "split": "train"}
{"image": "gone.png", "captions": ["missing"], "split": "train"}
{"image": "a.png", "captions": ["red again"], "split": "test"}"#;
        let path = dir.path().join("m.jsonl");
        std::fs::write(&path, text).unwrap();
        let manifest = Manifest::<ImageCaption>::read(&path).unwrap();
        let processor = ClipImageProcessor::clip(8);
        let set = ImageTextSet::load(&manifest, &processor, Some("train")).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.skipped.len(), 2);
        assert!(set.skipped[0].reason.contains("bad.png"));
        assert!(set.skipped[1].reason.contains("gone.png"));
        assert_eq!(set.labels[0].as_deref(), Some("warm"));
        let batch = set.pixels(&[0, 0], None);
        assert_eq!((batch.batch, batch.height, batch.width), (2, 8, 8));
        assert!(matches!(
            ImageTextSet::load(&manifest, &processor, Some("val")),
            Err(DataError::NoSplit { .. })
        ));
    }

    #[test]
    fn shifting_pads_with_white() {
        let img = RgbImage {
            width: 2,
            height: 1,
            pixels: vec![1, 2, 3, 4, 5, 6],
        };
        assert_eq!(shift(&img, 1, 0).pixels, vec![255, 255, 255, 1, 2, 3]);
        assert_eq!(shift(&img, -1, 0).pixels, vec![4, 5, 6, 255, 255, 255]);
        assert_eq!(shift(&img, 0, 1).pixels, vec![255; 6]);
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
        let shifts = draw_shifts(&mut rng, 1, 50);
        assert!(shifts.iter().all(|&(x, y)| x.abs() <= 1 && y.abs() <= 1));
        assert!(shifts.iter().any(|&s| s != (0, 0)));
    }
}
