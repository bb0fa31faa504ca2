//! Mel scales and filterbanks, ported from librosa 0.11 (`core/convert.py` `hz_to_mel`,
//! `mel_to_hz`, `mel_frequencies`; `filters.py` `mel`).

use serde::{Deserialize, Serialize};

/// Which mel scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MelScale {
    /// Slaney's Auditory Toolbox: linear below 1 kHz, logarithmic above (librosa's default).
    Slaney,
    /// HTK: `2595 log10(1 + f / 700)`.
    Htk,
}

/// Normalization of each triangular filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MelNorm {
    /// Divide each filter by its bandwidth in Hz (area normalization; librosa's default).
    Slaney,
    /// Peak 1.
    None,
}

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hertz to mels.
pub fn hz_to_mel(hz: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 2595.0 * (1.0 + hz / 700.0).log10(),
        MelScale::Slaney if hz >= MIN_LOG_HZ => MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step(),
        MelScale::Slaney => hz / F_SP,
    }
}

/// Mels to hertz.
pub fn mel_to_hz(mel: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 700.0 * (10f64.powf(mel / 2595.0) - 1.0),
        MelScale::Slaney if mel >= MIN_LOG_MEL => {
            MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
        }
        MelScale::Slaney => F_SP * mel,
    }
}

/// `n` frequencies evenly spaced in mels from `fmin` to `fmax` (Hz).
pub fn mel_frequencies(n: usize, fmin: f64, fmax: f64, scale: MelScale) -> Vec<f64> {
    let (lo, hi) = (hz_to_mel(fmin, scale), hz_to_mel(fmax, scale));
    (0..n)
        .map(|i| {
            let t = if n > 1 {
                i as f64 / (n - 1) as f64
            } else {
                0.0
            };
            mel_to_hz(lo + (hi - lo) * t, scale)
        })
        .collect()
}

/// The `[n_mels][1 + n_fft / 2]` filterbank (row-major) mapping an STFT's power to mel bands.
pub fn mel_filterbank(
    sample_rate: f64,
    n_fft: usize,
    n_mels: usize,
    fmin: f64,
    fmax: f64,
    scale: MelScale,
    norm: MelNorm,
) -> Vec<f64> {
    let n_freqs = 1 + n_fft / 2;
    let fft_freqs: Vec<f64> = (0..n_freqs)
        .map(|k| k as f64 * sample_rate / n_fft as f64)
        .collect();
    let mel_f = mel_frequencies(n_mels + 2, fmin, fmax, scale);
    let mut weights = vec![0.0; n_mels * n_freqs];
    for i in 0..n_mels {
        let (below, centre, above) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
        let enorm = match norm {
            MelNorm::Slaney => 2.0 / (above - below),
            MelNorm::None => 1.0,
        };
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - below) / (centre - below);
            let upper = (above - f) / (above - centre);
            weights[i * n_freqs + k] = lower.min(upper).max(0.0) * enorm;
        }
    }
    weights
}
