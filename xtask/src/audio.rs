//! `cargo xtask audio mel --input FILE --out OUT.npy [...]`: the (n_mels, frames) mel
//! spectrogram of an audio file as float32 `.npy`, with librosa's defaults for every flag not
//! given (22,050 Hz, `n_fft` 2048, hop `n_fft / 4`, 128 mels, power 2, centred with zero
//! padding, Hann window, Slaney scale and norm).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use mm_audio::mel::MelScale;
use mm_audio::resample::resample;
use mm_audio::{MelConfig, MelExtractor, load_audio};
use mm_data::matrix::write_npy_f32;

/// Flags of `audio`.
#[derive(Args)]
pub struct AudioArgs {
    #[command(subcommand)]
    command: AudioCommand,
}

#[derive(Subcommand)]
enum AudioCommand {
    /// Mel spectrogram of a file (WAV, FLAC or Ogg Vorbis), written as float32 .npy.
    Mel(MelArgs),
}

#[derive(Args)]
struct MelArgs {
    /// Audio file.
    #[arg(long)]
    input: PathBuf,
    /// Rate the signal is resampled to first (librosa.load's default: 22050).
    #[arg(long, default_value_t = 22_050)]
    sr: u32,
    /// FFT size.
    #[arg(long, default_value_t = 2048)]
    n_fft: usize,
    /// Hop length (default n_fft / 4).
    #[arg(long)]
    hop: Option<usize>,
    /// Mel bands.
    #[arg(long, default_value_t = 128)]
    n_mels: usize,
    /// HTK mel scale instead of Slaney's.
    #[arg(long)]
    htk: bool,
    /// Exponent of the magnitude (2: power, 1: magnitude).
    #[arg(long, default_value_t = 2.0)]
    power: f64,
    /// Convert to decibels (power_to_db, top_db 80).
    #[arg(long)]
    db: bool,
    /// Output .npy.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `audio`.
pub fn run(args: AudioArgs) -> Result<()> {
    let AudioCommand::Mel(a) = args.command;
    let audio = load_audio(&a.input)?;
    let mono = resample(&audio.to_mono(), audio.sample_rate, a.sr)?;
    let mut cfg = MelConfig::new(a.sr, a.n_fft, a.hop.unwrap_or(a.n_fft / 4), a.n_mels);
    cfg.power = a.power;
    if a.htk {
        cfg.scale = MelScale::Htk;
    }
    let extractor = MelExtractor::new(cfg).context("mel settings")?;
    let features = if a.db {
        extractor.log_mel(&mono, Some(80.0))
    } else {
        extractor.mel(&mono)
    }
    .with_context(|| format!("features of {}", a.input.display()))?;
    write_npy_f32(
        &a.out,
        &[features.rows, features.frames],
        &features.to_f32(),
    )?;
    println!(
        "{}: {} Hz, {} channel(s), {:.2} s -> {} x {} ({}) in {}",
        a.input.display(),
        audio.sample_rate,
        audio.channels,
        audio.seconds(),
        features.rows,
        features.frames,
        if a.db { "dB" } else { "power" },
        a.out.display()
    );
    Ok(())
}
