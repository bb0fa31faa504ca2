//! Evaluation of a CLIP model on a test set: retrieval Recall@1/5/10 in both directions and
//! zero-shot top-1 accuracy over the set's labels, with one prompt and with an ensemble.

use std::collections::BTreeSet;

use burn::tensor::{Tensor, backend::Backend};
use mm_core::metrics::{Scores, bidirectional_recall, top_k_accuracy};
use mm_text::{ClipTokenizer, TextBatch, TokenizerError};
use serde::{Deserialize, Serialize};

use crate::clip::Clip;
use crate::data::ImageTextSet;
use crate::zeroshot::ZeroShotClassifier;

/// The figures `eval clip` prints and writes (fractions in [0, 1]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Number of test images (and of their primary captions).
    pub n_test: usize,
    /// Image -> text Recall@1.
    pub i2t_r1: f64,
    /// Image -> text Recall@5.
    pub i2t_r5: f64,
    /// Image -> text Recall@10.
    pub i2t_r10: f64,
    /// Text -> image Recall@1.
    pub t2i_r1: f64,
    /// Text -> image Recall@5.
    pub t2i_r5: f64,
    /// Text -> image Recall@10.
    pub t2i_r10: f64,
    /// Zero-shot top-1 accuracy over the labels with the first template only.
    pub zeroshot_top1_single: f64,
    /// Zero-shot top-1 accuracy with every template, ensembled.
    pub zeroshot_top1_ensemble: f64,
}

/// Unit-norm embeddings of every image of `data`, in batches.
///
/// # Shapes
/// - output: `[images, dim]`
pub fn embed_images<B: Backend>(
    model: &Clip<B>,
    data: &ImageTextSet,
    batch: usize,
) -> Tensor<B, 2> {
    let device = model.logit_scale.value.device();
    let indices: Vec<usize> = (0..data.len()).collect();
    let parts = indices
        .chunks(batch.max(1))
        .map(|chunk| model.encode_image(data.pixels(chunk, None).to_tensor::<B>(&device)))
        .collect();
    Tensor::cat(parts, 0)
}

/// Unit-norm embeddings of `texts`, in batches.
///
/// # Shapes
/// - output: `[texts, dim]`
pub fn embed_texts<B: Backend>(
    model: &Clip<B>,
    tokenizer: &ClipTokenizer,
    texts: &[String],
    batch: usize,
) -> Result<Tensor<B, 2>, TokenizerError> {
    let device = model.logit_scale.value.device();
    let mut parts = Vec::new();
    for chunk in texts.chunks(batch.max(1)) {
        let (ids, eot_positions) = tokenizer
            .encode_batch(chunk, model.context_length())?
            .to_tensors::<B>(&device);
        parts.push(model.encode_text(TextBatch { ids, eot_positions }));
    }
    Ok(Tensor::cat(parts, 0))
}

fn to_vec<B: Backend>(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 data")
}

/// Evaluates `model` on `data` (see [`EvalReport`]); `templates[0]` is the single prompt.
pub fn evaluate<B: Backend>(
    model: &Clip<B>,
    tokenizer: &ClipTokenizer,
    data: &ImageTextSet,
    templates: &[&str],
    batch: usize,
) -> Result<EvalReport, TokenizerError> {
    let images = embed_images(model, data, batch);
    let texts = embed_texts(model, tokenizer, &data.primary_captions(), batch)?;
    let n = data.len();
    let sim = to_vec(images.clone().matmul(texts.transpose())); // [images, texts]
    let identity: Vec<usize> = (0..n).collect();
    let (i2t, t2i) = bidirectional_recall(Scores::new(&sim, n, n), &identity, &[1, 5, 10]);

    let labelled: Vec<usize> = (0..n).filter(|&i| data.labels[i].is_some()).collect();
    let classes: Vec<String> = labelled
        .iter()
        .filter_map(|&i| data.labels[i].clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut zeroshot = [0.0, 0.0];
    if !classes.is_empty() {
        let truth: Vec<usize> = labelled
            .iter()
            .map(|&i| {
                classes
                    .binary_search(data.labels[i].as_ref().expect("labelled"))
                    .expect("known class")
            })
            .collect();
        let device = images.device();
        let index = Tensor::<B, 1, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(
                labelled.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                [labelled.len()],
            ),
            &device,
        );
        let labelled_images = images.select(0, index);
        for (slot, set) in [&templates[..1], templates].into_iter().enumerate() {
            let classifier = ZeroShotClassifier::new(model, tokenizer, &classes, set)?;
            let scores = to_vec(
                labelled_images
                    .clone()
                    .matmul(classifier.class_embeddings.transpose()),
            );
            zeroshot[slot] = top_k_accuracy(
                Scores::new(&scores, labelled.len(), classes.len()),
                &truth,
                1,
            );
        }
    }
    Ok(EvalReport {
        n_test: n,
        i2t_r1: i2t[0],
        i2t_r5: i2t[1],
        i2t_r10: i2t[2],
        t2i_r1: t2i[0],
        t2i_r5: t2i[1],
        t2i_r10: t2i[2],
        zeroshot_top1_single: zeroshot[0],
        zeroshot_top1_ensemble: zeroshot[1],
    })
}
