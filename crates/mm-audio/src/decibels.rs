//! Power to decibels (`librosa.power_to_db`) in two parallel passes, with a `log10` whose
//! loop vectorizes.
//!
//! libm's `log10` is one scalar call per value; a 60 s Whisper log-mel has 480,000 of them,
//! which took about a third of the whole log-mel (docs/performance.md, "Eleventh session").

use mm_core::nn::fused::wide::widest;
use rayon::prelude::*;

/// Values per rayon task.
const TASK: usize = 8192;
/// librosa's `amin`: smaller powers count as this one.
const AMIN: f64 = 1e-10;

/// `10 log10(max(amin, S))` with `amin = 1e-10` and `ref = 1`, then clipped to
/// `max - top_db` when given (`librosa.power_to_db`).
pub fn power_to_db(values: &mut [f64], top_db: Option<f64>) {
    let max = values
        .par_chunks_mut(TASK)
        .map(|chunk| {
            widest(
                #[inline(always)]
                || {
                    // `max(amin, v)` as a select (NaN becomes amin, as `f64::max` does),
                    // so that the loop vectorizes.
                    for v in chunk.iter_mut() {
                        *v = 10.0 * log10(if *v > AMIN { *v } else { AMIN });
                    }
                    largest(chunk)
                },
            )
        })
        .reduce(|| f64::NEG_INFINITY, f64::max);
    if let Some(top) = top_db {
        let floor = max - top;
        values.par_chunks_mut(TASK).for_each(|chunk| {
            widest(
                #[inline(always)]
                || {
                    for v in chunk.iter_mut() {
                        *v = if *v > floor { *v } else { floor };
                    }
                },
            )
        });
    }
}

/// The largest of `values` (none of them NaN), in eight lanes that a vector unit keeps side
/// by side.
#[inline(always)]
fn largest(values: &[f64]) -> f64 {
    let mut lanes = [f64::NEG_INFINITY; 8];
    let mut blocks = values.chunks_exact(8);
    for block in &mut blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            *lane = if v > *lane { v } else { *lane };
        }
    }
    blocks
        .remainder()
        .iter()
        .chain(&lanes)
        .fold(f64::NEG_INFINITY, |a, &b| a.max(b))
}

/// `log10(x)` for `x >= 1e-10` (any normal positive `x`; `+inf` gives `+inf`), within a few
/// units in the last place of libm's, branch-free so that a loop of it vectorizes.
///
/// `x = m 2^e` with `m` in `[sqrt(1/2), sqrt(2))`; `ln m = 2 atanh(s)` with `s = (m - 1) /
/// (m + 1)`, `|s| <= 0.1716`, whose series `2 s (1 + s^2/3 + s^4/5 + ...)` to `s^17` leaves
/// out less than `1e-16` of `ln m`.
#[inline(always)]
pub fn log10(x: f64) -> f64 {
    // 2^52 + 1023: the biased exponent written into the low bits of 2^52's mantissa.
    const EXPONENT_BASE: f64 = 4_503_599_627_370_496.0 + 1023.0;
    let bits = x.to_bits();
    let exponent = f64::from_bits(0x4330_0000_0000_0000 | (bits >> 52)) - EXPONENT_BASE;
    let mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let high = mantissa > std::f64::consts::SQRT_2;
    let m = if high { mantissa * 0.5 } else { mantissa };
    let e = exponent + if high { 1.0 } else { 0.0 };
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let series = 1.0
        + z * (1.0 / 3.0
            + z * (1.0 / 5.0
                + z * (1.0 / 7.0
                    + z * (1.0 / 9.0
                        + z * (1.0 / 11.0
                            + z * (1.0 / 13.0 + z * (1.0 / 15.0 + z * (1.0 / 17.0))))))));
    let ln = e * std::f64::consts::LN_2 + 2.0 * s * series;
    if x == f64::INFINITY {
        f64::INFINITY
    } else {
        ln * std::f64::consts::LOG10_E
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log10_matches_libm_from_amin_to_the_largest_powers() {
        let mut worst: f64 = 0.0;
        // Every decade from 1e-10 to 1e300, 2,000 mantissas each, and the powers of ten.
        for decade in -10..300 {
            for i in 0..2000 {
                let x = 10f64.powi(decade) * (1.0 + 9.0 * i as f64 / 2000.0);
                let (ours, libm) = (log10(x), x.log10());
                let err = (ours - libm).abs() / libm.abs().max(1.0);
                worst = worst.max(err);
            }
        }
        assert!(worst < 1e-15, "worst relative error {worst:e}");
        assert_eq!(log10(1.0), 0.0);
        assert_eq!(log10(f64::INFINITY), f64::INFINITY);
        assert!((log10(f64::MAX) - f64::MAX.log10()).abs() < 1e-13);
    }

    #[test]
    fn decibels_clip_to_the_top_db_below_the_loudest_value() {
        let mut values: Vec<f64> = (0..20_000)
            .map(|i| (i as f64 * 0.37).sin().powi(2))
            .collect();
        values[5] = 0.0;
        values[7] = 100.0;
        let reference: Vec<f64> = values.iter().map(|v| 10.0 * v.max(1e-10).log10()).collect();
        let mut no_clip = values.clone();
        power_to_db(&mut no_clip, None);
        for (a, b) in no_clip.iter().zip(&reference) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        assert!((no_clip[5] + 100.0).abs() < 1e-12, "amin: -100 dB");
        power_to_db(&mut values, Some(80.0));
        // The loudest is 20 dB: nothing falls below -60 dB.
        for (a, b) in values.iter().zip(&reference) {
            assert!((a - b.max(-60.0)).abs() < 1e-12, "{a} vs {b}");
        }
    }
}
