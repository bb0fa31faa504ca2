//! Is one decoding really better than another on the same images? [`paired_difference`]
//! compares two lists of per-image scores (CIDEr-D's [`super::Cider::items`], say) image by
//! image: the mean difference (which, for a corpus score that is the mean of its items, is
//! exactly the difference of the two corpus scores), how many images each side wins, and a
//! percentile bootstrap interval of the mean difference (Efron and Tibshirani, 1993: the
//! images are resampled with replacement, the same resample for both sides, so what the two
//! decodings share cancels). An interval that holds 0 says the test images cannot tell the
//! two apart; it says nothing of the noise of training (seeds), which has to be measured
//! across runs.

use mm_data::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use super::MetricError;

/// Resamples of the images that `eval caption` draws for each interval.
pub const RESAMPLES: usize = 10_000;

/// Confidence of the interval.
pub const CONFIDENCE: f64 = 0.95;

/// One decoding against another, image by image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    /// Mean of `candidate - baseline` over the images.
    pub mean: f64,
    /// Lower end of the 95% percentile bootstrap interval of `mean`.
    pub low: f64,
    /// Upper end of that interval.
    pub high: f64,
    /// Images the candidate scores higher on.
    pub wins: usize,
    /// Images the baseline scores higher on.
    pub losses: usize,
    /// Images both score alike on.
    pub ties: usize,
}

/// `candidate` against `baseline`, two scores per image in the same order: the mean
/// difference, wins, losses and ties, and a [`CONFIDENCE`] percentile bootstrap interval from
/// `resamples` resamples of the images drawn with `seed` (the same seed gives the same
/// interval).
pub fn paired_difference(
    candidate: &[f64],
    baseline: &[f64],
    resamples: usize,
    seed: u64,
) -> Result<PairedDifference, MetricError> {
    if candidate.len() != baseline.len() {
        return Err(MetricError::Mismatch {
            candidates: candidate.len(),
            references: baseline.len(),
        });
    }
    if candidate.is_empty() {
        return Err(MetricError::Empty);
    }
    if resamples == 0 {
        return Err(MetricError::NoResamples);
    }
    let diffs: Vec<f64> = candidate.iter().zip(baseline).map(|(c, b)| c - b).collect();
    let n = diffs.len();
    let mut rng = SplitMix64::new(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            let sum: f64 = (0..n)
                .map(|_| diffs[((rng.uniform() * n as f64).ceil() as usize).clamp(1, n) - 1])
                .sum();
            sum / n as f64
        })
        .collect();
    means.sort_unstable_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    let at = |q: f64| means[((q * resamples as f64).ceil() as usize).clamp(1, resamples) - 1];
    Ok(PairedDifference {
        mean: diffs.iter().sum::<f64>() / n as f64,
        low: at(tail),
        high: at(1.0 - tail),
        wins: diffs.iter().filter(|&&d| d > 0.0).count(),
        losses: diffs.iter().filter(|&&d| d < 0.0).count(),
        ties: diffs.iter().filter(|&&d| d == 0.0).count(),
    })
}
