//! Does a text-to-image model draw what it is asked, where no judge knows the classes? The
//! CLIP score (100 x the cosine of a CLIP's image and text embeddings, floored at 0, as
//! torchmetrics' `CLIPScore` computes it) of generated images against their prompts, beside
//! the same score of the real images of those prompts (the ceiling at this resolution) and of
//! mismatched pairs (what an unrelated picture scores).

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use mm_vision::RgbImage;
use mm_vl::hf::LoadedClip;
use serde::{Deserialize, Serialize};

use super::eval::{SamplingSettings, ShapeEvalOptions, sample_rows, to_rgb_images};
use super::{PipelineError, TextToImage};
use crate::caption::CaptionSet;

/// The CLIP-score evaluation's figures (scores are means over images).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipScoreReport {
    /// Generated images against their own prompt, by guidance scale (Rust's `{}` of the scale).
    pub clip_score_by_guidance: BTreeMap<String, f64>,
    /// Generated images against another prompt of the set, by guidance scale.
    pub mismatched_by_guidance: BTreeMap<String, f64>,
    /// The real images of the prompts (at the model's resolution) against their prompt.
    pub real: f64,
    /// The real images against another prompt.
    pub real_mismatched: f64,
    /// The prompts (each the first caption of one real image).
    pub prompts: Vec<String>,
    /// How the images were sampled.
    #[serde(flatten)]
    pub sampling: SamplingSettings,
}

/// 100 x max(cos, 0) of each (image, text) pair, with `clip`'s own preprocessing.
pub fn clip_scores<B: Backend>(
    clip: &LoadedClip<B>,
    images: &[RgbImage],
    texts: &[String],
) -> Result<Vec<f64>, PipelineError> {
    if images.len() != texts.len() {
        return Err(PipelineError::Invalid(format!(
            "{} images but {} texts to score",
            images.len(),
            texts.len()
        )));
    }
    let refs: Vec<&RgbImage> = images.iter().collect();
    let image_features = clip.embed_images(&refs, 64, true);
    let text_features = clip
        .embed_texts(texts, 64, true)
        .map_err(|e| PipelineError::Invalid(e.to_string()))?;
    Ok(image_features
        .iter()
        .zip(&text_features)
        .map(|(a, b)| {
            let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            100.0 * f64::from(cos.max(0.0))
        })
        .collect())
}

/// `count` images of `set` spread evenly over it, each with its first caption as the prompt
/// (one image per distinct prompt).
pub fn pick_prompts(set: &CaptionSet, count: usize) -> Vec<(RgbImage, String)> {
    let mut seen = std::collections::HashSet::new();
    let distinct: Vec<usize> = (0..set.len())
        .filter(|&i| seen.insert(set.captions[i][0].clone()))
        .collect();
    let count = count.clamp(1, distinct.len().max(1));
    (0..count)
        .filter_map(|k| distinct.get(k * distinct.len() / count))
        .map(|&i| (set.images[i].clone(), set.captions[i][0].clone()))
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Each prompt paired with the one half the list away (never itself when there are two or
/// more).
fn shifted<T: Clone>(items: &[T]) -> Vec<T> {
    let n = items.len();
    (0..n).map(|i| items[(i + n / 2) % n].clone()).collect()
}

/// Scores `pipeline` with `clip` on `real` (image, prompt) pairs: `options.samples` images per
/// prompt at every guidance scale (the same starting noise at each); `on_images(w, images)`
/// receives each scale's images (`[prompts * samples, 3, h, w]` in [0, 1], prompt-major).
pub fn evaluate_clip_score<B: Backend>(
    pipeline: &TextToImage<B>,
    clip: &LoadedClip<B>,
    real: &[(RgbImage, String)],
    options: &ShapeEvalOptions,
    device: &B::Device,
    on_images: &mut dyn FnMut(f32, &burn::tensor::Tensor<B, 4>),
) -> Result<ClipScoreReport, PipelineError> {
    if real.len() < 2 {
        return Err(PipelineError::Invalid(
            "the CLIP-score evaluation needs at least two prompts (mismatched pairs)".into(),
        ));
    }
    let (images, prompts): (Vec<RgbImage>, Vec<String>) = real.iter().cloned().unzip();
    let samples = options.samples.max(1);
    let mut report = ClipScoreReport {
        clip_score_by_guidance: BTreeMap::new(),
        mismatched_by_guidance: BTreeMap::new(),
        real: mean(&clip_scores(clip, &images, &prompts)?),
        real_mismatched: mean(&clip_scores(clip, &images, &shifted(&prompts))?),
        prompts: prompts.clone(),
        sampling: SamplingSettings::of(options, samples),
    };
    let per_row: Vec<String> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.clone(), samples))
        .collect();
    // Row r's mismatched prompt is the one half the prompt list away.
    let other: Vec<String> = shifted(&prompts)
        .into_iter()
        .flat_map(|p| std::iter::repeat_n(p, samples))
        .collect();
    for &w in &options.guidances {
        let generated = sample_rows(pipeline, &prompts, samples, options, w, device)?;
        on_images(w, &generated);
        let pictures: Vec<RgbImage> = to_rgb_images(&generated)
            .into_iter()
            .map(|p| RgbImage {
                width: p.width(),
                height: p.height(),
                pixels: p.into_raw(),
            })
            .collect();
        let key = format!("{w}");
        let own = mean(&clip_scores(clip, &pictures, &per_row)?);
        let wrong = mean(&clip_scores(clip, &pictures, &other)?);
        report.clip_score_by_guidance.insert(key.clone(), own);
        report.mismatched_by_guidance.insert(key, wrong);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatched_pairs_never_pair_a_prompt_with_itself() {
        for n in 2..7 {
            let items: Vec<usize> = (0..n).collect();
            let other = shifted(&items);
            assert!(
                items.iter().zip(&other).all(|(a, b)| a != b),
                "{n}: {other:?}"
            );
        }
    }
}
