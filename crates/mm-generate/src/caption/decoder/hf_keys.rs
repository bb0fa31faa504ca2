//! transformers' parameter names of the decoder (`BertLMHeadModel`'s), for loading and
//! exporting `VisionEncoderDecoderModel` folders.

use burn::tensor::backend::Backend;
use mm_core::hf::{HfParams, Layout, ParamVisitor};
use mm_text::bert::visit_bert_embeddings;

use super::{Attention, BertDecoder};

impl<B: Backend> HfParams<B> for Attention<B> {
    /// Under `attention.` or `crossattention.`: `self.{query,key,value}`, `output.dense`,
    /// `output.LayerNorm`.
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.query.visit_hf(&format!("{prefix}self.query."), v);
        self.key.visit_hf(&format!("{prefix}self.key."), v);
        self.value.visit_hf(&format!("{prefix}self.value."), v);
        self.dense.visit_hf(&format!("{prefix}output.dense."), v);
        self.norm.visit_hf(&format!("{prefix}output.LayerNorm."), v);
    }
}

/// transformers' keys of `BertLMHeadModel` (under `decoder.` in a `VisionEncoderDecoderModel`);
/// the output layer is tied to the word embeddings, so only its bias has a key.
impl<B: Backend> HfParams<B> for BertDecoder<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        visit_bert_embeddings(
            &format!("{prefix}bert.embeddings."),
            [
                &mut self.word_embeddings,
                &mut self.position_embeddings,
                &mut self.token_type_embeddings,
            ],
            &mut self.embeddings_norm,
            v,
        );
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let l = format!("{prefix}bert.encoder.layer.{i}.");
            layer.self_attn.visit_hf(&format!("{l}attention."), v);
            layer.cross_attn.visit_hf(&format!("{l}crossattention."), v);
            layer
                .intermediate
                .visit_hf(&format!("{l}intermediate.dense."), v);
            layer.output.visit_hf(&format!("{l}output.dense."), v);
            layer
                .output_norm
                .visit_hf(&format!("{l}output.LayerNorm."), v);
        }
        let c = format!("{prefix}cls.predictions.");
        self.head_dense.visit_hf(&format!("{c}transform.dense."), v);
        self.head_norm
            .visit_hf(&format!("{c}transform.LayerNorm."), v);
        v.visit(&format!("{c}bias"), Layout::Same, &mut self.head_bias);
    }
}
