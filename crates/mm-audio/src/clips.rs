//! Labelled clips for the sound classifier: decoded, downmixed, resampled to the run's rate
//! and turned into log-mel matrices scaled to `[0, 1]`, and fixed-length crops of them.

use std::path::{Path, PathBuf};

use mm_data::manifest::AudioLabel;

use crate::batch::FeatureKind;
use crate::classifier::{AudioClassifierConfig, ClassifierError};
use crate::features::{Features, MelConfig, MelExtractor};
use crate::{AudioError, load_audio, resample::resample};

/// Clips as normalized log-mel matrices with their class indices.
#[derive(Debug, Clone)]
pub struct ClipSet {
    /// One `[n_mels][frames]` matrix per clip, in `[0, 1]` (0 is 80 dB below the clip's peak).
    pub features: Vec<Features>,
    /// Class index per clip.
    pub labels: Vec<usize>,
}

/// Loads, downmixes, resamples and featurizes `records` (classes indexed by `classes`).
pub fn load_clips(
    records: &[(PathBuf, AudioLabel)],
    classes: &[String],
    cfg: &AudioClassifierConfig,
) -> Result<ClipSet, ClassifierError> {
    let mut signals = Vec::with_capacity(records.len());
    let mut labels = Vec::with_capacity(records.len());
    for (path, record) in records {
        signals.push(load_signal(path, cfg.sample_rate)?);
        let label = classes
            .iter()
            .position(|c| *c == record.label)
            .ok_or_else(|| {
                ClassifierError::Invalid(format!(
                    "{}: unknown label {}",
                    path.display(),
                    record.label
                ))
            })?;
        labels.push(label);
    }
    let extractor = MelExtractor::new(MelConfig::new(cfg.sample_rate, 400, 160, cfg.n_mels))?;
    let refs: Vec<&[f32]> = signals.iter().map(|s| s.as_slice()).collect();
    let mut features = extractor.batch(&refs, FeatureKind::LogMel(Some(80.0)))?;
    features.iter_mut().for_each(normalize_log_mel);
    Ok(ClipSet { features, labels })
}

/// Maps a log-mel (dB, `top_db = 80`) to `[0, 1]`: 1 at the clip's peak, 0 at 80 dB below it,
/// so loudness does not matter.
pub fn normalize_log_mel(f: &mut Features) {
    let peak = f.data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    f.data
        .iter_mut()
        .for_each(|v| *v = (*v - peak) / 80.0 + 1.0);
}

/// A file as a mono signal at `rate`.
pub fn load_signal(path: &Path, rate: u32) -> Result<Vec<f32>, AudioError> {
    let audio = load_audio(path)?;
    resample(&audio.to_mono(), audio.sample_rate, rate)
}

/// `crop_frames` columns of `f` starting at `start`, zero-padded past its end, row-major.
pub fn crop(f: &Features, start: usize, frames: usize) -> Vec<f32> {
    let mut out = vec![0.0; f.rows * frames];
    for r in 0..f.rows {
        for t in 0..frames.min(f.frames.saturating_sub(start)) {
            out[r * frames + t] = f.data[r * f.frames + start + t] as f32;
        }
    }
    out
}
