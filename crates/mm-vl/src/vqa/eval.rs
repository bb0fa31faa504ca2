//! Scoring a VQA model: accuracy overall and per answer type, beside the question-only
//! baseline and the same model with every image blanked; the top answers of a batch of
//! questions; loading model folders.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use mm_core::train::{TrainError, load_weights, read_model_config};
use serde::{Deserialize, Serialize};

use super::data::{QuestionOnly, VqaItem, VqaSet, soft_accuracy};
use super::model::VqaModel;
use super::train::{VqaTrainConfig, batch_tensors};

/// Accuracies of one group of questions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accuracies {
    /// The model's (VQA soft) accuracy.
    pub accuracy: f64,
    /// The question-only baseline's.
    pub question_only_accuracy: f64,
    /// The model's with every image blanked.
    pub blank_image_accuracy: f64,
    /// Fraction of the test questions in this group.
    pub fraction: f64,
    /// Questions in this group.
    pub n: usize,
}

/// A VQA evaluation (`eval vqa --out FILE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqaReport {
    /// The model's accuracy over every test question.
    pub accuracy: f64,
    /// The question-only baseline (most common training answer per question).
    pub question_only_accuracy: f64,
    /// The model with every image blanked.
    pub blank_image_accuracy: f64,
    /// Per answer type (`yes/no`, `color`, `shape`, ...).
    pub by_type: BTreeMap<String, Accuracies>,
    /// Test questions.
    pub n_test: usize,
}

/// A model that answers questions about images: the two-tower [`VqaModel`] or a ViLT.
pub trait AnswerModel<B: Backend> {
    /// Answer logits `[batch, answers]`.
    ///
    /// # Shapes
    /// - `pixels`: `[batch, 3, size, size]`; `ids`: `[batch, tokens]`; `last`: `[batch]`, the
    ///   position of each question's last real token (its end-of-text or `[SEP]`)
    fn answer_logits(
        &self,
        pixels: Tensor<B, 4>,
        ids: Tensor<B, 2, Int>,
        last: Tensor<B, 1, Int>,
    ) -> Tensor<B, 2>;
}

impl<B: Backend> AnswerModel<B> for VqaModel<B> {
    fn answer_logits(
        &self,
        pixels: Tensor<B, 4>,
        ids: Tensor<B, 2, Int>,
        last: Tensor<B, 1, Int>,
    ) -> Tensor<B, 2> {
        self.forward(pixels, ids, last).logits
    }
}

/// Argmax answers of `model` for `items` (`blank`: blanked images), in batches of `chunk`.
pub fn predict_answers<B: Backend, M: AnswerModel<B>>(
    model: &M,
    answers: &[String],
    set: &VqaSet,
    items: &[&VqaItem],
    blank: bool,
    chunk: usize,
    device: &B::Device,
) -> Vec<String> {
    let mut out = Vec::with_capacity(items.len());
    for part in items.chunks(chunk.max(1)) {
        let (pixels, ids, eot, _) = batch_tensors(set, part, answers, blank, device);
        let best = model.answer_logits(pixels, ids, eot).argmax(1);
        let best = best.into_data().convert::<i64>();
        out.extend(best.iter::<i64>().map(|i| answers[i as usize].clone()));
    }
    out
}

/// Scores `model` on `test`, with the question-only baseline fitted on `train`.
pub fn evaluate_vqa<B: Backend, M: AnswerModel<B>>(
    model: &M,
    answers: &[String],
    baseline: &QuestionOnly,
    test: &VqaSet,
    device: &B::Device,
) -> VqaReport {
    let items: Vec<&VqaItem> = test.items.iter().collect();
    let seen = predict_answers(model, answers, test, &items, false, 256, device);
    let blank = predict_answers(model, answers, test, &items, true, 256, device);
    let mut groups: BTreeMap<String, [f64; 4]> = BTreeMap::new();
    let mut total = [0.0; 4];
    for (i, item) in items.iter().enumerate() {
        let row = [
            soft_accuracy(&seen[i], &item.answers),
            soft_accuracy(baseline.answer(&item.question), &item.answers),
            soft_accuracy(&blank[i], &item.answers),
            1.0,
        ];
        let g = groups.entry(item.answer_type.clone()).or_default();
        for k in 0..4 {
            g[k] += row[k];
            total[k] += row[k];
        }
    }
    let n = items.len().max(1) as f64;
    VqaReport {
        accuracy: total[0] / n,
        question_only_accuracy: total[1] / n,
        blank_image_accuracy: total[2] / n,
        by_type: groups
            .into_iter()
            .map(|(t, g)| {
                let m = g[3].max(1.0);
                let acc = Accuracies {
                    accuracy: g[0] / m,
                    question_only_accuracy: g[1] / m,
                    blank_image_accuracy: g[2] / m,
                    fraction: g[3] / n,
                    n: g[3] as usize,
                };
                (t, acc)
            })
            .collect(),
        n_test: items.len(),
    }
}

/// One answer with its probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredAnswer {
    /// The answer.
    pub answer: String,
    /// Its softmax probability.
    pub probability: f64,
}

/// The `top` most probable answers to every question of `set`, in one forward pass.
pub fn top_answers_batch<B: Backend, M: AnswerModel<B>>(
    model: &M,
    answers: &[String],
    set: &VqaSet,
    top: usize,
    device: &B::Device,
) -> Vec<Vec<ScoredAnswer>> {
    let items: Vec<&VqaItem> = set.items.iter().collect();
    let (pixels, ids, eot, _) = batch_tensors(set, &items, answers, false, device);
    let probs = softmax(model.answer_logits(pixels, ids, eot), 1)
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .unwrap_or_default();
    probs
        .chunks(answers.len().max(1))
        .map(|row| {
            let mut scored: Vec<ScoredAnswer> = answers
                .iter()
                .zip(row)
                .map(|(a, &p)| ScoredAnswer {
                    answer: a.clone(),
                    probability: p,
                })
                .collect();
            scored.sort_by(|a, b| b.probability.total_cmp(&a.probability));
            scored.truncate(top.max(1));
            scored
        })
        .collect()
}

/// A one-question [`VqaSet`]: `pixels` normalized `[3, size, size]`, the question's tokens
/// and the position of its last real one.
pub fn one_question(
    pixels: Vec<f32>,
    size: usize,
    question: &str,
    tokens: (Vec<u32>, usize),
) -> VqaSet {
    let context_length = tokens.0.len();
    VqaSet {
        images: vec![pixels],
        items: vec![VqaItem {
            image: 0,
            question: question.into(),
            tokens: tokens.0,
            eot: tokens.1,
            answers: vec![],
            answer_type: "other".into(),
        }],
        size,
        context_length,
    }
}

/// A trained VQA folder (`final/` of `train vqa`) and its configuration.
pub fn load_vqa<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(VqaModel<B>, VqaTrainConfig), TrainError> {
    let config: VqaTrainConfig = serde_json::from_value(read_model_config(dir)?).map_err(|e| {
        TrainError::Settings(format!(
            "{}: not a VQA model folder: {e}",
            dir.join("config.json").display()
        ))
    })?;
    let model = config
        .model
        .init::<B>(device)
        .map_err(|e| TrainError::Settings(e.to_string()))?;
    Ok((load_weights(dir, model, device)?, config))
}
