//! The guide's `CrossModalRetrieval`: two indexes (images, texts) filled by any pair of
//! [`Encoder`]s, search in both directions, and Recall@K over a test set.

use std::ops::Range;

use burn::tensor::{Tensor, backend::Backend};
use mm_core::encoder::Encoder;
use serde::{Deserialize, Serialize};

use crate::index::{Hit, IndexError, VectorIndex};

/// Unit-norm embeddings of `inputs` by `encoder`, row-major on the host.
pub fn embed_all<B: Backend, E: Encoder<B>>(
    encoder: &E,
    inputs: impl IntoIterator<Item = E::Input>,
) -> Vec<f32> {
    inputs
        .into_iter()
        .flat_map(|input| rows(encoder.encode_normalized(input)))
        .collect()
}

/// A `[n, d]` tensor as row-major host values.
pub fn rows<B: Backend>(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 data")
}

/// Image and text indexes searched across modalities.
pub struct CrossModalRetrieval {
    /// Image embeddings; a text query searches here.
    pub images: Box<dyn VectorIndex>,
    /// Text embeddings; an image query searches here.
    pub texts: Box<dyn VectorIndex>,
}

/// Recall@K in both directions (fractions in [0, 1], one per K).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecallReport {
    /// The K values.
    pub ks: Vec<usize>,
    /// Image -> text recall at each K.
    pub image_to_text: Vec<f64>,
    /// Text -> image recall at each K.
    pub text_to_image: Vec<f64>,
}

impl CrossModalRetrieval {
    /// Two empty (or pre-filled) indexes of the same width.
    pub fn new(
        images: Box<dyn VectorIndex>,
        texts: Box<dyn VectorIndex>,
    ) -> Result<Self, IndexError> {
        if images.dim() != texts.dim() {
            return Err(IndexError::Invalid(format!(
                "image index has dimension {}, text index {}",
                images.dim(),
                texts.dim()
            )));
        }
        Ok(Self { images, texts })
    }

    /// Encodes and adds images; returns their ids.
    pub fn index_images<B: Backend, E: Encoder<B>>(
        &mut self,
        encoder: &E,
        batches: impl IntoIterator<Item = E::Input>,
    ) -> Result<Range<u64>, IndexError> {
        self.images.add(&embed_all(encoder, batches))
    }

    /// Encodes and adds texts; returns their ids.
    pub fn index_texts<B: Backend, E: Encoder<B>>(
        &mut self,
        encoder: &E,
        batches: impl IntoIterator<Item = E::Input>,
    ) -> Result<Range<u64>, IndexError> {
        self.texts.add(&embed_all(encoder, batches))
    }

    /// The `k` best images for each text embedding (row-major, unit norm).
    pub fn text_to_image(
        &self,
        text_embeddings: &[f32],
        k: usize,
    ) -> Result<Vec<Vec<Hit>>, IndexError> {
        self.images.search_batch(text_embeddings, k)
    }

    /// The `k` best texts for each image embedding (row-major, unit norm).
    pub fn image_to_text(
        &self,
        image_embeddings: &[f32],
        k: usize,
    ) -> Result<Vec<Vec<Hit>>, IndexError> {
        self.texts.search_batch(image_embeddings, k)
    }

    /// Recall@K of the indexed test set, searching with the indexed vectors themselves: text
    /// `t` belongs to image `text_image[t]`. Image `i` is a hit at K when any of its texts is
    /// among its K best; text `t` when image `text_image[t]` is among its K best.
    pub fn recall_at_k(
        &self,
        text_image: &[usize],
        ks: &[usize],
    ) -> Result<RecallReport, IndexError> {
        if text_image.len() != self.texts.len() {
            return Err(IndexError::Invalid(format!(
                "{} text -> image pairs for {} indexed texts",
                text_image.len(),
                self.texts.len()
            )));
        }
        if let Some(&bad) = text_image.iter().find(|&&i| i >= self.images.len()) {
            return Err(IndexError::Invalid(format!("image {bad} is not indexed")));
        }
        let k = ks.iter().copied().max().unwrap_or(1).max(1);
        let i2t_hits = self.image_to_text(&self.images.export()?, k)?;
        let t2i_hits = self.text_to_image(&self.texts.export()?, k)?;
        let rank_of =
            |hits: &[Hit], good: &dyn Fn(u64) -> bool| hits.iter().position(|h| good(h.id));
        let i2t_ranks: Vec<Option<usize>> = i2t_hits
            .iter()
            .enumerate()
            .filter(|(i, _)| text_image.contains(i))
            .map(|(i, hits)| rank_of(hits, &|t| text_image[t as usize] == i))
            .collect();
        let t2i_ranks: Vec<Option<usize>> = t2i_hits
            .iter()
            .zip(text_image)
            .map(|(hits, &i)| rank_of(hits, &|id| id as usize == i))
            .collect();
        let recall = |ranks: &[Option<usize>]| -> Vec<f64> {
            ks.iter()
                .map(|&k| {
                    let hits = ranks.iter().filter(|r| r.is_some_and(|r| r < k)).count();
                    hits as f64 / ranks.len().max(1) as f64
                })
                .collect()
        };
        Ok(RecallReport {
            ks: ks.to_vec(),
            image_to_text: recall(&i2t_ranks),
            text_to_image: recall(&t2i_ranks),
        })
    }
}
