//! Two decodings compared image by image (`metrics::paired_difference`): the mean difference,
//! wins and losses, and a bootstrap interval that agrees with the normal-theory interval
//! where that one holds.

use mm_data::rng::SplitMix64;
use mm_generate::metrics::paired::RESAMPLES;
use mm_generate::metrics::{MetricError, paired_difference};

#[test]
fn counts_and_mean_are_those_of_the_differences() {
    let candidate = [1.0, 0.5, 2.0, 0.0, 3.0];
    let baseline = [0.5, 0.5, 1.0, 1.0, 0.0];
    let d = paired_difference(&candidate, &baseline, 2_000, 7).unwrap();
    // Differences 0.5, 0, 1, -1, 3.
    assert!((d.mean - 0.7).abs() < 1e-12, "{d:?}");
    assert_eq!((d.wins, d.losses, d.ties), (3, 1, 1));
    assert!(d.low <= d.mean && d.mean <= d.high, "{d:?}");
    // A resample's mean lies between the smallest and the largest difference.
    assert!(d.low >= -1.0 && d.high <= 3.0 && d.low < d.high, "{d:?}");
    assert_eq!(
        paired_difference(&candidate, &baseline, 2_000, 7).unwrap(),
        d
    );
    let other = paired_difference(&candidate, &baseline, 2_000, 8).unwrap();
    assert_eq!(other.mean, d.mean);
    assert_ne!((other.low, other.high), (d.low, d.high));

    let same = paired_difference(&baseline, &baseline, 100, 1).unwrap();
    assert_eq!((same.mean, same.low, same.high), (0.0, 0.0, 0.0));
    assert_eq!((same.wins, same.losses, same.ties), (0, 0, 5));
}

#[test]
fn the_interval_matches_the_normal_one_for_many_images() {
    // 3,000 images (about the caption test set), differences drawn from N(0.01, 0.2^2): the
    // mean of so many is close to normal, so the bootstrap's 95% interval should be about
    // mean +- 1.96 s / sqrt(n) with s the sample's own deviation.
    let mut rng = SplitMix64::new(11);
    let n = 3_000;
    let diffs: Vec<f64> = (0..n).map(|_| 0.01 + 0.2 * rng.normal()).collect();
    let zeros = vec![0.0; n];
    let d = paired_difference(&diffs, &zeros, RESAMPLES, 3).unwrap();
    let mean = diffs.iter().sum::<f64>() / n as f64;
    let var = diffs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = 1.96 * (var / n as f64).sqrt();
    assert!((d.mean - mean).abs() < 1e-12);
    // Within 5% of the half-width at either end (the percentiles of 10,000 resamples scatter
    // by about 2% of it).
    assert!(
        (d.low - (mean - half)).abs() < 0.05 * half,
        "{d:?} vs {half}"
    );
    assert!(
        (d.high - (mean + half)).abs() < 0.05 * half,
        "{d:?} vs {half}"
    );
    assert_eq!(d.wins + d.losses + d.ties, n);
}

#[test]
fn mismatched_or_empty_lists_are_refused() {
    assert!(matches!(
        paired_difference(&[1.0, 2.0], &[1.0], 10, 0),
        Err(MetricError::Mismatch {
            candidates: 2,
            references: 1
        })
    ));
    assert!(matches!(
        paired_difference(&[], &[], 10, 0),
        Err(MetricError::Empty)
    ));
    assert!(matches!(
        paired_difference(&[1.0], &[1.0], 0, 0),
        Err(MetricError::NoResamples)
    ));
}
