//! The one error type of the audio front-end and encoders (decoding has [`AudioError`]).
//!
//! [`AudioError`]: crate::AudioError

/// Why features or an encoder could not be computed or built; the message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureError {
    /// A setting is out of range or inconsistent with another (`n_fft`, `hop_length`,
    /// `n_mels`, heads and widths...).
    #[error("{0}")]
    Setting(String),
    /// The signal cannot be framed as asked (too short for `n_fft` or for reflect padding).
    #[error("{0}")]
    Signal(String),
    /// Inputs of the wrong shape (feature rows that differ, a tensor the encoder cannot take).
    #[error("{0}")]
    Shape(String),
}
