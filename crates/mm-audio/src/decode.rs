//! Decoding audio files: WAV through `hound` (8/16/24/32-bit integer, 32-bit float), FLAC and
//! Ogg Vorbis through `symphonia`. Samples come out as `f32` in `[-1, 1]`, scaled like
//! libsndfile (and so `soundfile`/`librosa`): an integer sample is divided by `2^(bits - 1)`.
//!
//! Everything a header claims is checked against limits and against the data actually there:
//! a truncated, foreign or absurd file is an [`AudioError`] that names the problem, and no
//! allocation is sized by an unchecked header field.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Highest sample rate accepted (Hz).
pub const MAX_SAMPLE_RATE: u32 = 768_000;
/// Most channels accepted.
pub const MAX_CHANNELS: usize = 32;
/// Most samples per channel decoded from one file (about 2 hours at 48 kHz).
pub const MAX_FRAMES: usize = 48_000 * 60 * 60 * 2;

/// Decoded audio: interleaved `f32` samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Channels, interleaved in `samples`.
    pub channels: usize,
    /// `frames * channels` samples, frame after frame.
    pub samples: Vec<f32>,
}

impl Audio {
    /// Samples per channel.
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels.max(1)
    }

    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / self.sample_rate as f64
    }

    /// One channel as a signal.
    pub fn channel(&self, c: usize) -> Vec<f32> {
        self.samples
            .iter()
            .skip(c)
            .step_by(self.channels)
            .copied()
            .collect()
    }

    /// Downmix policy: the mean of all channels (as `librosa.to_mono`); mono is returned as is.
    pub fn to_mono(&self) -> Vec<f32> {
        if self.channels == 1 {
            return self.samples.clone();
        }
        let scale = 1.0 / self.channels as f32;
        self.samples
            .chunks_exact(self.channels)
            .map(|frame| frame.iter().sum::<f32>() * scale)
            .collect()
    }
}

/// Why audio could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be read.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a format this crate decodes.
    #[error("{0}: not a WAV, FLAC or Ogg Vorbis file (unrecognized header)")]
    UnknownFormat(String),
    /// The file is malformed or truncated.
    #[error("{what}: malformed or truncated audio: {message}")]
    Corrupt {
        /// The file (or `<bytes>`).
        what: String,
        /// What the decoder reported.
        message: String,
    },
    /// A header field outside the accepted range.
    #[error("{what}: {message}")]
    Unsupported {
        /// The file (or `<bytes>`).
        what: String,
        /// What is out of range.
        message: String,
    },
    /// No samples at all.
    #[error("{0}: the file holds no audio samples")]
    Empty(String),
    /// Resampling failed.
    #[error("resampling from {from} Hz to {to} Hz: {message}")]
    Resample {
        /// Source rate.
        from: u32,
        /// Target rate.
        to: u32,
        /// What went wrong.
        message: String,
    },
}

/// Reads and decodes an audio file; the format is recognized from its first bytes.
pub fn load_audio(path: &Path) -> Result<Audio, AudioError> {
    let bytes = std::fs::read(path).map_err(|source| AudioError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_audio(&bytes, &path.display().to_string())
}

/// Decodes audio from memory; `what` names the source in errors.
pub fn decode_audio(bytes: &[u8], what: &str) -> Result<Audio, AudioError> {
    let audio =
        if bytes.starts_with(b"RIFF") || bytes.starts_with(b"RIFX") || bytes.starts_with(b"RF64") {
            decode_wav(bytes, what)?
        } else if bytes.starts_with(b"fLaC") || bytes.starts_with(b"OggS") {
            if bytes.starts_with(b"fLaC") {
                crate::flac_meta::check_flac_metadata(bytes).map_err(|message| {
                    AudioError::Corrupt {
                        what: what.to_string(),
                        message,
                    }
                })?;
            }
            decode_symphonia(bytes, what)?
        } else {
            return Err(AudioError::UnknownFormat(what.to_string()));
        };
    if audio.samples.is_empty() {
        return Err(AudioError::Empty(what.to_string()));
    }
    Ok(audio)
}

fn check_layout(rate: u32, channels: usize, what: &str) -> Result<(), AudioError> {
    let unsupported = |message: String| AudioError::Unsupported {
        what: what.to_string(),
        message,
    };
    if rate == 0 || rate > MAX_SAMPLE_RATE {
        return Err(unsupported(format!(
            "sample rate {rate} Hz is outside 1..={MAX_SAMPLE_RATE} Hz"
        )));
    }
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(unsupported(format!(
            "{channels} channels is outside 1..={MAX_CHANNELS}"
        )));
    }
    Ok(())
}

fn decode_wav(bytes: &[u8], what: &str) -> Result<Audio, AudioError> {
    let corrupt = |e: hound::Error| AudioError::Corrupt {
        what: what.to_string(),
        message: e.to_string(),
    };
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(corrupt)?;
    let spec = reader.spec();
    let channels = spec.channels as usize;
    check_layout(spec.sample_rate, channels, what)?;
    // Capacity from the header, but never more than the bytes present could hold.
    let claimed = reader.len() as usize;
    let possible = bytes.len() / (spec.bits_per_sample as usize / 8).max(1);
    if claimed / channels > MAX_FRAMES {
        return Err(AudioError::Unsupported {
            what: what.to_string(),
            message: format!(
                "{} frames is more than the limit of {MAX_FRAMES}",
                claimed / channels
            ),
        });
    }
    let mut samples = Vec::with_capacity(claimed.min(possible));
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => {
            for s in reader.into_samples::<f32>() {
                samples.push(s.map_err(corrupt)?);
            }
        }
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            for s in reader.into_samples::<i32>() {
                samples.push((s.map_err(corrupt)? as f64 * scale) as f32);
            }
        }
        (format, bits) => {
            return Err(AudioError::Unsupported {
                what: what.to_string(),
                message: format!("{bits}-bit {format:?} WAV samples are not supported"),
            });
        }
    }
    if samples.len() % channels != 0 {
        samples.truncate(samples.len() - samples.len() % channels);
    }
    Ok(Audio {
        sample_rate: spec.sample_rate,
        channels,
        samples,
    })
}

fn decode_symphonia(bytes: &[u8], what: &str) -> Result<Audio, AudioError> {
    let corrupt = |e: SymphoniaError| AudioError::Corrupt {
        what: what.to_string(),
        message: e.to_string(),
    };
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            source,
            // Gapless: the decoder drops the encoder's padding, so the length is the stream's (as
            // libvorbis reports it).
            &FormatOptions {
                enable_gapless: true,
                ..Default::default()
            },
            &MetadataOptions::default(),
        )
        .map_err(|_| AudioError::UnknownFormat(what.to_string()))?;
    let mut format = probed.format;
    let track = format
        .default_track()
        .ok_or_else(|| AudioError::Empty(what.to_string()))?;
    let params = track.codec_params.clone();
    let track_id = track.id;
    let rate = params.sample_rate.ok_or_else(|| AudioError::Corrupt {
        what: what.to_string(),
        message: "no sample rate in the stream header".into(),
    })?;
    let channels = params.channels.map(|c| c.count()).unwrap_or(0);
    check_layout(rate, channels, what)?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(corrupt)?;
    let mut samples: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => return Err(corrupt(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = decoder.decode(&packet).map_err(corrupt)?;
        let spec = *decoded.spec();
        if spec.channels.count() != channels || spec.rate != rate {
            return Err(AudioError::Corrupt {
                what: what.to_string(),
                message: "the stream changes channel count or sample rate midway".into(),
            });
        }
        let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        buffer.copy_interleaved_ref(decoded);
        samples.extend_from_slice(buffer.samples());
        if samples.len() / channels > MAX_FRAMES {
            return Err(AudioError::Unsupported {
                what: what.to_string(),
                message: format!("more than the limit of {MAX_FRAMES} frames"),
            });
        }
    }
    if let Some(claimed) = params.n_frames {
        let got = (samples.len() / channels) as u64;
        if got < claimed {
            return Err(AudioError::Corrupt {
                what: what.to_string(),
                message: format!("the header claims {claimed} frames, the stream holds {got}"),
            });
        }
        samples.truncate(claimed as usize * channels);
    }
    Ok(Audio {
        sample_rate: rate,
        channels,
        samples,
    })
}
