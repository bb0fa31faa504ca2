//! Band-limited resampling with `rubato`'s FFT resampler (synchronous, fixed ratio), with its
//! delay removed so the output lines up with the input.

use rubato::{FftFixedIn, Resampler};

use crate::decode::AudioError;

/// Resamples a mono signal from `from` Hz to `to` Hz; the output has
/// `ceil(len * to / from)` samples.
pub fn resample(signal: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    if from == to {
        return Ok(signal.to_vec());
    }
    let err = |message: String| AudioError::Resample { from, to, message };
    if from == 0 || to == 0 {
        return Err(err("sample rates must be positive".into()));
    }
    let mut resampler = FftFixedIn::<f64>::new(from as usize, to as usize, 1024, 2, 1)
        .map_err(|e| err(e.to_string()))?;
    let delay = resampler.output_delay();
    let expected = (signal.len() as u64 * to as u64).div_ceil(from as u64) as usize;
    let input: Vec<f64> = signal.iter().map(|&v| v as f64).collect();
    let mut out: Vec<f64> = Vec::with_capacity(expected + delay + 2048);
    let mut pos = 0;
    while pos + resampler.input_frames_next() <= input.len() {
        let n = resampler.input_frames_next();
        let chunk = resampler
            .process(&[&input[pos..pos + n]], None)
            .map_err(|e| err(e.to_string()))?;
        out.extend_from_slice(&chunk[0]);
        pos += n;
    }
    // The tail and then silence, in whole chunks, until the delayed output is complete.
    let mut tail = input[pos..].to_vec();
    while out.len() < delay + expected {
        tail.resize(resampler.input_frames_next(), 0.0);
        let chunk = resampler
            .process(&[&tail], None)
            .map_err(|e| err(e.to_string()))?;
        out.extend_from_slice(&chunk[0]);
        tail.clear();
    }
    out.resize(delay + expected, 0.0);
    Ok(out[delay..].iter().map(|&v| v as f32).collect())
}
