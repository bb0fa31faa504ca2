//! Offsets and in-sync scores from a trained [`SyncNet`], and the held-out evaluation: offset
//! top-1 within one frame, the AUC of in-sync against shifted sound, and the same with every
//! clip's sound swapped for another clip's (the control that must fall to chance).

use std::path::Path;

use burn::tensor::backend::Backend;
use mm_audio::features::MelExtractor;
use mm_core::metrics::roc_auc;
use mm_core::train::{TrainError, load_weights, read_model_config};
use mm_data::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use super::clips::{AvClip, mel_extractor};
use super::sync_baseline::motion_onset_offset;
use super::sync_model::SyncNet;
use super::sync_train::{SyncTrainConfig, windows};
use crate::error::{Result, VideoError};

/// Where a clip's sound sits against its frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OffsetEstimate {
    /// The best shift in frames: positive when the sound comes late.
    pub offset: i64,
    /// Mean similarity of the frame and sound windows at each shift `-max..=max`.
    pub scores: Vec<f64>,
    /// The best score minus the median one (SyncNet's confidence).
    pub confidence: f64,
    /// The score at shift 0 (in sync as given).
    pub in_sync_score: f64,
}

/// Embeddings, one row per window.
type Rows = Vec<Vec<f32>>;

/// Unit embeddings of every frame window and every sound window of a clip, `[n][embed]` each.
fn embeddings<B: Backend>(
    model: &SyncNet<B>,
    config: &SyncTrainConfig,
    clip: &AvClip,
    audio: &[f32],
    extractor: &MelExtractor,
    device: &B::Device,
) -> Result<(Rows, Rows)> {
    let mel = AvClip::log_mel(audio, extractor)?;
    let n = clip.windows(config.model.window);
    let picks: Vec<(usize, usize)> = (0..n).map(|t| (0, t)).collect();
    let clips = std::slice::from_ref(clip);
    let (frames, mels) = windows::<B>(clips, &[&mel], &picks, &config.model, device);
    let rows = |t: burn::tensor::Tensor<B, 2>| -> Vec<Vec<f32>> {
        let [_, e] = t.dims();
        let flat = t
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .unwrap_or_default();
        flat.chunks(e).map(|r| r.to_vec()).collect()
    };
    Ok((
        rows(model.visual.forward(frames)),
        rows(model.audio.forward(mels)),
    ))
}

/// Scores `audio` against the frames of `clip` at every shift within `config.max_offset`.
pub fn estimate_offset<B: Backend>(
    model: &SyncNet<B>,
    config: &SyncTrainConfig,
    clip: &AvClip,
    audio: &[f32],
    device: &B::Device,
) -> Result<OffsetEstimate> {
    if (clip.fps - config.fps).abs() > 1e-6 {
        return Err(VideoError::Request(format!(
            "the clip runs at {} fps but the model was trained at {} fps",
            clip.fps, config.fps
        )));
    }
    let max = config.max_offset;
    let (v, a) = embeddings(model, config, clip, audio, &mel_extractor(), device)?;
    let n = v.len();
    if n < 2 * max + 1 {
        return Err(VideoError::Request(format!(
            "the clip has {} frames; an offset search over +-{max} frames needs {}",
            clip.frames.len(),
            2 * max + config.model.window
        )));
    }
    // The same frame windows at every shift: those whose sound window exists at all of them.
    let scores: Vec<f64> = (0..=2 * max)
        .map(|k| {
            let times = max..n - max;
            let len = times.len() as f64;
            times.map(|t| dot(&v[t], &a[t + k - max])).sum::<f64>() / len
        })
        .collect();
    Ok(OffsetEstimate::from_scores(scores))
}

impl OffsetEstimate {
    /// The estimate from the scores of the shifts `-max..=max` (`2 max + 1` of them, in order):
    /// the best shift, its margin over the median score and the score at shift 0 (all 0 for
    /// no scores).
    pub fn from_scores(scores: Vec<f64>) -> Self {
        if scores.is_empty() {
            return Self {
                offset: 0,
                scores,
                confidence: 0.0,
                in_sync_score: 0.0,
            };
        }
        let max = scores.len() / 2;
        let best = (0..scores.len())
            .max_by(|&i, &j| scores[i].total_cmp(&scores[j]))
            .unwrap_or(max);
        let mut sorted = scores.clone();
        sorted.sort_by(f64::total_cmp);
        Self {
            offset: best as i64 - max as i64,
            confidence: scores[best] - sorted[sorted.len() / 2],
            in_sync_score: scores[max],
            scores,
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum()
}

/// Held-out figures of a sync model (fractions).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncReport {
    /// Test clips.
    pub n_test: usize,
    /// Largest offset searched (frames).
    pub max_offset: usize,
    /// Offset estimates within one frame of the true shift.
    pub offset_top1: f64,
    /// Chance of that (3 of the `2 max + 1` shifts).
    pub chance_offset_top1: f64,
    /// Mean absolute error of the offset, in frames.
    pub offset_mae: f64,
    /// AUC of the in-sync score: each clip in sync against the same clip shifted by 3 or more.
    pub auc: f64,
    /// Offset top-1 with every clip's sound taken from another clip.
    pub shuffled_offset_top1: f64,
    /// AUC with every clip's sound taken from another clip.
    pub shuffled_auc: f64,
    /// The same figures from the baseline that learns nothing (motion against sound onsets,
    /// [`super::sync_baseline`]) on the same clips and shifts: what timing the clips offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub motion_onset: Option<Box<SyncReport>>,
}

/// Evaluates on `test`: each clip's sound shifted by a seeded random offset in `-max..=max`;
/// the motion-onset baseline ([`super::sync_baseline`]) is scored on the same clips and shifts
/// beside it (`motion_onset`).
pub fn evaluate_sync<B: Backend>(
    model: &SyncNet<B>,
    config: &SyncTrainConfig,
    test: &[AvClip],
    device: &B::Device,
) -> Result<SyncReport> {
    let max = config.max_offset;
    let mut report = evaluate_offsets(test, max, config.seed, |clip, audio| {
        estimate_offset(model, config, clip, audio, device)
    })?;
    let baseline = evaluate_offsets(test, max, config.seed, |clip, audio| {
        motion_onset_offset(clip, audio, max)
    })?;
    report.motion_onset = Some(Box::new(baseline));
    Ok(report)
}

/// The held-out figures of any offset estimator `estimate(clip, sound)` on `test`, each clip's
/// sound shifted by an offset in `-max_offset..=max_offset` drawn from `seed`.
pub fn evaluate_offsets(
    test: &[AvClip],
    max_offset: usize,
    seed: u64,
    estimate: impl Fn(&AvClip, &[f32]) -> Result<OffsetEstimate>,
) -> Result<SyncReport> {
    let n = test.len();
    if n < 2 {
        return Err(VideoError::Request(
            "evaluating sync needs at least 2 test clips (one lends its sound to the control)"
                .into(),
        ));
    }
    let max = max_offset as i64;
    let mut rng = SplitMix64::new(seed ^ 0x5EED);
    let mut figures = [Vec::new(), Vec::new()]; // own sound, another clip's sound
    for (i, clip) in test.iter().enumerate() {
        let shift = (rng.next_u64() % (2 * max as u64 + 1)) as i64 - max;
        let far = 3 + (rng.next_u64() % (max as u64 - 2)) as i64;
        let far = if rng.uniform() < 0.5 { far } else { -far };
        let donor = (i + 1 + (rng.next_u64() % (n as u64 - 1)) as usize) % n;
        for (f, source) in figures.iter_mut().zip([clip, &test[donor]]) {
            let mut sound = AvClip {
                frames: Vec::new(),
                fps: clip.fps,
                audio: source.audio.clone(),
                context: source.context.clone(),
            };
            sound.audio.resize(clip.audio.len(), 0.0);
            let shifted = estimate(clip, &sound.shifted_audio(shift))?;
            let in_sync = estimate(clip, &sound.audio)?;
            let out_of_sync = estimate(clip, &sound.shifted_audio(far))?;
            f.push((
                shifted.offset - shift,
                in_sync.in_sync_score,
                out_of_sync.in_sync_score,
            ));
        }
    }
    let top1 =
        |f: &[(i64, f64, f64)]| f.iter().filter(|r| r.0.abs() <= 1).count() as f64 / n as f64;
    let auc = |f: &[(i64, f64, f64)]| {
        let pos: Vec<f64> = f.iter().map(|r| r.1).collect();
        let neg: Vec<f64> = f.iter().map(|r| r.2).collect();
        roc_auc(&pos, &neg)
    };
    Ok(SyncReport {
        n_test: n,
        max_offset,
        offset_top1: top1(&figures[0]),
        chance_offset_top1: 3.0 / (2 * max + 1) as f64,
        offset_mae: figures[0].iter().map(|r| r.0.abs() as f64).sum::<f64>() / n as f64,
        auc: auc(&figures[0]),
        shuffled_offset_top1: top1(&figures[1]),
        shuffled_auc: auc(&figures[1]),
        motion_onset: None,
    })
}

/// Loads a sync run's `final/` folder.
pub fn load_sync<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> std::result::Result<(SyncNet<B>, SyncTrainConfig), TrainError> {
    let config: SyncTrainConfig = serde_json::from_value(read_model_config(dir)?).map_err(|e| {
        TrainError::Settings(format!(
            "{}: not an audio-visual sync folder: {e}",
            dir.join("config.json").display()
        ))
    })?;
    let model = config
        .model
        .init(device)
        .map_err(|e| TrainError::Settings(e.0))?;
    Ok((load_weights(dir, model, device)?, config))
}
