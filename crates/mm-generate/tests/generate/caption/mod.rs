//! Image captioning: metrics against the reference scorers, transformers parity of the model
//! and of `generate()`, training through the house loop, and the fused kernels' gradients.

mod batches;
mod dropout;
mod ema;
mod gradients;
mod hf;
mod metrics;
mod paired;
mod scst;
mod train;
mod word_dropout;

use mm_generate::caption::CaptionerConfig;
use mm_generate::caption::train::CaptionTrainConfig;
use mm_text::WordPieceTokenizer;

/// A tiny captioner (16 px images in 4 px patches, a 16-token vocabulary) with decoder
/// dropout `dropout`, for the tests that build one from scratch.
pub(crate) fn tiny_captioner_config(dropout: f64) -> CaptionerConfig {
    let mut config = CaptionTrainConfig::default().model;
    config.encoder.image_size = 16;
    config.encoder.patch_size = 4;
    config.encoder.hidden_size = 32;
    config.encoder.num_hidden_layers = 2;
    config.encoder.intermediate_size = 64;
    config.decoder.hidden_size = 24;
    config.decoder.num_attention_heads = 4;
    config.decoder.num_hidden_layers = 2;
    config.decoder.intermediate_size = 48;
    config.decoder.max_position_embeddings = 8;
    config.decoder.vocab_size = 16;
    config.decoder.initializer_range = 0.02;
    config.decoder.hidden_dropout_prob = dropout;
    config.decoder_start_token_id = 2;
    config.eos_token_id = 3;
    config.pad_token_id = 0;
    config
}

/// The tiny captioner's tokenizer: the specials and `w5`..`w15`.
pub(crate) fn tiny_tokenizer() -> WordPieceTokenizer {
    let vocab: Vec<String> = mm_text::wordpiece::SPECIALS
        .iter()
        .map(|s| s.to_string())
        .chain((5..16).map(|i| format!("w{i}")))
        .collect();
    WordPieceTokenizer::from_vocab(&vocab).unwrap()
}
