//! `cargo xtask bench audio`: log-mel (dB) of 60 s of audio in the Whisper-style and the
//! librosa-default-style settings, on the host and on `--device`, beside librosa's time on the
//! same machine (`xtask/bench/audio_reference.py`).

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use mm_audio::device::DeviceMel;
use mm_audio::{MelConfig, MelExtractor};
use mm_core::BackendJob;
use mm_data::rng::SplitMix64;

use super::{Figure, best_seconds};

/// 60 s of tones and noise at `sr` (the content does not change the work).
fn signal(sr: u32) -> Vec<f32> {
    let mut rng = SplitMix64::new(60);
    (0..sr as usize * 60)
        .map(|i| {
            let t = i as f64 / sr as f64;
            (0.3 * (std::f64::consts::TAU * 440.0 * t).sin() + 0.05 * rng.normal()) as f32
        })
        .collect()
}

/// Times both settings.
pub struct AudioBench {
    /// Seconds to keep repeating each case.
    pub min_seconds: f64,
}

impl BackendJob for AudioBench {
    type Output = Result<Vec<Figure>, mm_audio::FeatureError>;

    fn run<A: AutodiffBackend>(self, device: A::Device) -> Self::Output {
        type B<A> = <A as AutodiffBackend>::InnerBackend;
        let mut out = Vec::new();
        for (host_key, device_key, cfg) in [
            (
                "whisper_60s_seconds",
                "whisper_60s_device_seconds",
                MelConfig::whisper(),
            ),
            (
                "librosa_60s_seconds",
                "librosa_60s_device_seconds",
                MelConfig::librosa(22_050),
            ),
        ] {
            let y = signal(cfg.sample_rate);
            let host = MelExtractor::new(cfg)?;
            let t = best_seconds(self.min_seconds, || {
                host.log_mel(&y, Some(80.0)).expect("valid signal");
            });
            out.push(Figure::lower_is_better(host_key, t));
            let mel = DeviceMel::<B<A>>::new(cfg, &device)?;
            let x = Tensor::<B<A>, 2>::from_data(TensorData::new(y.clone(), [1, y.len()]), &device);
            let t = best_seconds(self.min_seconds, || {
                mel.log_mel(x.clone(), Some(80.0))
                    .expect("valid signal")
                    .into_data();
            });
            out.push(Figure::lower_is_better(device_key, t));
        }
        Ok(out)
    }
}
