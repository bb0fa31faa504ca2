//! The mel front-end on a Burn device: the same features as [`crate::features`], batched, as
//! tensors, on any backend. Frames are cut with `unfold`; the DFT is Burn's `signal::rfft` when
//! `n_fft` is a power of two and a matrix product with a cosine/sine basis otherwise (Burn
//! 0.21's FFT only takes powers of two; Whisper's `n_fft` is 400).

use crate::error::FeatureError;
use burn::tensor::ops::PadMode as BurnPad;
use burn::tensor::signal::rfft;
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use crate::features::MelConfig;
use crate::stft::PadMode;

/// A mel front-end whose constants (window, DFT basis, filterbank) live on one device.
pub struct DeviceMel<B: Backend> {
    config: MelConfig,
    /// `[n_fft]`.
    window: Tensor<B, 1>,
    /// `[n_fft, n_freqs]` cosine and minus-sine bases, when `n_fft` is not a power of two.
    dft: Option<(Tensor<B, 2>, Tensor<B, 2>)>,
    /// `[n_freqs, n_mels]`.
    filterbank: Tensor<B, 2>,
}

fn matrix<B: Backend>(
    data: Vec<f64>,
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(
        TensorData::new(data, [rows, cols]).convert::<B::FloatElem>(),
        device,
    )
}

impl<B: Backend> DeviceMel<B> {
    /// Validates the settings and moves the constants to `device`.
    pub fn new(config: MelConfig, device: &B::Device) -> Result<Self, FeatureError> {
        config.validate()?;
        let n_fft = config.stft.n_fft;
        let n_freqs = config.stft.n_freqs();
        let window = Tensor::from_data(
            TensorData::new(config.stft.padded_window(), [n_fft]).convert::<B::FloatElem>(),
            device,
        );
        let dft = (!n_fft.is_power_of_two()).then(|| {
            let angle = |n: usize, k: usize| {
                std::f64::consts::TAU * ((n * k) % n_fft) as f64 / n_fft as f64
            };
            let cos = (0..n_fft * n_freqs)
                .map(|i| angle(i / n_freqs, i % n_freqs).cos())
                .collect();
            let sin = (0..n_fft * n_freqs)
                .map(|i| -angle(i / n_freqs, i % n_freqs).sin())
                .collect();
            (
                matrix(cos, n_fft, n_freqs, device),
                matrix(sin, n_fft, n_freqs, device),
            )
        });
        // Transposed to [n_freqs, n_mels] for a right multiplication.
        let fb = config.filterbank();
        let n_mels = config.n_mels;
        let fb_t = (0..n_freqs * n_mels)
            .map(|i| fb[(i % n_mels) * n_freqs + i / n_mels])
            .collect();
        Ok(Self {
            config,
            window,
            dft,
            filterbank: matrix(fb_t, n_freqs, n_mels, device),
        })
    }

    /// Mel spectrograms of equal-length signals.
    ///
    /// # Shapes
    /// - `signals`: `[batch, samples]` -> `[batch, n_mels, frames]`
    pub fn mel(&self, signals: Tensor<B, 2>) -> Result<Tensor<B, 3>, FeatureError> {
        let stft = &self.config.stft;
        let [batch, samples] = signals.dims();
        let (n_fft, hop, p) = (stft.n_fft, stft.hop_length, stft.n_fft / 2);
        let padded = match (stft.center, stft.pad_mode) {
            (false, _) if samples < n_fft => {
                return Err(FeatureError::Signal(format!(
                    "signal of {samples} samples is shorter than n_fft {n_fft}"
                )));
            }
            (false, _) => signals,
            (true, PadMode::Constant) => signals.pad([(0, 0), (p, p)], BurnPad::Constant(0.0)),
            (true, PadMode::Reflect) if samples <= p => {
                return Err(FeatureError::Signal(format!(
                    "reflect padding by {p} needs more than {p} samples, got {samples}"
                )));
            }
            (true, PadMode::Reflect) => signals.pad([(0, 0), (p, p)], BurnPad::Reflect),
        };
        // Framing by a gather of sample indices rather than `unfold`: on wgpu, Burn 0.21's
        // strided unfold view read back wrong values for every signal after the first of a
        // batch at n_fft 2048 (3.5% off in the mel power; the first signal was exact).
        let padded_len = padded.dims()[1];
        let frames = 1 + (padded_len - n_fft) / hop;
        let positions: Vec<i64> = (0..frames)
            .flat_map(|f| (0..n_fft).map(move |k| (f * hop + k) as i64))
            .collect();
        let positions = Tensor::<B, 1, Int>::from_data(
            TensorData::new(positions, [frames * n_fft]),
            &padded.device(),
        );
        let windowed = (padded.select(1, positions).reshape([batch, frames, n_fft])
            * self.window.clone().reshape([1, 1, n_fft]))
        .reshape([batch * frames, n_fft]);
        let (re, im) = match &self.dft {
            Some((cos, sin)) => (
                windowed.clone().matmul(cos.clone()),
                windowed.matmul(sin.clone()),
            ),
            None => rfft(windowed, 1, Some(n_fft)),
        }; // each [batch * frames, n_freqs]
        let power2 = re.clone() * re + im.clone() * im;
        let spec = if self.config.power == 2.0 {
            power2
        } else {
            power2.powf_scalar(self.config.power / 2.0)
        };
        let mel = spec.matmul(self.filterbank.clone()); // [batch * frames, n_mels]
        Ok(mel
            .reshape([batch, frames, self.config.n_mels])
            .swap_dims(1, 2)) // [batch, n_mels, frames]
    }

    /// Log-mel in decibels, `top_db` applied per signal (as `librosa.power_to_db` per call).
    ///
    /// # Shapes
    /// - `signals`: `[batch, samples]` -> `[batch, n_mels, frames]`
    pub fn log_mel(
        &self,
        signals: Tensor<B, 2>,
        top_db: Option<f64>,
    ) -> Result<Tensor<B, 3>, FeatureError> {
        let db = self
            .mel(signals)?
            .clamp_min(1e-10)
            .log()
            .mul_scalar(10.0 / std::f64::consts::LN_10);
        Ok(match top_db {
            None => db,
            Some(top) => {
                let [batch, n_mels, frames] = db.dims();
                let peak = db.clone().reshape([batch, n_mels * frames]).max_dim(1); // [batch, 1]
                let floor = (peak - top).reshape([batch, 1, 1]);
                db.max_pair(floor.expand([batch, n_mels, frames]))
            }
        })
    }
}
