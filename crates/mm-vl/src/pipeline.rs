//! The production pipeline of the guide (`MultimodalPipeline`): embed image files and texts,
//! and rank labels for an image, with any loaded CLIP.

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, backend::Backend};
use mm_core::encoder::l2_normalize;
use mm_text::{TextBatch, TokenizerError};
use mm_vision::{ImageError, RgbImage, load_image_with};

use crate::hf::LoadedClip;
use crate::zeroshot::{ZeroShotClassifier, class_probabilities};

/// Why a pipeline call failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// An image could not be read or decoded.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A text could not be tokenized.
    #[error(transparent)]
    Text(#[from] TokenizerError),
    /// The request itself is unusable.
    #[error("{0}")]
    Invalid(String),
}

fn rows<B: Backend>(t: Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [n, d] = t.dims();
    let flat = t
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 data");
    (0..n).map(|i| flat[i * d..(i + 1) * d].to_vec()).collect()
}

impl<B: Backend> LoadedClip<B> {
    /// Projected image features of `paths`, `batch` at a time, as transformers'
    /// `get_image_features` returns them (unit-norm with `normalize`). `progress` is called
    /// with the number of images done.
    pub fn embed_image_files(
        &self,
        paths: &[PathBuf],
        batch: usize,
        normalize: bool,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, PipelineError> {
        let mut out = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(batch.max(1)) {
            let images = chunk
                .iter()
                .map(|p| load_image_with(p, self.alpha))
                .collect::<Result<Vec<_>, _>>()?;
            let refs: Vec<&RgbImage> = images.iter().collect();
            out.extend(self.embed_images(&refs, batch, normalize));
            progress(out.len());
        }
        Ok(out)
    }

    /// Projected image features of decoded images, `batch` at a time (unit-norm with
    /// `normalize`).
    pub fn embed_images(
        &self,
        images: &[&RgbImage],
        batch: usize,
        normalize: bool,
    ) -> Vec<Vec<f32>> {
        let device = self.model.logit_scale.value.device();
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(batch.max(1)) {
            let pixels = self
                .processor
                .preprocess_batch(chunk.iter().copied())
                .to_tensor::<B>(&device);
            let features = self.model.image_features(pixels);
            out.extend(rows(if normalize {
                l2_normalize(features)
            } else {
                features
            }));
        }
        out
    }

    /// Projected text features (transformers' `get_text_features`; unit-norm with `normalize`).
    pub fn embed_texts(
        &self,
        texts: &[String],
        batch: usize,
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>, PipelineError> {
        let device = self.model.logit_scale.value.device();
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch.max(1)) {
            let tokens = self
                .tokenizer
                .encode_batch(chunk, self.model.context_length())?;
            let (ids, eot_positions) = tokens.to_tensors::<B>(&device);
            let features = self.model.text_features(TextBatch { ids, eot_positions });
            out.extend(rows(if normalize {
                l2_normalize(features)
            } else {
                features
            }));
        }
        Ok(out)
    }

    /// Ranks `labels` for the image at `path`: `(label, probability)` best first, as the
    /// guide's `compute_similarity` returns them (softmax of 100 x cosine similarity). With
    /// several `templates`, class embeddings are prompt ensembles.
    pub fn classify(
        &self,
        path: &Path,
        labels: &[String],
        templates: &[&str],
    ) -> Result<Vec<(String, f32)>, PipelineError> {
        let labels: Vec<String> = labels
            .iter()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if labels.is_empty() {
            return Err(PipelineError::Invalid("no labels given".into()));
        }
        if templates.is_empty() || templates.iter().any(|t| !t.contains("{}")) {
            return Err(PipelineError::Invalid(
                "every template must contain `{}` for the label".into(),
            ));
        }
        let device = self.model.logit_scale.value.device();
        let image = load_image_with(path, self.alpha)?;
        let pixels = self
            .processor
            .preprocess_batch([&image])
            .to_tensor::<B>(&device);
        let image = l2_normalize(self.model.image_features(pixels));
        let classifier = ZeroShotClassifier::new(&self.model, &self.tokenizer, &labels, templates)?;
        let probs = class_probabilities(image, classifier.class_embeddings, 100.0);
        let probs = probs
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32 data");
        let mut ranked: Vec<(String, f32)> = labels.into_iter().zip(probs).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(ranked)
    }
}
