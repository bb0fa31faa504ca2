//! Key tables of Burn's own layers under PyTorch's parameter names.
//!
//! With these, a model whose struct mirrors its checkpoint's module tree declares its table as
//! a list of prefixes: `self.conv1.visit_hf(&format!("{prefix}conv1."), v)`. Layers whose
//! PyTorch form fuses several of ours (the LSTM's four gates) split the fused tensor with
//! [`Layout::Chunk`]; export joins them again.

use burn::module::Param;
use burn::nn::conv::{Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d};
use burn::nn::{BatchNorm, Embedding, GroupNorm, LayerNorm, Linear, Lstm};
use burn::tensor::{Tensor, backend::Backend};

use super::{HfParams, Layout, ParamVisitor};

/// Visits an optional parameter (a bias, an affine norm's scale) if the layer has it.
fn optional<B: Backend, const D: usize>(
    v: &mut dyn ParamVisitor<B>,
    key: String,
    layout: Layout,
    param: &mut Option<Param<Tensor<B, D>>>,
) {
    if let Some(param) = param.as_mut() {
        v.visit(&key, layout, param);
    }
}

/// `torch.nn.Linear`: `weight` `[out, in]` (ours `[in, out]`), `bias`.
impl<B: Backend> HfParams<B> for Linear<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        v.visit(
            &format!("{prefix}weight"),
            Layout::Transposed,
            &mut self.weight,
        );
        optional(v, format!("{prefix}bias"), Layout::Same, &mut self.bias);
    }
}

/// `torch.nn.LayerNorm`: `weight`, `bias` (ours `gamma`, `beta`).
impl<B: Backend> HfParams<B> for LayerNorm<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        v.visit(&format!("{prefix}weight"), Layout::Same, &mut self.gamma);
        optional(v, format!("{prefix}bias"), Layout::Same, &mut self.beta);
    }
}

/// `torch.nn.GroupNorm`: `weight`, `bias` when affine.
impl<B: Backend> HfParams<B> for GroupNorm<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        optional(v, format!("{prefix}weight"), Layout::Same, &mut self.gamma);
        optional(v, format!("{prefix}bias"), Layout::Same, &mut self.beta);
    }
}

/// `torch.nn.BatchNorm*d`: `weight`, `bias`, `running_mean`, `running_var`. PyTorch's
/// `num_batches_tracked` counter has no counterpart: list it among a load's ignored suffixes.
impl<B: Backend> HfParams<B> for BatchNorm<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        v.visit(&format!("{prefix}weight"), Layout::Same, &mut self.gamma);
        v.visit(&format!("{prefix}bias"), Layout::Same, &mut self.beta);
        v.visit(
            &format!("{prefix}running_mean"),
            Layout::Same,
            &mut self.running_mean,
        );
        v.visit(
            &format!("{prefix}running_var"),
            Layout::Same,
            &mut self.running_var,
        );
    }
}

/// `torch.nn.Embedding`: `weight` `[vocab, dim]`.
impl<B: Backend> HfParams<B> for Embedding<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        v.visit(&format!("{prefix}weight"), Layout::Same, &mut self.weight);
    }
}

/// Convolutions: PyTorch and Burn lay kernels out alike (`[out, in / groups, k...]`, and
/// `[in, out / groups, k...]` for transposed ones), so each is `weight` and `bias` as they are.
macro_rules! conv_key_table {
    ($($layer:ident),*) => {$(
        #[doc = concat!("`torch.nn.", stringify!($layer), "`: `weight`, `bias`.")]
        impl<B: Backend> HfParams<B> for $layer<B> {
            fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
                v.visit(&format!("{prefix}weight"), Layout::Same, &mut self.weight);
                optional(v, format!("{prefix}bias"), Layout::Same, &mut self.bias);
            }
        }
    )*};
}

conv_key_table!(
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d
);

/// A one-layer `torch.nn.LSTM`: `weight_ih_l0` `[4 * hidden, in]`, `weight_hh_l0`
/// `[4 * hidden, hidden]`, `bias_ih_l0`, `bias_hh_l0`, gates stacked in PyTorch's order input,
/// forget, cell (g), output. `prefix` ends where the LSTM's own names begin (`lstm.`); a
/// multi-layer PyTorch LSTM is several of ours, layer `k` read with [`lstm_layer`].
impl<B: Backend> HfParams<B> for Lstm<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        lstm_layer(self, prefix, 0, v);
    }
}

/// Layer `layer` of a (possibly multi-layer) `torch.nn.LSTM` into one of ours: the keys
/// `{prefix}weight_ih_l{layer}` and so on.
pub fn lstm_layer<B: Backend>(
    lstm: &mut Lstm<B>,
    prefix: &str,
    layer: usize,
    v: &mut dyn ParamVisitor<B>,
) {
    let gates = [
        &mut lstm.input_gate,
        &mut lstm.forget_gate,
        &mut lstm.cell_gate,
        &mut lstm.output_gate,
    ];
    for (index, gate) in gates.into_iter().enumerate() {
        let weight = Layout::Chunk {
            index,
            of: 4,
            transposed: true,
        };
        let bias = Layout::Chunk {
            index,
            of: 4,
            transposed: false,
        };
        for (side, linear) in [
            ("ih", &mut gate.input_transform),
            ("hh", &mut gate.hidden_transform),
        ] {
            v.visit(
                &format!("{prefix}weight_{side}_l{layer}"),
                weight,
                &mut linear.weight,
            );
            optional(
                v,
                format!("{prefix}bias_{side}_l{layer}"),
                bias,
                &mut linear.bias,
            );
        }
    }
}
