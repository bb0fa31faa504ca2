//! Zero-shot evaluation on a transfer benchmark ([`crate::transfer`]): top-1 and top-5 with one
//! prompt and with the ensemble, beside uniform chance and the majority class, and an ablation
//! of the templates (each alone, and the ensemble without it), for object classes and, where
//! the items have them, broader categories.
//!
//! Class embeddings are computed as in [`crate::zeroshot::ensemble`]: the mean of the chosen
//! templates' unit-norm prompt embeddings, normalized again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use burn::tensor::backend::Backend;
use mm_core::metrics::{Scores, top_k_accuracy};
use serde::{Deserialize, Serialize};

use crate::hf::LoadedClip;
use crate::pipeline::PipelineError;
use crate::transfer::TransferItem;
use crate::zeroshot::fill_template;

/// One template's share in the ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateFigures {
    /// The template.
    pub template: String,
    /// Top-1 with this template alone.
    pub top1_alone: f64,
    /// Top-1 of the ensemble of every other template (equal to the full ensemble's top-1 when
    /// there is one template).
    pub top1_without: f64,
}

/// Figures of one classification task (fractions in [0, 1]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    /// Classes (labels that occur among the test items).
    pub n_classes: usize,
    /// Test images.
    pub n_test: usize,
    /// Top-1 with the first template.
    pub top1_single: f64,
    /// Top-1 with every template ensembled.
    pub top1_ensemble: f64,
    /// Top-5 with the first template.
    pub top5_single: f64,
    /// Top-5 with the ensemble.
    pub top5_ensemble: f64,
    /// Uniform chance of top-1, `1 / n_classes`.
    pub chance_top1: f64,
    /// Uniform chance of top-5.
    pub chance_top5: f64,
    /// The most frequent class.
    pub majority_class: String,
    /// Top-1 of always answering it.
    pub majority_top1: f64,
    /// Each template alone and the ensemble without it, in template order.
    pub templates: Vec<TemplateFigures>,
}

/// One test image's three best object classes (ensemble; softmax of 100 x cosine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The image file.
    pub image: PathBuf,
    /// Its caption.
    pub caption: String,
    /// The true class.
    pub label: String,
    /// `(class, probability)`, best first.
    pub top3: Vec<(String, f32)>,
}

/// What `eval zero-shot` reports: the object task at the top level, categories beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZeroShotReport {
    /// The object classes.
    #[serde(flatten)]
    pub objects: TaskReport,
    /// The broader categories of the items that have one.
    pub categories: Option<TaskReport>,
    /// Per-image predictions, in item order.
    pub predictions: Vec<Prediction>,
}

/// Unit-norm prompt embeddings, `[template][class][dim]`.
type PromptEmbeddings = Vec<Vec<Vec<f32>>>;

/// A task's figures, its classes in order, and their prompt embeddings.
type TaskOutcome = (TaskReport, Vec<String>, PromptEmbeddings);

/// Unit-norm prompt embeddings of every class in every template.
fn prompt_embeddings<B: Backend>(
    clip: &LoadedClip<B>,
    classes: &[String],
    templates: &[String],
) -> Result<PromptEmbeddings, PipelineError> {
    templates
        .iter()
        .map(|t| {
            let prompts: Vec<String> = classes.iter().map(|c| fill_template(t, c)).collect();
            clip.embed_texts(&prompts, 256, true)
        })
        .collect()
}

/// Class embeddings from the templates in `which`: mean of the unit-norm prompt embeddings,
/// renormalized. `[class][dim]`.
pub fn class_embeddings(prompts: &[Vec<Vec<f32>>], which: &[usize]) -> Vec<Vec<f32>> {
    let classes = prompts.first().map_or(0, Vec::len);
    (0..classes)
        .map(|c| {
            let dim = prompts[which[0]][c].len();
            let mut mean = vec![0.0f32; dim];
            for &t in which {
                for (m, x) in mean.iter_mut().zip(&prompts[t][c]) {
                    *m += x / which.len() as f32;
                }
            }
            let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            mean.iter().map(|x| x / norm).collect()
        })
        .collect()
}

/// Cosine scores `[image][class]`, flattened row-major.
fn score_matrix(images: &[Vec<f32>], classes: &[Vec<f32>]) -> Vec<f32> {
    images
        .iter()
        .flat_map(|i| {
            classes
                .iter()
                .map(move |c| i.iter().zip(c).map(|(a, b)| a * b).sum::<f32>())
        })
        .collect()
}

/// Top-k accuracy of the classes built from templates `which`.
fn accuracy(
    prompts: &[Vec<Vec<f32>>],
    which: &[usize],
    images: &[Vec<f32>],
    truth: &[usize],
    k: usize,
) -> f64 {
    let classes = class_embeddings(prompts, which);
    let scores = score_matrix(images, &classes);
    top_k_accuracy(Scores::new(&scores, images.len(), classes.len()), truth, k)
}

/// Scores one task: `labels[i]` is image `i`'s class.
fn task<B: Backend>(
    clip: &LoadedClip<B>,
    images: &[Vec<f32>],
    labels: &[&str],
    templates: &[String],
) -> Result<TaskOutcome, PipelineError> {
    let classes: Vec<String> = labels
        .iter()
        .map(|l| l.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let truth: Vec<usize> = labels
        .iter()
        .map(|l| {
            classes
                .binary_search_by(|c| c.as_str().cmp(l))
                .expect("a class")
        })
        .collect();
    let prompts = prompt_embeddings(clip, &classes, templates)?;
    let all: Vec<usize> = (0..templates.len()).collect();
    let mut counts = BTreeMap::<&str, usize>::new();
    for l in labels {
        *counts.entry(l).or_default() += 1;
    }
    let (majority, majority_n) = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(c, n)| (c.to_string(), *n))
        .unwrap_or_default();
    let n = labels.len().max(1) as f64;
    let c = classes.len().max(1) as f64;
    let ablation = (0..templates.len())
        .map(|t| {
            let others: Vec<usize> = all.iter().copied().filter(|&o| o != t).collect();
            let without = if others.is_empty() { &all } else { &others };
            TemplateFigures {
                template: templates[t].clone(),
                top1_alone: accuracy(&prompts, &[t], images, &truth, 1),
                top1_without: accuracy(&prompts, without, images, &truth, 1),
            }
        })
        .collect();
    let report = TaskReport {
        n_classes: classes.len(),
        n_test: labels.len(),
        top1_single: accuracy(&prompts, &[0], images, &truth, 1),
        top1_ensemble: accuracy(&prompts, &all, images, &truth, 1),
        top5_single: accuracy(&prompts, &[0], images, &truth, 5),
        top5_ensemble: accuracy(&prompts, &all, images, &truth, 5),
        chance_top1: 1.0 / c,
        chance_top5: (5.0f64).min(c) / c,
        majority_class: majority,
        majority_top1: majority_n as f64 / n,
        templates: ablation,
    };
    Ok((report, classes, prompts))
}

/// The three best classes of each image under the ensemble, softmax of 100 x cosine.
fn top3(
    images: &[Vec<f32>],
    classes: &[String],
    prompts: &[Vec<Vec<f32>>],
) -> Vec<Vec<(String, f32)>> {
    let all: Vec<usize> = (0..prompts.len()).collect();
    let embeddings = class_embeddings(prompts, &all);
    let scores = score_matrix(images, &embeddings);
    scores
        .chunks(classes.len().max(1))
        .map(|row| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f32> = row.iter().map(|s| (100.0 * (s - max)).exp()).collect();
            let total: f32 = exp.iter().sum();
            let mut ranked: Vec<(String, f32)> = classes
                .iter()
                .cloned()
                .zip(exp.iter().map(|e| e / total))
                .collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            ranked.truncate(3);
            ranked
        })
        .collect()
}

/// Evaluates `clip` on `items` with `templates` (the first is the single prompt; each holds
/// `{}` for the class name).
pub fn evaluate_transfer<B: Backend>(
    clip: &LoadedClip<B>,
    items: &[TransferItem],
    templates: &[String],
    batch: usize,
) -> Result<ZeroShotReport, PipelineError> {
    if items.is_empty() {
        return Err(PipelineError::Invalid(
            "no test items: no caption named a class of the training vocabulary".into(),
        ));
    }
    if templates.is_empty() || templates.iter().any(|t| !t.contains("{}")) {
        return Err(PipelineError::Invalid(
            "every template must contain `{}` for the label".into(),
        ));
    }
    let paths: Vec<PathBuf> = items.iter().map(|i| i.image.clone()).collect();
    let images = clip.embed_image_files(&paths, batch, true, |_| {})?;
    let labels: Vec<&str> = items.iter().map(|i| i.label.as_str()).collect();
    let (objects, classes, prompts) = task(clip, &images, &labels, templates)?;
    let predictions = items
        .iter()
        .zip(top3(&images, &classes, &prompts))
        .map(|(item, top3)| Prediction {
            image: item.image.clone(),
            caption: item.caption.clone(),
            label: item.label.clone(),
            top3,
        })
        .collect();
    let with_category: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].category.is_some())
        .collect();
    let categories = if with_category.is_empty() {
        None
    } else {
        let images: Vec<Vec<f32>> = with_category.iter().map(|&i| images[i].clone()).collect();
        let labels: Vec<&str> = with_category
            .iter()
            .filter_map(|&i| items[i].category.as_deref())
            .collect();
        Some(task(clip, &images, &labels, templates)?.0)
    };
    Ok(ZeroShotReport {
        objects,
        categories,
        predictions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_embeddings_average_then_renormalize() {
        let h = std::f32::consts::FRAC_1_SQRT_2;
        // Two templates, two classes, dim 2.
        let prompts = vec![
            vec![vec![1.0, 0.0], vec![0.0, 1.0]],
            vec![vec![0.0, 1.0], vec![0.0, 1.0]],
        ];
        let both = class_embeddings(&prompts, &[0, 1]);
        assert!((both[0][0] - h).abs() < 1e-6 && (both[0][1] - h).abs() < 1e-6);
        assert_eq!(both[1], vec![0.0, 1.0]);
        assert_eq!(class_embeddings(&prompts, &[1])[0], vec![0.0, 1.0]);
    }

    #[test]
    fn accuracy_uses_only_the_chosen_templates() {
        // Image 0 is class 0 at (1, 0); image 1 is class 1 at (0, 1). Template 0 swaps the
        // classes' directions (all wrong); template 1 places them on the images (all right);
        // their ensemble leans to template 1's directions and is right.
        let prompts = vec![
            vec![vec![0.6, 0.8], vec![0.8, 0.6]],
            vec![vec![1.0, 0.0], vec![0.0, 1.0]],
        ];
        let images = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let truth = [0, 1];
        assert_eq!(accuracy(&prompts, &[0], &images, &truth, 1), 0.0);
        assert_eq!(accuracy(&prompts, &[1], &images, &truth, 1), 1.0);
        assert_eq!(accuracy(&prompts, &[0, 1], &images, &truth, 1), 1.0);
        assert_eq!(accuracy(&prompts, &[0], &images, &truth, 2), 1.0);
    }
}
