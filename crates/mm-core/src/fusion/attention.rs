//! Cross-modal attention: tokens of one modality (queries) attend over the tokens of another
//! (keys and values), with several heads, and the attention weights are returned (the guide's
//! Theorems 14-15 and `FusionStrategies.attention_fusion`).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Distribution, Tensor, activation::softmax, backend::Backend};

use super::{Fusion, FusionError, check_inputs};
use crate::nn::attention::validate_heads;

/// Sizes of a [`CrossModalAttention`].
#[derive(Config, Debug)]
pub struct CrossModalAttentionConfig {
    /// Width of one query token (modality X).
    pub d_query: usize,
    /// Width of one key/value token (modality Y).
    pub d_context: usize,
    /// Model width `h` (split across heads).
    pub d_model: usize,
    /// Attention heads.
    #[config(default = 4)]
    pub n_heads: usize,
    /// Tokens a pooled X embedding is split into when used through [`Fusion`].
    #[config(default = 1)]
    pub query_tokens: usize,
    /// Tokens a pooled Y embedding is split into when used through [`Fusion`].
    #[config(default = 1)]
    pub context_tokens: usize,
}

impl CrossModalAttentionConfig {
    /// Builds the module; errors when `d_model` does not split into `n_heads`.
    pub fn init<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<CrossModalAttention<B>, FusionError> {
        validate_heads(self.d_model, self.n_heads)
            .map_err(|e| FusionError::Config(e.to_string()))?;
        if self.query_tokens == 0 || self.context_tokens == 0 {
            return Err(FusionError::Config(
                "token counts must be at least 1".into(),
            ));
        }
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        let position = |n: usize, d: usize| {
            Param::from_tensor(Tensor::random(
                [n, d],
                Distribution::Normal(0.0, 0.02),
                device,
            ))
        };
        Ok(CrossModalAttention {
            query_position: position(self.query_tokens, self.d_query),
            context_position: position(self.context_tokens, self.d_context),
            q_proj: linear(self.d_query, self.d_model),
            k_proj: linear(self.d_context, self.d_model),
            v_proj: linear(self.d_context, self.d_model),
            out_proj: linear(self.d_model, self.d_model),
            n_heads: self.n_heads,
            query_tokens: self.query_tokens,
            context_tokens: self.context_tokens,
        })
    }
}

/// Multi-head cross-attention: `(d_query + 2 d_context + h) h + 4h` parameters, plus
/// `n_q d_query + n_k d_context` for the token positions of [`Fusion`] use.
#[derive(Module, Debug)]
pub struct CrossModalAttention<B: Backend> {
    /// Learned position of each query token, `[query_tokens, d_query]`.
    query_position: Param<Tensor<B, 2>>,
    /// Learned position of each context token, `[context_tokens, d_context]`.
    context_position: Param<Tensor<B, 2>>,
    q_proj: Linear<B>,
    k_proj: Linear<B>,
    v_proj: Linear<B>,
    out_proj: Linear<B>,
    #[module(skip)]
    n_heads: usize,
    #[module(skip)]
    query_tokens: usize,
    #[module(skip)]
    context_tokens: usize,
}

impl<B: Backend> CrossModalAttention<B> {
    /// Every query token attends over all context tokens:
    /// `alpha_ij = softmax_j(q_i . k_j / sqrt(d_head))`, `c_i = sum_j alpha_ij v_j`, then the
    /// heads are concatenated, projected by `W^O` and added to the projected query
    /// `W^Q x_i` (a residual connection, so X's own content reaches the output).
    ///
    /// # Shapes
    /// - `query`: `[batch, n_q, d_query]`, `context`: `[batch, n_k, d_context]`
    /// - returns `([batch, n_q, h], weights [batch, heads, n_q, n_k])`; each weight row sums to 1
    pub fn attend(
        &self,
        query: Tensor<B, 3>,
        context: Tensor<B, 3>,
    ) -> (Tensor<B, 3>, Tensor<B, 4>) {
        let [batch, n_q, _] = query.dims();
        let [_, n_k, _] = context.dims();
        let h = self.out_proj.weight.dims()[0];
        let (heads, head_dim) = (self.n_heads, h / self.n_heads);
        let split = |t: Tensor<B, 3>, n: usize| {
            t.reshape([batch, n, heads, head_dim]) // [batch, n, heads, head_dim]
                .swap_dims(1, 2) // [batch, heads, n, head_dim]
        };
        let queries = self.q_proj.forward(query); // [batch, n_q, h]
        let q = split(queries.clone() * (head_dim as f64).powf(-0.5), n_q);
        let k = split(self.k_proj.forward(context.clone()), n_k);
        let v = split(self.v_proj.forward(context), n_k);
        let weights = softmax(q.matmul(k.swap_dims(2, 3)), 3); // [batch, heads, n_q, n_k]
        let out = weights
            .clone()
            .matmul(v) // [batch, heads, n_q, head_dim]
            .swap_dims(1, 2) // [batch, n_q, heads, head_dim]
            .reshape([batch, n_q, h]);
        // Residual: the projected query plus what it gathered from the other modality.
        (queries + self.out_proj.forward(out), weights)
    }

    /// Like [`Fusion::fuse`], also returning the attention weights.
    ///
    /// X's pooled embedding is split into `query_tokens` tokens and Y's into `context_tokens`;
    /// each token gets a learned position embedding, and the attended query tokens are averaged. With one context token every weight is 1 and no
    /// interaction is left: split embeddings into tokens for attention to mean anything.
    ///
    /// # Shapes
    /// - `x`: `[batch, query_tokens * d_query]`, `y`: `[batch, context_tokens * d_context]`
    /// - returns `([batch, h], [batch, heads, query_tokens, context_tokens])`
    pub fn fuse_with_weights(
        &self,
        inputs: &[Tensor<B, 2>],
    ) -> Result<(Tensor<B, 2>, Tensor<B, 4>), FusionError> {
        check_inputs(inputs, &self.input_dims())?;
        let [batch, _] = inputs[0].dims();
        let d_q = self.q_proj.weight.dims()[0];
        let d_c = self.k_proj.weight.dims()[0];
        // Without positions the tokens of a split embedding would be interchangeable.
        let q = inputs[0].clone().reshape([batch, self.query_tokens, d_q]) // [batch, n_q, d_query]
            + self.query_position.val().unsqueeze_dim(0);
        let c = inputs[1].clone().reshape([batch, self.context_tokens, d_c]) // [batch, n_k, d_context]
            + self.context_position.val().unsqueeze_dim(0);
        let (out, weights) = self.attend(q, c);
        let h = self.output_dim();
        Ok((out.mean_dim(1).reshape([batch, h]), weights)) // [batch, h]
    }
}

impl<B: Backend> Fusion<B> for CrossModalAttention<B> {
    fn fuse(&self, inputs: &[Tensor<B, 2>]) -> Result<Tensor<B, 2>, FusionError> {
        Ok(self.fuse_with_weights(inputs)?.0)
    }

    fn input_dims(&self) -> Vec<usize> {
        vec![
            self.query_tokens * self.q_proj.weight.dims()[0],
            self.context_tokens * self.k_proj.weight.dims()[0],
        ]
    }

    fn output_dim(&self) -> usize {
        self.out_proj.weight.dims()[1]
    }
}
