//! The [`Encoder`] trait: one input modality in, one pooled embedding per sample out.
//!
//! CLIP's towers, and later audio and video encoders, implement it, so retrieval, zero-shot
//! classification and fusion work over any of them.

use burn::tensor::{Tensor, backend::Backend};

/// What an encoder returns: the pooled embedding and, where one exists, the token sequence.
#[derive(Debug, Clone)]
pub struct EncoderOutput<B: Backend> {
    /// Pooled (and projected) embedding. Shape `[batch, dim]`, not normalized.
    pub pooled: Tensor<B, 2>,
    /// Final hidden states per token, `[batch, tokens, width]`, when the encoder has tokens.
    pub sequence: Option<Tensor<B, 3>>,
}

/// A model that maps a batch of one modality to embeddings.
pub trait Encoder<B: Backend> {
    /// The batch the encoder consumes (pixels, token ids, spectrograms...).
    type Input;

    /// Runs the encoder, returning the pooled embedding and the token sequence.
    fn encode_full(&self, input: Self::Input) -> EncoderOutput<B>;

    /// The width of the pooled embedding.
    fn output_dim(&self) -> usize;

    /// The pooled embedding only.
    ///
    /// # Shapes
    /// - output: `[batch, output_dim]`
    fn encode(&self, input: Self::Input) -> Tensor<B, 2> {
        self.encode_full(input).pooled
    }

    /// The pooled embedding scaled to unit L2 norm.
    ///
    /// # Shapes
    /// - output: `[batch, output_dim]`
    fn encode_normalized(&self, input: Self::Input) -> Tensor<B, 2> {
        l2_normalize(self.encode(input))
    }
}

/// Scales each row to unit L2 norm (rows of zeros stay zero).
///
/// # Shapes
/// - `x`: `[batch, dim]`, output the same.
pub fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12); // [batch, 1]
    x / norm
}
