//! Held-out figures of a trained video classifier: accuracy, per-class accuracy and the
//! confusion matrix on the fixed test clips.

use burn::tensor::backend::Backend;
use mm_core::train::TrainError;
use serde::Serialize;

use crate::models::VideoClassifier;
use crate::tasks::{Strip, test_clips};
use crate::train::{VideoFolder, VideoNet, stack};

/// Held-out figures of a video classifier.
#[derive(Debug, Clone, Serialize)]
pub struct VideoReport {
    /// Class names.
    pub classes: Vec<String>,
    /// Test clips.
    pub n_test: usize,
    /// Accuracy, a fraction.
    pub accuracy: f64,
    /// Chance (one over the classes; the test clips are balanced).
    pub chance: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Accuracy per class.
    pub per_class: Vec<f64>,
}

/// Accuracy and confusion of `model` on the fixed test clips of `test`.
pub fn evaluate_video<B: Backend>(
    model: &VideoNet<B>,
    folder: &VideoFolder,
    test: &[Strip],
    device: &B::Device,
) -> Result<VideoReport, TrainError> {
    let c = &folder.config;
    let clips = test_clips(c.task, test, c.frames, c.min_motion);
    if clips.is_empty() {
        return Err(TrainError::Settings(format!(
            "no test clip is long enough{}",
            if c.min_motion > 0.0 {
                format!(" and moves at least {} (min_motion)", c.min_motion)
            } else {
                String::new()
            }
        )));
    }
    let k = folder.classes.len();
    let mut confusion = vec![vec![0usize; k]; k];
    for chunk in clips.chunks(c.batch.max(1)) {
        let (x, _) = stack::<B>(test, chunk, None, c.size, device);
        let predicted = model
            .logits(x)
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap_or_default();
        for (p, (_, _, truth)) in predicted.iter().zip(chunk) {
            confusion[*truth][*p as usize] += 1;
        }
    }
    let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
    let per_class = confusion
        .iter()
        .enumerate()
        .map(|(i, row)| row[i] as f64 / row.iter().sum::<usize>().max(1) as f64)
        .collect();
    Ok(VideoReport {
        classes: folder.classes.clone(),
        n_test: clips.len(),
        accuracy: correct as f64 / clips.len() as f64,
        chance: 1.0 / k as f64,
        confusion,
        per_class,
    })
}
