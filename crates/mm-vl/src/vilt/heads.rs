//! ViLT's task heads on the shared transformer, each under transformers' names: image-text
//! matching (`ViltForImageAndTextRetrieval.rank_output`), masked language modelling
//! (`ViltForMaskedLM.mlm_score`) and question answering (`ViltForQuestionAnswering.classifier`).
//! A [`Vilt`] carries whichever heads its folder has.

use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Int, Tensor, backend::Backend};
use mm_core::hf::{HfParams, Layout, ParamVisitor};
use mm_core::nn::Activation;

use super::ViltError;
use super::model::{ViltConfig, ViltModel, ViltOutput};

/// `ViltMLMHead`: dense, activation, LayerNorm, then the vocabulary projection plus a bias.
#[derive(Module, Debug)]
pub struct MlmHead<B: Backend> {
    dense: Linear<B>,
    norm: LayerNorm<B>,
    decoder: Linear<B>,
    bias: Param<Tensor<B, 1>>,
    #[module(skip)]
    act: Activation,
}

impl<B: Backend> MlmHead<B> {
    fn new(c: &ViltConfig, device: &B::Device) -> Self {
        MlmHead {
            dense: LinearConfig::new(c.hidden_size, c.hidden_size).init(device),
            norm: LayerNormConfig::new(c.hidden_size)
                .with_epsilon(c.layer_norm_eps)
                .init(device),
            decoder: LinearConfig::new(c.hidden_size, c.vocab_size)
                .with_bias(false)
                .init(device),
            bias: Initializer::Zeros.init([c.vocab_size], device),
            act: c.hidden_act,
        }
    }

    /// Vocabulary logits, `[batch, tokens, vocab]`, of hidden states `[batch, tokens, hidden]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = self.norm.forward(self.act.forward(self.dense.forward(x)));
        self.decoder.forward(x) + self.bias.val().unsqueeze_dim::<2>(0).unsqueeze_dim(0)
    }
}

/// `ViltForQuestionAnswering.classifier`: Linear(h, 2h), LayerNorm(2h), GELU, Linear(2h, answers).
#[derive(Module, Debug)]
pub struct AnswerHead<B: Backend> {
    expand: Linear<B>,
    norm: LayerNorm<B>,
    out: Linear<B>,
}

impl<B: Backend> AnswerHead<B> {
    fn new(hidden: usize, answers: usize, device: &B::Device) -> Self {
        AnswerHead {
            expand: LinearConfig::new(hidden, 2 * hidden).init(device),
            // PyTorch's default epsilon: transformers builds this norm without the config's.
            norm: LayerNormConfig::new(2 * hidden).init(device),
            out: LinearConfig::new(2 * hidden, answers).init(device),
        }
    }

    /// Answer logits `[batch, answers]` of pooled outputs `[batch, hidden]`.
    pub fn forward(&self, pooled: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = self.norm.forward(self.expand.forward(pooled));
        self.out.forward(Activation::Gelu.forward(x))
    }
}

/// Which heads a [`Vilt`] is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Heads {
    /// Image-text matching score.
    pub itm: bool,
    /// Masked language modelling.
    pub mlm: bool,
    /// Question answering with this many answers.
    pub answers: Option<usize>,
}

/// A ViLT transformer with its task heads.
#[derive(Module, Debug)]
pub struct Vilt<B: Backend> {
    /// The shared transformer.
    pub vilt: ViltModel<B>,
    /// `rank_output`: one image-text matching logit per pair.
    pub itm: Option<Linear<B>>,
    /// `mlm_score`.
    pub mlm: Option<MlmHead<B>>,
    /// `classifier`.
    pub vqa: Option<AnswerHead<B>>,
}

impl ViltConfig {
    /// The transformer with `heads`.
    pub fn init_with_heads<B: Backend>(
        &self,
        heads: Heads,
        device: &B::Device,
    ) -> Result<Vilt<B>, ViltError> {
        if heads.answers == Some(0) {
            return Err(ViltError::Config(
                "a question-answering head needs at least one answer".into(),
            ));
        }
        Ok(Vilt {
            vilt: self.init(device)?,
            itm: heads
                .itm
                .then(|| LinearConfig::new(self.hidden_size, 1).init(device)),
            mlm: heads.mlm.then(|| MlmHead::new(self, device)),
            vqa: heads
                .answers
                .map(|n| AnswerHead::new(self.hidden_size, n, device)),
        })
    }
}

fn missing(head: &str) -> ViltError {
    ViltError::Input(format!("this ViLT has no {head} head"))
}

impl<B: Backend> Vilt<B> {
    /// The heads this model has.
    pub fn heads(&self) -> Heads {
        Heads {
            itm: self.itm.is_some(),
            mlm: self.mlm.is_some(),
            answers: self.vqa.as_ref().map(|h| h.out.weight.dims()[1]),
        }
    }

    /// The model with a new question-answering head of `answers` outputs (replacing any).
    pub fn with_answer_head(mut self, answers: usize, device: &B::Device) -> Self {
        let hidden = self.vilt.hidden_size();
        self.vqa = Some(AnswerHead::new(hidden, answers, device));
        self
    }

    /// Runs the transformer after checking the inputs' sizes.
    pub fn encode(
        &self,
        ids: Tensor<B, 2, Int>,
        mask: Tensor<B, 2, Int>,
        pixels: Tensor<B, 4>,
    ) -> Result<ViltOutput<B>, ViltError> {
        self.vilt.check_inputs(ids.dims(), pixels.dims())?;
        Ok(self.vilt.forward(ids, mask, pixels))
    }

    /// Image-text matching logits `[batch, 1]` of an encoded batch.
    pub fn itm_logits(&self, out: &ViltOutput<B>) -> Result<Tensor<B, 2>, ViltError> {
        let head = self
            .itm
            .as_ref()
            .ok_or_else(|| missing("image-text matching"))?;
        Ok(head.forward(out.pooled.clone()))
    }

    /// Masked-language-model logits at the text positions, `[batch, tokens, vocab]`.
    pub fn mlm_logits(&self, out: &ViltOutput<B>) -> Result<Tensor<B, 3>, ViltError> {
        let head = self
            .mlm
            .as_ref()
            .ok_or_else(|| missing("masked-language"))?;
        let text = out.sequence.clone().narrow(1, 0, out.text_tokens);
        Ok(head.forward(text))
    }

    /// Answer logits `[batch, answers]`.
    pub fn vqa_logits(&self, out: &ViltOutput<B>) -> Result<Tensor<B, 2>, ViltError> {
        let head = self
            .vqa
            .as_ref()
            .ok_or_else(|| missing("question-answering"))?;
        Ok(head.forward(out.pooled.clone()))
    }
}

/// transformers' keys: `vilt.*`, `rank_output.*`, `mlm_score.*`, `classifier.{0,1,3}.*`.
impl<B: Backend> HfParams<B> for Vilt<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.vilt.visit_hf(&format!("{prefix}vilt."), v);
        if let Some(itm) = self.itm.as_mut() {
            itm.visit_hf(&format!("{prefix}rank_output."), v);
        }
        if let Some(mlm) = self.mlm.as_mut() {
            let m = format!("{prefix}mlm_score.");
            mlm.dense.visit_hf(&format!("{m}transform.dense."), v);
            mlm.norm.visit_hf(&format!("{m}transform.LayerNorm."), v);
            mlm.decoder.visit_hf(&format!("{m}decoder."), v);
            v.visit(&format!("{m}bias"), Layout::Same, &mut mlm.bias);
        }
        if let Some(vqa) = self.vqa.as_mut() {
            let c = format!("{prefix}classifier.");
            vqa.expand.visit_hf(&format!("{c}0."), v);
            vqa.norm.visit_hf(&format!("{c}1."), v);
            vqa.out.visit_hf(&format!("{c}3."), v);
        }
    }
}
