//! Writing audio: mono 16-bit PCM WAV (what the generated datasets store beside their video).

use std::io::Cursor;
use std::path::Path;

use crate::decode::AudioError;

/// Encodes `samples` (in `[-1, 1]`; beyond it is clipped) as a mono 16-bit WAV.
pub fn wav_mono16(samples: &[f32], sample_rate: u32) -> Result<Vec<u8>, AudioError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = Cursor::new(Vec::new());
    let corrupt = |e: hound::Error| AudioError::Unsupported {
        what: "<wav encoder>".into(),
        message: e.to_string(),
    };
    let mut writer = hound::WavWriter::new(&mut bytes, spec).map_err(corrupt)?;
    for &s in samples {
        let v = (s.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16;
        writer.write_sample(v).map_err(corrupt)?;
    }
    writer.finalize().map_err(corrupt)?;
    Ok(bytes.into_inner())
}

/// Writes `samples` to `path` as a mono 16-bit WAV.
pub fn write_wav_mono16(path: &Path, samples: &[f32], sample_rate: u32) -> Result<(), AudioError> {
    let bytes = wav_mono16(samples, sample_rate)?;
    std::fs::write(path, bytes).map_err(|source| AudioError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_audio;

    #[test]
    fn round_trips_through_the_decoder() {
        let samples: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.05).sin() * 0.8).collect();
        let bytes = wav_mono16(&samples, 16_000).unwrap();
        let back = decode_audio(&bytes, "test").unwrap();
        assert_eq!(back.sample_rate, 16_000);
        let mono = back.to_mono();
        assert_eq!(mono.len(), samples.len());
        let worst = mono
            .iter()
            .zip(&samples)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1.0 / 16_000.0, "worst error {worst}");
    }
}
