//! Multi-head self-attention with separate q/k/v/out projections, as CLIP and BERT lay them out.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Bool, Tensor, backend::Backend};

use super::ConfigError;
use super::fused::{attention, linear, swap_middle};

/// Configuration of [`MultiHeadSelfAttention`].
#[derive(Config, Debug)]
pub struct MultiHeadSelfAttentionConfig {
    /// Model width.
    pub hidden_size: usize,
    /// Number of heads; must divide `hidden_size`.
    pub num_attention_heads: usize,
}

/// Scaled dot-product self-attention over `num_attention_heads` heads.
#[derive(Module, Debug)]
pub struct MultiHeadSelfAttention<B: Backend> {
    /// Query projection.
    pub q_proj: Linear<B>,
    /// Key projection.
    pub k_proj: Linear<B>,
    /// Value projection.
    pub v_proj: Linear<B>,
    /// Output projection.
    pub out_proj: Linear<B>,
    /// Number of heads.
    pub num_heads: usize,
}

/// Checks that `heads` is positive and divides `hidden_size`.
pub fn validate_heads(hidden_size: usize, heads: usize) -> Result<(), ConfigError> {
    if heads == 0 || !hidden_size.is_multiple_of(heads) {
        return Err(ConfigError(format!(
            "num_attention_heads {heads} does not divide hidden_size {hidden_size}"
        )));
    }
    Ok(())
}

impl MultiHeadSelfAttentionConfig {
    /// Builds the layer on `device`; an error when the heads do not divide the width.
    pub fn init<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<MultiHeadSelfAttention<B>, ConfigError> {
        validate_heads(self.hidden_size, self.num_attention_heads)?;
        let linear = || LinearConfig::new(self.hidden_size, self.hidden_size).init(device);
        Ok(MultiHeadSelfAttention {
            q_proj: linear(),
            k_proj: linear(),
            v_proj: linear(),
            out_proj: linear(),
            num_heads: self.num_attention_heads,
        })
    }
}

impl<B: Backend> MultiHeadSelfAttention<B> {
    /// Attends every token to every token not masked out.
    ///
    /// `mask` is `true` where attention is forbidden (e.g. the future, for a causal mask).
    /// Matches transformers `modeling_clip.py` `CLIPAttention.forward` (eager path).
    ///
    /// # Shapes
    /// - `x`: `[batch, tokens, hidden]`
    /// - `mask`: `[batch or 1, tokens, tokens]`
    /// - output: `[batch, tokens, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>, mask: Option<Tensor<B, 3, Bool>>) -> Tensor<B, 3> {
        let [batch, tokens, hidden] = x.dims();
        let heads = self.num_heads;
        let head_dim = hidden / heads;
        // [batch, tokens, heads, head_dim] -> [batch, heads, tokens, head_dim], contiguous.
        let split = |t: Tensor<B, 3>| swap_middle(t.reshape([batch, tokens, heads, head_dim]));
        let q = split(linear(&self.q_proj, x.clone()));
        let k = split(linear(&self.k_proj, x.clone()));
        let v = split(linear(&self.v_proj, x));
        // [batch or 1, tokens, tokens] -> [batch, heads, tokens, tokens]
        let mask = mask.map(|m| {
            m.unsqueeze_dim::<4>(1)
                .expand([batch, heads, tokens, tokens])
        });
        // Burn's attention op: one fused CPU kernel on Flex (and one differentiable op on
        // Autodiff<Flex>, `fused::attention`). The explicit scale (the default value) keeps
        // the GPU backends on their plain multi-kernel path, which runs on every driver.
        let scale = (head_dim as f64).powf(-0.5);
        let out = attention(q, k, v, mask, scale); // [batch, heads, tokens, head_dim]
        let out = swap_middle(out).reshape([batch, tokens, hidden]);
        linear(&self.out_proj, out)
    }
}

/// A causal mask: `true` above the diagonal, so token `i` sees tokens `0..=i`.
///
/// # Shapes
/// - output: `[1, tokens, tokens]`
pub fn causal_mask<B: Backend>(tokens: usize, device: &B::Device) -> Tensor<B, 3, Bool> {
    Tensor::<B, 2, Bool>::tril_mask([tokens, tokens], 0, device).unsqueeze_dim(0)
}
