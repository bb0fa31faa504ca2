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
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    type B = NdArray;

    #[test]
    fn ensemble_averages_and_renormalizes() {
        let device = Default::default();
        // Class 0: prompts e0 and e1 -> (e0 + e1)/sqrt(2). Class 1: e2 twice -> e2.
        let data = vec![
            1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0,
        ];
        let prompts = Tensor::<B, 3>::from_data(TensorData::new(data, [2, 2, 3]), &device);
        let out = ensemble(prompts).into_data().to_vec::<f32>().unwrap();
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let want = [h, h, 0.0, 0.0, 0.0, 1.0];
        for (a, b) in out.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{out:?}");
        }
    }

    #[test]
    fn ensemble_can_change_the_decision() {
        // An image at (0.8, 0.6, 0): with template 1 alone it sits closer to class 1 (0, 1, 0)
        // than to class 0 (0.6, 0, 0.8); ensembling class 0's templates (1, 0, 0) and
        // (0.6, 0, 0.8) moves class 0 towards the image, and the answer flips to class 0.
        let device = Default::default();
        let image =
            Tensor::<B, 2>::from_data(TensorData::new(vec![0.8f32, 0.6, 0.0], [1, 3]), &device);
        let single = Tensor::<B, 2>::from_data(
            TensorData::new(vec![0.6f32, 0.0, 0.8, 0.0, 1.0, 0.0], [2, 3]),
            &device,
        );
        let p = class_probabilities(image.clone(), single, 100.0)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!(p[1] > p[0], "{p:?}");
        let prompts = Tensor::<B, 3>::from_data(
            TensorData::new(
                vec![
                    1.0f32, 0.0, 0.0, 0.6, 0.0, 0.8, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0,
                ],
                [2, 2, 3],
            ),
            &device,
        );
        let p = class_probabilities(image, ensemble(prompts), 100.0)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!(p[0] > p[1], "{p:?}");
        assert!((p[0] + p[1] - 1.0).abs() < 1e-5);
    }

    #[test]
    fn templates_are_filled() {
        assert_eq!(
            fill_template("a photo of a {}.", "cat"),
            "a photo of a cat."
        );
    }
}
