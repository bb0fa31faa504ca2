//! Batched feature extraction for a data loader: many clips at once on every core, then one
//! `[batch, rows, frames]` tensor on any device.

use crate::error::FeatureError;
use burn::tensor::{Tensor, TensorData, backend::Backend};

use crate::features::{Features, MelExtractor};

/// What to compute per clip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FeatureKind {
    /// Mel power spectrogram.
    Mel,
    /// Log-mel in dB with an optional `top_db`.
    LogMel(Option<f64>),
    /// The first `n` MFCCs.
    Mfcc(usize),
}

impl MelExtractor {
    /// Features of every clip, computed in parallel across the machine's cores, in order.
    pub fn batch(
        &self,
        clips: &[&[f32]],
        kind: FeatureKind,
    ) -> Result<Vec<Features>, FeatureError> {
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(clips.len().max(1));
        let per = clips.len().div_ceil(workers.max(1)).max(1);
        let one = |clip: &[f32]| match kind {
            FeatureKind::Mel => self.mel(clip),
            FeatureKind::LogMel(top_db) => self.log_mel(clip, top_db),
            FeatureKind::Mfcc(n) => self.mfcc(clip, n),
        };
        let results: Vec<Result<Vec<Features>, FeatureError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = clips
                .chunks(per)
                .map(|chunk| {
                    scope.spawn(move || chunk.iter().map(|c| one(c)).collect::<Result<Vec<_>, _>>())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(FeatureError::Signal("a feature worker panicked".into()))
                    })
                })
                .collect()
        });
        let mut out = Vec::with_capacity(clips.len());
        for part in results {
            out.extend(part?);
        }
        Ok(out)
    }
}

/// Stacks feature matrices into one tensor, padding shorter ones at the end with `pad`.
///
/// # Shapes
/// - output: `[batch, rows, max frames]`
pub fn to_tensor<B: Backend>(
    features: &[Features],
    pad: f32,
    device: &B::Device,
) -> Result<Tensor<B, 3>, FeatureError> {
    let rows = features
        .first()
        .ok_or_else(|| FeatureError::Shape("no features to stack".into()))?
        .rows;
    if let Some(f) = features.iter().find(|f| f.rows != rows) {
        return Err(FeatureError::Shape(format!(
            "feature rows differ: {} and {}",
            rows, f.rows
        )));
    }
    let frames = features.iter().map(|f| f.frames).max().unwrap_or(0);
    let mut data = vec![pad; features.len() * rows * frames];
    for (b, f) in features.iter().enumerate() {
        for r in 0..rows {
            let dst = &mut data[(b * rows + r) * frames..(b * rows + r) * frames + f.frames];
            dst.iter_mut()
                .zip(&f.data[r * f.frames..(r + 1) * f.frames])
                .for_each(|(d, &s)| *d = s as f32);
        }
    }
    Ok(Tensor::from_data(
        TensorData::new(data, [features.len(), rows, frames]).convert::<B::FloatElem>(),
        device,
    ))
}
