//! `mm-audio`: the audio front-end and audio encoders.
//!
//! - [`decode`]: WAV (all common bit depths), FLAC and Ogg Vorbis files to `f32` samples, with
//!   a documented downmix and clear errors for malformed files.
//! - [`encode`]: mono 16-bit WAV out.
//! - [`resample`]: band-limited resampling (`rubato`).
//! - [`stft`]: the short-time Fourier transform on the host (`realfft`), laid out like librosa.
//! - [`mel`]: Slaney and HTK mel scales and filterbanks.
//! - [`features`]: mel spectrograms, log-mel (dB) and MFCCs matching librosa, batched.
//! - [`batch`]: parallel extraction for data loaders and stacking into tensors.
//! - [`device`]: the same features as Burn tensors on any device.
//! - [`classifier`]: a sound classifier over log-mel crops (model, settings).
//! - [`clips`]: its labelled clips as normalized log-mel matrices, and crops of them.
//! - [`classifier_train`]: training it through the house loop and evaluating it.
//! - [`datasets`]: audio manifests and the sonic-pi-samples sound groups.
//! - [`error`]: [`FeatureError`], the front-end's and encoders' error type.
//! - [`encoder`]: the spectrogram CNN and the audio transformer ([`Encoder`](mm_core::Encoder)s).
#![warn(missing_docs)]

pub mod batch;
pub mod classifier;
pub mod classifier_train;
pub mod clips;
pub mod datasets;
pub mod decibels;
pub mod decode;
pub mod device;
pub mod encode;
pub mod encoder;
pub mod error;
pub mod features;
mod flac_meta;
pub mod mel;
pub mod resample;
pub mod stft;

pub use decode::{Audio, AudioError, decode_audio, load_audio};
pub use error::FeatureError;
pub use features::{Features, MelConfig, MelExtractor};
