//! Mel spectrograms, log-mel in decibels and MFCCs on the host, matching
//! `librosa.feature.melspectrogram`, `librosa.power_to_db` and `librosa.feature.mfcc`
//! (librosa 0.11).

use crate::error::FeatureError;
use serde::{Deserialize, Serialize};

use crate::mel::{MelNorm, MelScale, mel_filterbank};
use crate::stft::{Stft, StftConfig};

pub use crate::decibels::power_to_db;

/// Everything that defines a mel front-end; field names follow librosa's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MelConfig {
    /// Sample rate the signal is at (Hz).
    pub sample_rate: u32,
    /// STFT settings.
    pub stft: StftConfig,
    /// Mel bands.
    pub n_mels: usize,
    /// Lowest band edge (Hz).
    pub fmin: f64,
    /// Highest band edge (Hz); `None` is `sample_rate / 2`.
    pub fmax: Option<f64>,
    /// Mel scale.
    pub scale: MelScale,
    /// Filter normalization.
    pub norm: MelNorm,
    /// Exponent of the magnitude (2: power, 1: magnitude).
    pub power: f64,
}

impl MelConfig {
    /// librosa's defaults at a sample rate: `n_fft` 2048, hop 512, 128 Slaney mels, power 2.
    pub fn librosa(sample_rate: u32) -> Self {
        Self::new(sample_rate, 2048, 512, 128)
    }

    /// Whisper's sizes: 16 kHz, `n_fft` 400, hop 160, 80 mels (librosa defaults otherwise).
    pub fn whisper() -> Self {
        Self::new(16_000, 400, 160, 80)
    }

    /// librosa's defaults for every field but the sizes.
    pub fn new(sample_rate: u32, n_fft: usize, hop_length: usize, n_mels: usize) -> Self {
        let mut stft = StftConfig::new(n_fft);
        stft.hop_length = hop_length;
        Self {
            sample_rate,
            stft,
            n_mels,
            fmin: 0.0,
            fmax: None,
            scale: MelScale::Slaney,
            norm: MelNorm::Slaney,
            power: 2.0,
        }
    }

    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<(), FeatureError> {
        self.stft.validate()?;
        if self.sample_rate == 0 {
            return Err(FeatureError::Setting("sample rate must be positive".into()));
        }
        if self.n_mels == 0 {
            return Err(FeatureError::Setting("n_mels must be at least 1".into()));
        }
        let fmax = self.fmax();
        if !(self.fmin >= 0.0 && self.fmin < fmax && fmax <= self.sample_rate as f64 / 2.0 + 1e-9) {
            return Err(FeatureError::Setting(format!(
                "mel band edges fmin {} and fmax {fmax} must satisfy 0 <= fmin < fmax <= sr / 2",
                self.fmin
            )));
        }
        if !(self.power > 0.0 && self.power.is_finite()) {
            return Err(FeatureError::Setting(format!(
                "power {} must be positive",
                self.power
            )));
        }
        Ok(())
    }

    /// The upper band edge.
    pub fn fmax(&self) -> f64 {
        self.fmax.unwrap_or(self.sample_rate as f64 / 2.0)
    }

    /// The filterbank, `[n_mels][n_freqs]`.
    pub fn filterbank(&self) -> Vec<f64> {
        mel_filterbank(
            self.sample_rate as f64,
            self.stft.n_fft,
            self.n_mels,
            self.fmin,
            self.fmax(),
            self.scale,
            self.norm,
        )
    }
}

/// A `[rows][frames]` feature matrix (mel bands or MFCCs by time), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Rows (mel bands or coefficients).
    pub rows: usize,
    /// Frames.
    pub frames: usize,
    /// `rows * frames` values.
    pub data: Vec<f64>,
}

impl Features {
    /// The values as `f32`.
    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&v| v as f32).collect()
    }
}

/// A planned mel front-end.
pub struct MelExtractor {
    config: MelConfig,
    stft: Stft,
    filterbank: Vec<f64>,
}

impl MelExtractor {
    /// Validates the settings and precomputes the FFT plan and the filterbank.
    pub fn new(config: MelConfig) -> Result<Self, FeatureError> {
        config.validate()?;
        Ok(Self {
            stft: Stft::new(config.stft)?,
            filterbank: config.filterbank(),
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &MelConfig {
        &self.config
    }

    /// Mel spectrogram `[n_mels][frames]`: the filterbank times `|STFT|^power`. Each band
    /// sums only its filter's non-zero bins; frames run in parallel.
    pub fn mel(&self, signal: &[f32]) -> Result<Features, FeatureError> {
        let n_freqs = self.config.stft.n_freqs();
        let n_mels = self.config.n_mels;
        let bands: Vec<(usize, &[f64])> = self
            .filterbank
            .chunks_exact(n_freqs)
            .map(|weights| {
                let first = weights.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = weights.iter().rposition(|&w| w != 0.0).map_or(0, |l| l + 1);
                (first, &weights[first..last.max(first)])
            })
            .collect();
        let (by_frame, frames) =
            self.stft
                .map_frames(signal, self.config.power, n_mels, |power, mel| {
                    for (m, (first, weights)) in mel.iter_mut().zip(&bands) {
                        *m = weights
                            .iter()
                            .zip(&power[*first..])
                            .map(|(w, p)| w * p)
                            .sum();
                    }
                })?;
        let mut data = vec![0.0; n_mels * frames];
        for (f, mel) in by_frame.chunks_exact(n_mels).enumerate() {
            for (m, &v) in mel.iter().enumerate() {
                data[m * frames + f] = v;
            }
        }
        Ok(Features {
            rows: n_mels,
            frames,
            data,
        })
    }

    /// Log-mel in decibels: `power_to_db(mel, ref=1, amin=1e-10, top_db)`.
    pub fn log_mel(&self, signal: &[f32], top_db: Option<f64>) -> Result<Features, FeatureError> {
        let mut f = self.mel(signal)?;
        power_to_db(&mut f.data, top_db);
        Ok(f)
    }

    /// MFCCs `[n_mfcc][frames]`: DCT-II (orthonormal) of the log-mel with `top_db = 80`, as
    /// `librosa.feature.mfcc`.
    pub fn mfcc(&self, signal: &[f32], n_mfcc: usize) -> Result<Features, FeatureError> {
        if n_mfcc == 0 || n_mfcc > self.config.n_mels {
            return Err(FeatureError::Setting(format!(
                "n_mfcc {n_mfcc} must be in 1..=n_mels ({})",
                self.config.n_mels
            )));
        }
        let log_mel = self.log_mel(signal, Some(80.0))?;
        Ok(dct_ortho(&log_mel, n_mfcc))
    }
}

/// The first `n` rows of the orthonormal DCT-II along rows (`scipy.fft.dct(type=2,
/// norm="ortho", axis=-2)`).
pub fn dct_ortho(input: &Features, n: usize) -> Features {
    let (rows, frames) = (input.rows, input.frames);
    let mut data = vec![0.0; n * frames];
    for k in 0..n {
        let scale = if k == 0 {
            (1.0 / rows as f64).sqrt()
        } else {
            (2.0 / rows as f64).sqrt()
        };
        for r in 0..rows {
            let c = scale
                * (std::f64::consts::PI * k as f64 * (2 * r + 1) as f64 / (2 * rows) as f64).cos();
            let src = &input.data[r * frames..(r + 1) * frames];
            data[k * frames..(k + 1) * frames]
                .iter_mut()
                .zip(src)
                .for_each(|(d, &s)| *d += c * s);
        }
    }
    Features {
        rows: n,
        frames,
        data,
    }
}
