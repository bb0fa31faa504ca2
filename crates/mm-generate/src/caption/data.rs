//! Captioned images for training and evaluation: several image-caption manifests (each with
//! an optional split) decoded once, resized as the captioner's image processor does, and
//! tagged with the set they came from, so training can draw each set equally often and
//! evaluation can score each set on its own.

use std::path::{Path, PathBuf};

use mm_data::manifest::Manifest;
use mm_data::rng::SplitMix64;
use mm_vision::Filter;
use mm_vision::decode::RgbImage;
use mm_vision::preprocess::{ClipImageProcessor, CropSize, PixelBatch, SizeSpec};
use mm_vl::augment::Draw;
use mm_vl::data::{DataError, ImageTextSet, augmented_pixels, shifted_pixels};

/// Mixed into the seed of the validation split, so its draws are not the batches' draws.
const VALIDATION_STREAM: u64 = 0x7661_6c69_6461_7465;

/// transformers' `ViTImageProcessor` for `size`-pixel squares: a bilinear resize to the
/// square (no crop), values to [0, 1], mean and std 0.5.
pub fn vit_processor(size: u32) -> ClipImageProcessor {
    ClipImageProcessor {
        do_resize: true,
        size: SizeSpec::HeightWidth {
            height: size,
            width: size,
        },
        resample: Filter::Bilinear,
        do_center_crop: false,
        crop_size: CropSize {
            height: size,
            width: size,
        },
        do_rescale: true,
        rescale_factor: 1.0 / 255.0,
        do_normalize: true,
        image_mean: [0.5; 3],
        image_std: [0.5; 3],
        do_convert_rgb: true,
    }
}

/// One manifest of captioned images.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionSource {
    /// The name its figures are reported under ("stamps", "emoji", "shapes").
    pub name: String,
    /// An image-caption JSONL manifest.
    pub manifest: PathBuf,
    /// Only records of this split (all when `None`).
    pub split: Option<String>,
}

impl CaptionSource {
    /// A source named `name` reading `split` of `manifest`.
    pub fn new(name: &str, manifest: &Path, split: Option<&str>) -> Self {
        Self {
            name: name.into(),
            manifest: manifest.into(),
            split: split.map(String::from),
        }
    }
}

/// Decoded images with their reference captions and the source each came from.
#[derive(Debug, Clone)]
pub struct CaptionSet {
    /// The processor the images were resized with (its normalization applies at batch time).
    pub processor: ClipImageProcessor,
    /// Source names, in the order given.
    pub sources: Vec<String>,
    /// Resized images.
    pub images: Vec<RgbImage>,
    /// Reference captions of each image (at least one).
    pub captions: Vec<Vec<String>>,
    /// Source index of each image.
    pub source: Vec<usize>,
    /// Image files, for reports.
    pub paths: Vec<PathBuf>,
    /// Records left out (unreadable images), with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

impl CaptionSet {
    /// Loads every source through `processor`; a source with no usable image is an error.
    pub fn load(
        sources: &[CaptionSource],
        processor: &ClipImageProcessor,
    ) -> Result<Self, DataError> {
        let mut set = CaptionSet {
            processor: processor.clone(),
            sources: Vec::new(),
            images: Vec::new(),
            captions: Vec::new(),
            source: Vec::new(),
            paths: Vec::new(),
            skipped: Vec::new(),
        };
        for (i, s) in sources.iter().enumerate() {
            let manifest = Manifest::read(&s.manifest)?;
            let part = ImageTextSet::load(&manifest, processor, s.split.as_deref())?;
            set.sources.push(s.name.clone());
            set.source.extend(std::iter::repeat_n(i, part.len()));
            set.images.extend(part.images);
            set.captions.extend(part.captions);
            set.paths.extend(part.paths);
            set.skipped
                .extend(part.skipped.into_iter().map(|k| (k.path, k.reason)));
        }
        Ok(set)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Indices of the images of each source.
    pub fn by_source(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.sources.len()];
        for (i, &s) in self.source.iter().enumerate() {
            out[s].push(i);
        }
        out
    }

    /// Indices of the images of each source that has any (what training draws from: a
    /// source, then one of its images).
    pub fn drawable_sources(&self) -> Vec<Vec<usize>> {
        self.by_source()
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The images at `indices`, in that order, with their captions and sources.
    pub fn subset(&self, indices: &[usize]) -> CaptionSet {
        CaptionSet {
            processor: self.processor.clone(),
            sources: self.sources.clone(),
            images: indices.iter().map(|&i| self.images[i].clone()).collect(),
            captions: indices.iter().map(|&i| self.captions[i].clone()).collect(),
            source: indices.iter().map(|&i| self.source[i]).collect(),
            paths: indices.iter().map(|&i| self.paths[i].clone()).collect(),
            skipped: Vec::new(),
        }
    }

    /// Splits off a validation set: from each source, `fraction` of its images (at most
    /// `max_per_source`, and never its last image), drawn with `seed`. Returns (the rest,
    /// the validation images); the rest keeps the skipped records.
    pub fn split_validation(
        &self,
        fraction: f64,
        max_per_source: usize,
        seed: u64,
    ) -> (CaptionSet, CaptionSet) {
        let mut train = Vec::new();
        let mut held = Vec::new();
        for (s, mut indices) in self.by_source().into_iter().enumerate() {
            let n = indices.len();
            let k = ((fraction.clamp(0.0, 1.0) * n as f64).round() as usize)
                .min(max_per_source)
                .min(n.saturating_sub(1));
            // Fisher-Yates over the first k positions, one random stream per source.
            let mut rng = SplitMix64::stream(seed ^ VALIDATION_STREAM, s as u64);
            for i in 0..k {
                let j = i + (rng.next_u64() % (n - i) as u64) as usize;
                indices.swap(i, j);
            }
            let (v, t) = indices.split_at(k);
            held.extend_from_slice(v);
            train.extend_from_slice(t);
        }
        train.sort_unstable();
        held.sort_unstable();
        let mut rest = self.subset(&train);
        rest.skipped = self.skipped.clone();
        (rest, self.subset(&held))
    }

    /// Normalized pixels of `indices`, image `k` moved by `shifts[k]` pixels (white fill).
    pub fn pixels(&self, indices: &[usize], shifts: &[(i64, i64)]) -> PixelBatch {
        shifted_pixels(&self.processor, &self.images, indices, shifts)
    }

    /// [`Self::pixels`], each image then changed by `draws[k]` (`mm_vl::augment`).
    pub fn pixels_augmented(
        &self,
        indices: &[usize],
        shifts: &[(i64, i64)],
        draws: &[Draw],
    ) -> PixelBatch {
        augmented_pixels(&self.processor, &self.images, indices, shifts, draws)
    }
}
