//! Model weights from a formula that Rust and NumPy compute bit for bit, so a parity test can
//! build a large model (R3D-18 has 33 M parameters) in both without committing its weights: the
//! fixture holds only the key list and the reference outputs.
//!
//! Element `j` of tensor number `i` (its place in the state dict) is
//! `u = (splitmix64(i * 2^32 + j) >> 40) / 2^24 - 1/2`, exact in `f32`, then scaled by kind:
//! a weight matrix or kernel `u * 2 sqrt(6 / fan_in)` (He's variance `2 / fan_in`, so signals
//! survive deep ReLU stacks), a bias or running mean `u / 5`, a norm's scale `1 + u / 5`, a
//! running variance `1 + u / 2`.
//! `crates/mm-video/tests/fixtures/video_models/generate.py` has the NumPy twin.

use crate::rng::SplitMix64;

/// The role of a tensor, which sets its scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightKind {
    /// A linear, convolution or recurrent weight; the argument is its fan-in.
    Matrix(usize),
    /// A bias.
    Bias,
    /// A normalization's scale (gamma).
    NormScale,
    /// A batch norm's running mean.
    RunningMean,
    /// A batch norm's running variance.
    RunningVar,
}

impl WeightKind {
    /// The kind named in a fixture (`w`, `bias`, `bn_weight`, `mean`, `var`) for a tensor of
    /// `shape`; `None` for an unknown name.
    pub fn from_name(name: &str, shape: &[usize]) -> Option<Self> {
        Some(match name {
            "w" => WeightKind::Matrix(shape.iter().skip(1).product::<usize>().max(1)),
            "bias" => WeightKind::Bias,
            "bn_weight" => WeightKind::NormScale,
            "mean" => WeightKind::RunningMean,
            "var" => WeightKind::RunningVar,
            _ => return None,
        })
    }
}

/// The `len` values of tensor number `index`.
pub fn formula_tensor(index: u64, len: usize, kind: WeightKind) -> Vec<f32> {
    (0..len as u64)
        .map(|j| {
            let bits = SplitMix64::new((index << 32) + j).next_u64() >> 40;
            let u = bits as f32 / 16_777_216.0 - 0.5;
            match kind {
                WeightKind::Matrix(fan_in) => u * (2.0 * (6.0 / fan_in as f64).sqrt()) as f32,
                WeightKind::Bias | WeightKind::RunningMean => u * 0.2,
                WeightKind::NormScale => 1.0 + u * 0.2,
                WeightKind::RunningVar => 1.0 + u * 0.5,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_lie_in_their_ranges() {
        let w = formula_tensor(3, 1000, WeightKind::Matrix(12));
        let bound = 0.5 * 2.0 * (6.0f32 / 12.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= bound));
        let var = formula_tensor(4, 1000, WeightKind::RunningVar);
        assert!(var.iter().all(|v| (0.75..1.25).contains(v)));
        assert_ne!(
            formula_tensor(3, 4, WeightKind::Bias),
            formula_tensor(5, 4, WeightKind::Bias)
        );
    }
}
