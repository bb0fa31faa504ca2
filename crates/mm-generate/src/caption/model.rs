//! The captioner: transformers' `VisionEncoderDecoderModel` with a ViT encoder and a BERT
//! decoder. The image's hidden states (projected by `enc_to_dec_proj` when the widths differ)
//! are what the decoder's cross-attention reads; teacher forcing trains it; any decoding
//! strategy of [`crate::decode`] runs it through [`CaptionStep`], with or without the
//! key/value cache.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use mm_core::nn::ConfigError;
use mm_core::nn::fused::linear;
use mm_vision::{ViTConfig, ViTModel};
use serde::{Deserialize, Serialize};

use super::decoder::{BertDecoder, BertDecoderConfig, KeyValue, KvCache};
use crate::decode::{GenerateError, GenerationConfig, Hypothesis, StepDecoder, generate};

/// Sizes and special tokens of a captioner (the parts of a `VisionEncoderDecoderConfig` that
/// shape the model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionerConfig {
    /// The image encoder.
    pub encoder: ViTConfig,
    /// The text decoder.
    pub decoder: BertDecoderConfig,
    /// The token every caption starts from (BERT's `[CLS]`).
    pub decoder_start_token_id: u32,
    /// The end token (BERT's `[SEP]`).
    pub eos_token_id: u32,
    /// Padding (BERT's `[PAD]`).
    pub pad_token_id: u32,
}

impl CaptionerConfig {
    /// Checks both halves and the special tokens.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.encoder.validate()?;
        self.decoder.validate()?;
        for (name, id) in [
            ("decoder_start_token_id", self.decoder_start_token_id),
            ("eos_token_id", self.eos_token_id),
            ("pad_token_id", self.pad_token_id),
        ] {
            if id as usize >= self.decoder.vocab_size {
                return Err(ConfigError(format!(
                    "{name} {id} is outside the vocabulary of {}",
                    self.decoder.vocab_size
                )));
            }
        }
        Ok(())
    }

    /// Validates, then builds the model on `device` (with `enc_to_dec_proj` when the widths
    /// differ, as transformers does).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Captioner<B>, ConfigError> {
        self.validate()?;
        let (e, d) = (self.encoder.hidden_size, self.decoder.hidden_size);
        Ok(Captioner {
            encoder: self.encoder.init(device)?,
            enc_to_dec_proj: (e != d).then(|| LinearConfig::new(e, d).init(device)),
            decoder: self.decoder.init(device)?,
        })
    }

    /// transformers' decoding settings for this model: its special tokens, the rest default.
    pub fn generation(&self) -> GenerationConfig {
        GenerationConfig {
            decoder_start_token_id: self.decoder_start_token_id,
            eos_token_id: self.eos_token_id,
            pad_token_id: self.pad_token_id,
            ..Default::default()
        }
    }
}

/// A ViT encoder and a BERT decoder with cross-attention.
#[derive(Module, Debug)]
pub struct Captioner<B: Backend> {
    /// The image encoder.
    pub encoder: ViTModel<B>,
    /// Encoder width -> decoder width, when they differ.
    pub enc_to_dec_proj: Option<Linear<B>>,
    /// The text decoder.
    pub decoder: BertDecoder<B>,
}

impl<B: Backend> Captioner<B> {
    /// The image tokens the decoder attends to.
    ///
    /// # Shapes
    /// - `pixels`: `[batch, channels, size, size]`; output `[batch, 1 + patches, decoder width]`
    pub fn encode(&self, pixels: Tensor<B, 4>) -> Tensor<B, 3> {
        let hidden = self.encoder.forward(pixels);
        match &self.enc_to_dec_proj {
            Some(p) => linear(p, hidden),
            None => hidden,
        }
    }

    /// Teacher-forced logits: every position of `ids` predicts the next token.
    ///
    /// # Shapes
    /// - `pixels`: `[batch, channels, size, size]`; `ids`: `[batch, tokens]`
    /// - output: `[batch, tokens, vocab]`
    pub fn forward(&self, pixels: Tensor<B, 4>, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let cross = self.decoder.cross_key_values(self.encode(pixels));
        self.decoder.forward(ids, &cross)
    }

    /// Captions one image (`[1, channels, size, size]`) with any decoding strategy; `cache`
    /// chooses the key/value-cache path (the same tokens either way).
    pub fn caption(
        &self,
        pixels: Tensor<B, 4>,
        config: &GenerationConfig,
        cache: bool,
    ) -> Result<Vec<Hypothesis>, GenerateError> {
        self.encoder
            .check_pixels(pixels.dims())
            .map_err(|e| GenerateError::Config(e.0))?;
        if pixels.dims()[0] != 1 {
            return Err(GenerateError::Config(format!(
                "caption takes one image at a time, not {}",
                pixels.dims()[0]
            )));
        }
        let longest = config.max_new_tokens + 1;
        if longest > self.decoder.max_positions() {
            return Err(GenerateError::Config(format!(
                "max_new_tokens {} is more than the decoder's {} positions allow (at most {})",
                config.max_new_tokens,
                self.decoder.max_positions(),
                self.decoder.max_positions() - 1
            )));
        }
        let mut step = CaptionStep::new(self, pixels, cache);
        generate(&mut step, config)
    }
}

/// One image being captioned: a [`StepDecoder`] over the captioner.
pub struct CaptionStep<'a, B: Backend> {
    model: &'a Captioner<B>,
    /// Cross-attention keys and values of the image, batch 1.
    cross: Vec<KeyValue<B>>,
    cache: Option<KvCache<B>>,
    use_cache: bool,
}

impl<'a, B: Backend> CaptionStep<'a, B> {
    /// Encodes the image (`[1, channels, size, size]`).
    pub fn new(model: &'a Captioner<B>, pixels: Tensor<B, 4>, use_cache: bool) -> Self {
        let cross = model.decoder.cross_key_values(model.encode(pixels));
        Self {
            model,
            cross,
            cache: None,
            use_cache,
        }
    }

    fn cross_for(&self, rows: usize) -> Vec<KeyValue<B>> {
        self.cross
            .iter()
            .map(|(k, v)| {
                let [_, h, t, d] = k.dims();
                (
                    k.clone().expand([rows, h, t, d]),
                    v.clone().expand([rows, h, t, d]),
                )
            })
            .collect()
    }
}

fn ids_tensor<B: Backend>(rows: &[Vec<u32>], from: usize, device: &B::Device) -> Tensor<B, 2, Int> {
    let width = rows[0].len() - from;
    let data: Vec<i64> = rows
        .iter()
        .flat_map(|r| r[from..].iter().map(|&x| x as i64))
        .collect();
    Tensor::from_data(TensorData::new(data, [rows.len(), width]), device)
}

impl<B: Backend> StepDecoder for CaptionStep<'_, B> {
    fn vocab_size(&self) -> usize {
        self.model.decoder.vocab_size()
    }

    fn next_logits(
        &mut self,
        rows: &[Vec<u32>],
        parents: &[usize],
    ) -> Result<Vec<Vec<f32>>, GenerateError> {
        let n = rows.len();
        if n == 0
            || rows
                .iter()
                .any(|r| r.len() != rows[0].len() || r.is_empty())
        {
            return Err(GenerateError::Decoder(
                "rows must be non-empty and of one length".into(),
            ));
        }
        let device = self.cross[0].0.device();
        let cross = self.cross_for(n);
        let logits = if self.use_cache {
            let past = self.cache.as_ref().map_or(0, KvCache::len);
            if past > 0 {
                let order: Vec<i64> = parents.iter().map(|&p| p as i64).collect();
                if let Some(c) = self.cache.as_mut() {
                    c.reorder(Tensor::from_data(TensorData::new(order, [n]), &device));
                }
            }
            let ids = ids_tensor::<B>(rows, past, &device);
            self.model
                .decoder
                .forward_cached(ids, &cross, &mut self.cache)
        } else {
            self.model
                .decoder
                .forward(ids_tensor::<B>(rows, 0, &device), &cross)
        };
        let [_, t, v] = logits.dims();
        let last = logits.narrow(1, t - 1, 1).reshape([n, v]);
        let flat = last
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| GenerateError::Decoder(format!("{e:?}")))?;
        Ok(flat.chunks(v).map(<[f32]>::to_vec).collect())
    }
}
