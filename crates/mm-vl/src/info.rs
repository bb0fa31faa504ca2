//! The InfoNCE lower bound on `I(image; caption)` of a trained CLIP over its test set.

use burn::tensor::{ElementConversion, backend::Backend};
use mm_core::info::infonce::{InfoNceBound, InfoNceError, infonce_bound};
use mm_text::{ClipTokenizer, TokenizerError};

use crate::clip::Clip;
use crate::data::ImageTextSet;
use crate::eval::{embed_images, embed_texts};

/// Why the bound could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum InfoBoundError {
    /// A caption could not be tokenized.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// Batch size or pairing out of range.
    #[error(transparent)]
    Bound(#[from] InfoNceError),
}

/// `log N - L` for image -> caption and caption -> image over random batches of `batch`
/// test pairs (each image with its primary caption), with the model's own logit scale as the
/// critic's temperature.
pub fn clip_infonce_bound<B: Backend>(
    model: &Clip<B>,
    tokenizer: &ClipTokenizer,
    data: &ImageTextSet,
    batch: usize,
    seed: u64,
) -> Result<InfoNceBound, InfoBoundError> {
    let images = embed_images(model, data, 256);
    let texts = embed_texts(model, tokenizer, &data.primary_captions(), 256)?;
    let scale = model.logit_scale.scale().into_scalar().elem::<f64>();
    Ok(infonce_bound(images, texts, scale, batch, seed)?)
}
