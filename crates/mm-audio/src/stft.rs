//! Short-time Fourier transform on the host with `realfft` (a real-input FFT on `rustfft`),
//! laid out and padded like `librosa.stft` (librosa 0.11 `core/spectrum.py`, `stft`), frames
//! spread over rayon's threads.

use crate::error::FeatureError;
use std::sync::Arc;

use rayon::prelude::*;
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

/// Analysis window, sampled periodically (`scipy.signal.get_window(..., fftbins=True)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Window {
    /// `0.5 - 0.5 cos(2 pi n / N)`.
    Hann,
    /// `0.54 - 0.46 cos(2 pi n / N)`.
    Hamming,
}

impl Window {
    /// `len` periodic window coefficients.
    pub fn coefficients(self, len: usize) -> Vec<f64> {
        let (a, b) = match self {
            Window::Hann => (0.5, 0.5),
            Window::Hamming => (0.54, 0.46),
        };
        (0..len)
            .map(|n| a - b * (std::f64::consts::TAU * n as f64 / len as f64).cos())
            .collect()
    }
}

/// How the signal is padded by `n_fft / 2` on each side when frames are centred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PadMode {
    /// Zeros (librosa's default since 0.10).
    Constant,
    /// Mirror without repeating the edge sample (`numpy.pad(mode="reflect")`).
    Reflect,
}

/// STFT settings; defaults are librosa's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StftConfig {
    /// FFT size.
    pub n_fft: usize,
    /// Samples between frames.
    pub hop_length: usize,
    /// Window length (zero-padded to `n_fft`, centred); `n_fft` when equal.
    pub win_length: usize,
    /// Window function.
    pub window: Window,
    /// Centre frames on their sample (pad by `n_fft / 2`).
    pub center: bool,
    /// Padding used when `center`.
    pub pad_mode: PadMode,
}

impl StftConfig {
    /// librosa's defaults for `n_fft`: hop `n_fft / 4`, Hann, centred with zero padding.
    pub fn new(n_fft: usize) -> Self {
        Self {
            n_fft,
            hop_length: n_fft / 4,
            win_length: n_fft,
            window: Window::Hann,
            center: true,
            pad_mode: PadMode::Constant,
        }
    }

    /// Checks sizes; the error names the bad field.
    pub fn validate(&self) -> Result<(), FeatureError> {
        if self.n_fft < 2 {
            return Err(FeatureError::Setting(format!(
                "n_fft {} must be at least 2",
                self.n_fft
            )));
        }
        if self.hop_length == 0 {
            return Err(FeatureError::Setting(
                "hop_length must be at least 1".into(),
            ));
        }
        if self.win_length == 0 || self.win_length > self.n_fft {
            return Err(FeatureError::Setting(format!(
                "win_length {} must be in 1..=n_fft ({})",
                self.win_length, self.n_fft
            )));
        }
        Ok(())
    }

    /// Frequency bins, `1 + n_fft / 2`.
    pub fn n_freqs(&self) -> usize {
        1 + self.n_fft / 2
    }

    /// The window zero-padded to `n_fft`, centred (`librosa.util.pad_center`).
    pub fn padded_window(&self) -> Vec<f64> {
        let w = self.window.coefficients(self.win_length);
        let left = (self.n_fft - self.win_length) / 2;
        let mut out = vec![0.0; self.n_fft];
        out[left..left + self.win_length].copy_from_slice(&w);
        out
    }

    /// The signal as framed: padded when centred.
    pub fn pad(&self, signal: &[f32]) -> Result<Vec<f32>, FeatureError> {
        if !self.center {
            if signal.len() < self.n_fft {
                return Err(FeatureError::Signal(format!(
                    "signal of {} samples is shorter than n_fft {} (and center is off)",
                    signal.len(),
                    self.n_fft
                )));
            }
            return Ok(signal.to_vec());
        }
        let p = self.n_fft / 2;
        match self.pad_mode {
            PadMode::Constant => {
                let mut out = vec![0.0; p];
                out.extend_from_slice(signal);
                out.resize(signal.len() + 2 * p, 0.0);
                Ok(out)
            }
            PadMode::Reflect => {
                if signal.len() <= p {
                    return Err(FeatureError::Signal(format!(
                        "reflect padding by {p} needs more than {p} samples, the signal has {}",
                        signal.len()
                    )));
                }
                let mut out: Vec<f32> = (1..=p).rev().map(|i| signal[i]).collect();
                out.extend_from_slice(signal);
                let n = signal.len();
                out.extend((1..=p).map(|i| signal[n - 1 - i]));
                Ok(out)
            }
        }
    }

    /// Frames of a signal of `len` samples.
    pub fn n_frames(&self, len: usize) -> usize {
        let padded = if self.center {
            len + 2 * (self.n_fft / 2)
        } else {
            len
        };
        if padded < self.n_fft {
            0
        } else {
            1 + (padded - self.n_fft) / self.hop_length
        }
    }
}

/// Frames per parallel work item of [`Stft::power_frames`].
const FRAMES_PER_TASK: usize = 64;

/// A reusable STFT: the real-input FFT plan and the window are computed once.
pub struct Stft {
    config: StftConfig,
    window: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl Stft {
    /// Plans the transform.
    pub fn new(config: StftConfig) -> Result<Self, FeatureError> {
        config.validate()?;
        Ok(Self {
            window: config.padded_window(),
            fft: RealFftPlanner::new().plan_fft_forward(config.n_fft),
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &StftConfig {
        &self.config
    }

    /// Power (`|X|^power`) spectra frame by frame: `[frames][n_freqs]` row-major, in `f64`,
    /// with the frame count.
    pub fn power_frames(
        &self,
        signal: &[f32],
        power: f64,
    ) -> Result<(Vec<f64>, usize), FeatureError> {
        self.map_frames(signal, power, self.config.n_freqs(), |spectrum, out| {
            out.copy_from_slice(spectrum)
        })
    }

    /// Each frame's power spectrum (`n_freqs` values) mapped by `f` to `width` values:
    /// `[frames][width]` row-major, with the frame count. Frames are transformed in parallel
    /// (rayon's pool), each task with its own buffers, so the whole spectrogram is never held
    /// when `f` reduces it (a mel filterbank).
    pub fn map_frames(
        &self,
        signal: &[f32],
        power: f64,
        width: usize,
        f: impl Fn(&[f64], &mut [f64]) + Sync,
    ) -> Result<(Vec<f64>, usize), FeatureError> {
        let padded = self.config.pad(signal)?;
        let (n_fft, hop) = (self.config.n_fft, self.config.hop_length);
        let frames = self.config.n_frames(signal.len());
        let n_freqs = self.config.n_freqs();
        let mut out = vec![0.0; width * frames];
        if width == 0 {
            return Ok((out, frames));
        }
        out.par_chunks_mut(width * FRAMES_PER_TASK)
            .enumerate()
            .for_each(|(task, rows)| {
                let mut input = self.fft.make_input_vec();
                let mut spectrum = self.fft.make_output_vec();
                let mut scratch = self.fft.make_scratch_vec();
                let mut powers = vec![0.0; n_freqs];
                for (j, row) in rows.chunks_mut(width).enumerate() {
                    let start = (task * FRAMES_PER_TASK + j) * hop;
                    let frame = &padded[start..start + n_fft];
                    for ((b, &x), &w) in input.iter_mut().zip(frame).zip(&self.window) {
                        *b = x as f64 * w;
                    }
                    self.fft
                        .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                        .expect("buffers come from the plan");
                    for (p, c) in powers.iter_mut().zip(&spectrum) {
                        let magnitude_sq = c.norm_sqr();
                        *p = if power == 2.0 {
                            magnitude_sq
                        } else if power == 1.0 {
                            magnitude_sq.sqrt()
                        } else {
                            magnitude_sq.powf(power / 2.0)
                        };
                    }
                    f(&powers, row);
                }
            });
        Ok((out, frames))
    }

    /// Power (`|X|^power`) spectrogram, `[n_freqs][frames]` row-major (librosa's layout), in
    /// `f64`.
    pub fn spectrogram(
        &self,
        signal: &[f32],
        power: f64,
    ) -> Result<(Vec<f64>, usize), FeatureError> {
        let (by_frame, frames) = self.power_frames(signal, power)?;
        let n_freqs = self.config.n_freqs();
        let mut out = vec![0.0; n_freqs * frames];
        for (f, row) in by_frame.chunks_exact(n_freqs.max(1)).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                out[k * frames + f] = v;
            }
        }
        Ok((out, frames))
    }
}
