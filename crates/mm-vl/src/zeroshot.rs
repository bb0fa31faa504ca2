//! Zero-shot classification: class names become prompts, prompts become text embeddings, and
//! an image takes the class whose (ensembled) text embedding it is most similar to.
//!
//! With several templates, each class embedding is the mean of its normalized prompt
//! embeddings, normalized again (Radford et al. 2021, prompt ensembling; the guide's
//! `ZeroShotCLIP` generalized from one template to many).

use burn::tensor::{Tensor, activation::softmax, backend::Backend};
use mm_core::encoder::l2_normalize;
use mm_text::{ClipTokenizer, TextBatch, TokenizerError};

use crate::clip::Clip;

/// One prompt: OpenAI's default ImageNet template.
pub const SINGLE_TEMPLATE: &[&str] = &["a photo of a {}."];

/// Fills `{}` in `template` with `class`.
pub fn fill_template(template: &str, class: &str) -> String {
    template.replace("{}", class)
}

/// Averages normalized prompt embeddings per class and renormalizes.
///
/// # Shapes
/// - `prompt_embeddings`: `[classes, templates, dim]`, each row unit-norm
/// - output: `[classes, dim]`, unit-norm
pub fn ensemble<B: Backend>(prompt_embeddings: Tensor<B, 3>) -> Tensor<B, 2> {
    let [classes, _, dim] = prompt_embeddings.dims();
    l2_normalize(prompt_embeddings.mean_dim(1).reshape([classes, dim]))
}

/// Class probabilities: `softmax(scale * image . class)`, as the guide's `classify` (scale 100).
///
/// # Shapes
/// - `images`: `[batch, dim]` and `classes`: `[classes, dim]`, unit-norm
/// - output: `[batch, classes]`
pub fn class_probabilities<B: Backend>(
    images: Tensor<B, 2>,
    classes: Tensor<B, 2>,
    scale: f64,
) -> Tensor<B, 2> {
    softmax(images.matmul(classes.transpose()) * scale, 1)
}

/// A zero-shot classifier over a fixed set of classes.
#[derive(Debug, Clone)]
pub struct ZeroShotClassifier<B: Backend> {
    /// Class names, in the order of `class_embeddings` rows.
    pub classes: Vec<String>,
    /// Unit-norm class embeddings, `[classes, dim]`.
    pub class_embeddings: Tensor<B, 2>,
}

impl<B: Backend> ZeroShotClassifier<B> {
    /// Embeds every `template` x `class` prompt and ensembles per class.
    pub fn new(
        model: &Clip<B>,
        tokenizer: &ClipTokenizer,
        classes: &[String],
        templates: &[&str],
    ) -> Result<Self, TokenizerError> {
        let device = model.logit_scale.value.device();
        let prompts: Vec<String> = classes
            .iter()
            .flat_map(|c| templates.iter().map(move |t| fill_template(t, c)))
            .collect();
        let mut embeddings = Vec::new();
        for chunk in prompts.chunks(256) {
            let tokens = tokenizer.encode_batch(chunk, model.context_length())?;
            let (ids, eot_positions) = tokens.to_tensors::<B>(&device);
            embeddings.push(model.encode_text(TextBatch { ids, eot_positions }));
        }
        let all = Tensor::cat(embeddings, 0); // [classes * templates, dim]
        let dim = all.dims()[1];
        let class_embeddings = ensemble(all.reshape([classes.len(), templates.len(), dim]));
        Ok(Self {
            classes: classes.to_vec(),
            class_embeddings,
        })
    }

    /// Probabilities over classes for unit-norm image embeddings.
    ///
    /// # Shapes
    /// - `images`: `[batch, dim]`; output `[batch, classes]`
    pub fn probabilities(&self, images: Tensor<B, 2>) -> Tensor<B, 2> {
        class_probabilities(images, self.class_embeddings.clone(), 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled() {
        assert_eq!(
            fill_template("a photo of a {}.", "cat"),
            "a photo of a cat."
        );
    }
}
