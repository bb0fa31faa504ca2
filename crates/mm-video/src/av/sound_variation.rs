//! Variation of a training sound for the localizer (`augment=true`): a delay, a small shift
//! of pitch, and SpecAugment's time and band masks.

use mm_audio::features::Features;
use mm_data::rng::SplitMix64;

/// Delays in mel frames (0.4 s), band shifts and mask sizes of [`augment_mel`].
const MAX_DELAY: usize = 40;
const MAX_BAND_SHIFT: usize = 2;
const MAX_TIME_MASK: usize = 20;
const MAX_BAND_MASK: usize = 5;

/// A normalized log-mel (silence is 0) varied for training: delayed by up to 0.4 s, shifted
/// by up to two bands up or down (a small change of pitch), and one run of frames (at most
/// half the sound's span) and one run of bands silenced (SpecAugment's masks).
pub fn augment_mel(mel: &Features, rng: &mut SplitMix64) -> Features {
    let (rows, frames) = (mel.rows, mel.frames);
    let below = |rng: &mut SplitMix64, n: usize| (rng.next_u64() % (n as u64 + 1)) as usize;
    let delay = below(rng, MAX_DELAY.min(frames));
    let shift = below(rng, 2 * MAX_BAND_SHIFT) as isize - MAX_BAND_SHIFT as isize;
    let mut data = vec![0.0; rows * frames];
    for r in 0..rows {
        let from = r as isize - shift;
        if from < 0 || from >= rows as isize {
            continue;
        }
        let src = &mel.data[from as usize * frames..][..frames - delay];
        data[r * frames + delay..(r + 1) * frames].copy_from_slice(src);
    }
    // The time mask covers at most half of the sound's span, so a short sound is never
    // masked away.
    let sounding: Vec<usize> = (0..frames)
        .filter(|&t| (0..rows).any(|r| mel.data[r * frames + t] != 0.0))
        .collect();
    let span = match (sounding.first(), sounding.last()) {
        (Some(a), Some(b)) => b - a + 1,
        _ => 0,
    };
    let t_len = below(rng, MAX_TIME_MASK.min(span / 2));
    let t0 = below(rng, frames - t_len);
    let b_len = below(rng, MAX_BAND_MASK.min(rows));
    let b0 = below(rng, rows - b_len);
    for r in 0..rows {
        for t in 0..frames {
            if (t0..t0 + t_len).contains(&t) || (b0..b0 + b_len).contains(&r) {
                data[r * frames + t] = 0.0;
            }
        }
    }
    Features { rows, frames, data }
}
