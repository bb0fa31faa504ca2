//! A BERT decoder with cross-attention (transformers `BertLMHeadModel` with `is_decoder` and
//! `add_cross_attention`): causal self-attention over the text so far, attention to the
//! image's tokens, a feed-forward block, each post-norm as in BERT; then BERT's prediction
//! head (dense, activation, norm, and the word embeddings transposed as the output layer,
//! with its own bias).
//!
//! [`BertDecoder::forward`] runs whole sequences (training, and decoding without a cache);
//! [`BertDecoder::forward_cached`] feeds only new tokens, keeping each layer's self-attention
//! keys and values in a [`KvCache`] that beam search reorders by parent row.

use burn::module::{Module, Param};
use burn::nn::{DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Bool, Int, Tensor, backend::Backend};
use mm_core::nn::attention::validate_heads;
use mm_core::nn::fused::{add, attention, layer_norm, linear, swap_middle};
use mm_core::nn::{Activation, ConfigError};
use serde::{Deserialize, Serialize};

mod hf_keys;

/// Sizes of the decoder; names and defaults are transformers `BertConfig`'s, so the `decoder`
/// part of a `VisionEncoderDecoderModel` config reads straight into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertDecoderConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width.
    pub hidden_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Longest sequence (start token included).
    pub max_position_embeddings: usize,
    /// Token types (only type 0 is used).
    #[serde(default = "mm_core::nn::hf_defaults::two_types")]
    pub type_vocab_size: usize,
    /// MLP and prediction-head activation.
    #[serde(default = "mm_core::nn::hf_defaults::gelu")]
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    #[serde(default = "mm_core::nn::hf_defaults::layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Standard deviation of the initializers.
    #[serde(default = "mm_core::nn::hf_defaults::initializer_range")]
    pub initializer_range: f64,
    /// Dropout in training on the embeddings and on each attention and MLP output before its
    /// residual sum (BERT's places; decoding never drops). Absent: 0, as every captioner of
    /// this project was trained before it existed (transformers' `BertConfig` says 0.1).
    #[serde(default)]
    pub hidden_dropout_prob: f64,
}

impl BertDecoderConfig {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vocab_size < 4 || self.max_position_embeddings < 2 || self.type_vocab_size == 0 {
            return Err(ConfigError(
                "a decoder needs a vocabulary, 2 or more positions and a token type".into(),
            ));
        }
        if !(0.0..1.0).contains(&self.hidden_dropout_prob) {
            return Err(ConfigError(format!(
                "hidden_dropout_prob must be in [0, 1); got {}",
                self.hidden_dropout_prob
            )));
        }
        validate_heads(self.hidden_size, self.num_attention_heads)
    }

    /// Validates, then builds the decoder on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<BertDecoder<B>, ConfigError> {
        self.validate()?;
        let h = self.hidden_size;
        let normal = Initializer::Normal {
            mean: 0.0,
            std: self.initializer_range,
        };
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let lin = |i: usize, o: usize| {
            LinearConfig::new(i, o)
                .with_initializer(normal.clone())
                .init(device)
        };
        let attn = || Attention {
            query: lin(h, h),
            key: lin(h, h),
            value: lin(h, h),
            dense: lin(h, h),
            norm: norm(),
            heads: self.num_attention_heads,
            eps: self.layer_norm_eps,
            dropout: self.hidden_dropout_prob,
        };
        let layers = (0..self.num_hidden_layers)
            .map(|_| DecoderLayer {
                self_attn: attn(),
                cross_attn: attn(),
                intermediate: lin(h, self.intermediate_size),
                output: lin(self.intermediate_size, h),
                output_norm: norm(),
                act: self.hidden_act,
            })
            .collect();
        Ok(BertDecoder {
            word_embeddings: normal.init([self.vocab_size, h], device),
            position_embeddings: normal.init([self.max_position_embeddings, h], device),
            token_type_embeddings: normal.init([self.type_vocab_size, h], device),
            embeddings_norm: norm(),
            layers,
            head_dense: lin(h, h),
            head_norm: norm(),
            head_bias: Initializer::Zeros.init([self.vocab_size], device),
            act: self.hidden_act,
            eps: self.layer_norm_eps,
            dropout: self.hidden_dropout_prob,
        })
    }
}

/// Dropout of `p` when `x` is on an autodiff backend (training), else `x` itself.
fn train_dropout<B: Backend, const D: usize>(x: Tensor<B, D>, p: f64) -> Tensor<B, D> {
    if p > 0.0 {
        DropoutConfig::new(p).init().forward(x)
    } else {
        x
    }
}

/// BERT attention with its output block: `LN(x + dense(attend(x, memory)))`.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    query: Linear<B>,
    key: Linear<B>,
    value: Linear<B>,
    dense: Linear<B>,
    norm: LayerNorm<B>,
    #[module(skip)]
    heads: usize,
    /// The norm's epsilon, for the fused layer norm (Burn keeps its own private).
    #[module(skip)]
    eps: f64,
    /// Training dropout of the output before the residual sum.
    #[module(skip)]
    dropout: f64,
}

/// Keys and values, `[batch, heads, tokens, head_dim]` each.
pub type KeyValue<B> = (Tensor<B, 4>, Tensor<B, 4>);

impl<B: Backend> Attention<B> {
    fn split(&self, x: Tensor<B, 3>) -> Tensor<B, 4> {
        let [b, t, h] = x.dims();
        swap_middle(x.reshape([b, t, self.heads, h / self.heads]))
    }

    /// Keys and values of `source` (`[batch, tokens, hidden]`).
    pub fn key_value(&self, source: Tensor<B, 3>) -> KeyValue<B> {
        (
            self.split(linear(&self.key, source.clone())),
            self.split(linear(&self.value, source)),
        )
    }

    /// Attends `x`'s queries to `kv`; `mask` is `true` where attention is forbidden.
    fn attend(
        &self,
        x: Tensor<B, 3>,
        kv: KeyValue<B>,
        mask: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let [b, t, h] = x.dims();
        let q = self.split(linear(&self.query, x.clone()));
        let scale = ((h / self.heads) as f64).powf(-0.5);
        let out = attention(q, kv.0, kv.1, mask, scale);
        let out = swap_middle(out).reshape([b, t, h]);
        let out = train_dropout(linear(&self.dense, out), self.dropout);
        layer_norm(&self.norm, add(x, out), self.eps)
    }
}

/// One decoder layer.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    self_attn: Attention<B>,
    cross_attn: Attention<B>,
    intermediate: Linear<B>,
    output: Linear<B>,
    output_norm: LayerNorm<B>,
    #[module(skip)]
    act: Activation,
}

/// Each layer's self-attention keys and values of the tokens decoded so far.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    layers: Vec<KeyValue<B>>,
    len: usize,
}

impl<B: Backend> KvCache<B> {
    /// Tokens cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps rows `parents` (in that order), as beam search continues them.
    pub fn reorder(&mut self, parents: Tensor<B, 1, Int>) {
        for (k, v) in self.layers.iter_mut() {
            *k = k.clone().select(0, parents.clone());
            *v = v.clone().select(0, parents.clone());
        }
    }
}

/// The decoder with its prediction head.
#[derive(Module, Debug)]
pub struct BertDecoder<B: Backend> {
    word_embeddings: Param<Tensor<B, 2>>,
    position_embeddings: Param<Tensor<B, 2>>,
    token_type_embeddings: Param<Tensor<B, 2>>,
    embeddings_norm: LayerNorm<B>,
    layers: Vec<DecoderLayer<B>>,
    head_dense: Linear<B>,
    head_norm: LayerNorm<B>,
    head_bias: Param<Tensor<B, 1>>,
    #[module(skip)]
    act: Activation,
    /// The norms' epsilon, for the fused layer norm.
    #[module(skip)]
    eps: f64,
    /// Training dropout ([`BertDecoderConfig::hidden_dropout_prob`]).
    #[module(skip)]
    dropout: f64,
}

impl<B: Backend> BertDecoder<B> {
    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.word_embeddings.dims()[0]
    }

    /// Width.
    pub fn hidden_size(&self) -> usize {
        self.word_embeddings.dims()[1]
    }

    /// Longest sequence the positions cover.
    pub fn max_positions(&self) -> usize {
        self.position_embeddings.dims()[0]
    }

    /// Every layer's cross-attention keys and values of `memory` (the image tokens, already
    /// projected to the decoder's width), computed once per image.
    ///
    /// # Shapes
    /// - `memory`: `[batch, image_tokens, hidden]`
    pub fn cross_key_values(&self, memory: Tensor<B, 3>) -> Vec<KeyValue<B>> {
        self.layers
            .iter()
            .map(|l| l.cross_attn.key_value(memory.clone()))
            .collect()
    }

    /// Logits of every position of whole sequences (causal: position `i` sees tokens `0..=i`).
    ///
    /// # Shapes
    /// - `ids`: `[batch, tokens]` (tokens at most [`Self::max_positions`])
    /// - `cross`: from [`Self::cross_key_values`], batch rows matching `ids`
    /// - output: `[batch, tokens, vocab]`
    pub fn forward(&self, ids: Tensor<B, 2, Int>, cross: &[KeyValue<B>]) -> Tensor<B, 3> {
        self.run(ids, cross, None)
    }

    /// Logits of `ids` continuing the sequences in `cache` (empty: the sequences start here);
    /// their keys and values are appended to `cache`.
    pub fn forward_cached(
        &self,
        ids: Tensor<B, 2, Int>,
        cross: &[KeyValue<B>],
        cache: &mut Option<KvCache<B>>,
    ) -> Tensor<B, 3> {
        let mut fresh = cache.take().unwrap_or(KvCache {
            layers: Vec::new(),
            len: 0,
        });
        let logits = self.run(ids, cross, Some(&mut fresh));
        *cache = Some(fresh);
        logits
    }

    fn run(
        &self,
        ids: Tensor<B, 2, Int>,
        cross: &[KeyValue<B>],
        mut cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let [b, t] = ids.dims();
        let h = self.hidden_size();
        let device = ids.device();
        let past = cache.as_ref().map_or(0, |c| c.len);
        let words = self
            .word_embeddings
            .val()
            .select(0, ids.reshape([b * t]))
            .reshape([b, t, h]);
        let positions = self
            .position_embeddings
            .val()
            .narrow(0, past, t)
            .unsqueeze_dim(0);
        let token_type = self
            .token_type_embeddings
            .val()
            .narrow(0, 0, 1)
            .unsqueeze_dim(0);
        let mut x = train_dropout(
            layer_norm(
                &self.embeddings_norm,
                add(add(words, positions), token_type),
                self.eps,
            ),
            self.dropout,
        );
        let total = past + t;
        // Query i (absolute past + i) may not see keys after it.
        let causal = Tensor::<B, 2, Bool>::tril_mask([t, total], past as i64, &device);
        let heads = self.layers.first().map_or(1, |l| l.self_attn.heads);
        let mask = causal
            .reshape([1, 1, t, total])
            .expand([b, heads, t, total]);
        for (i, layer) in self.layers.iter().enumerate() {
            let (mut k, mut v) = layer.self_attn.key_value(x.clone());
            if let Some(c) = cache.as_deref_mut() {
                if let Some((pk, pv)) = c.layers.get(i) {
                    k = Tensor::cat(vec![pk.clone(), k], 2);
                    v = Tensor::cat(vec![pv.clone(), v], 2);
                }
                if i < c.layers.len() {
                    c.layers[i] = (k.clone(), v.clone());
                } else {
                    c.layers.push((k.clone(), v.clone()));
                }
            }
            x = layer.self_attn.attend(x, (k, v), Some(mask.clone()));
            x = layer.cross_attn.attend(x, cross[i].clone(), None);
            let inner = layer.act.forward(linear(&layer.intermediate, x.clone()));
            let y = add(x, train_dropout(linear(&layer.output, inner), self.dropout));
            x = layer_norm(&layer.output_norm, y, self.eps);
        }
        if let Some(c) = cache {
            c.len = total;
        }
        let y = self.act.forward(linear(&self.head_dense, x));
        let y = layer_norm(&self.head_norm, y, self.eps);
        let vocab = self.vocab_size();
        let logits = y
            .reshape([b * t, h])
            .matmul(self.word_embeddings.val().transpose())
            .reshape([b, t, vocab]);
        add(logits, self.head_bias.val().reshape([1, 1, vocab]))
    }
}
