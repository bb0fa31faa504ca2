//! Decoding every WAV sample format, FLAC and Ogg Vorbis; the downmix; resampling; and bad
//! input of every class, including seeded mutations of valid files (never a panic).

use std::path::PathBuf;

use mm_audio::decode::{AudioError, MAX_SAMPLE_RATE};
use mm_audio::resample::resample;
use mm_audio::{decode_audio, load_audio};
use mm_data::matrix::read_matrix;

fn fixtures() -> PathBuf {
    mm_data::package_dir!().join("tests/fixtures/librosa")
}

/// A WAV in memory, written by hound.
fn wav(
    spec: hound::WavSpec,
    frames: usize,
    write: impl Fn(&mut hound::WavWriter<&mut std::io::Cursor<Vec<u8>>>, usize, usize),
) -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for f in 0..frames {
            for c in 0..spec.channels as usize {
                write(&mut w, f, c);
            }
        }
        w.finalize().unwrap();
    }
    cursor.into_inner()
}

fn spec(channels: u16, bits: u16, float: bool) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: 8000,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    }
}

#[test]
fn every_wav_sample_format_scales_like_libsndfile() {
    // Full-scale negative, zero and a positive value in every integer depth: x / 2^(bits-1).
    for bits in [8u16, 16, 24, 32] {
        let full = 1i64 << (bits - 1);
        let values = [-full, 0, full / 2];
        let bytes = wav(spec(1, bits, false), 3, |w, f, _| {
            w.write_sample(values[f] as i32).unwrap()
        });
        let audio = decode_audio(&bytes, "int").unwrap();
        assert_eq!(audio.samples, vec![-1.0, 0.0, 0.5], "{bits}-bit");
    }
    let bytes = wav(spec(1, 32, true), 3, |w, f, _| {
        w.write_sample([0.25f32, -0.75, 1.5][f]).unwrap()
    });
    assert_eq!(
        decode_audio(&bytes, "float").unwrap().samples,
        vec![0.25, -0.75, 1.5]
    );
}

#[test]
fn stereo_downmixes_to_the_channel_mean() {
    let bytes = wav(spec(2, 16, false), 4, |w, f, c| {
        w.write_sample(if c == 0 {
            (f as i16) * 1000
        } else {
            -(f as i16) * 3000
        })
        .unwrap()
    });
    let audio = decode_audio(&bytes, "stereo").unwrap();
    assert_eq!(
        (audio.channels, audio.frames(), audio.sample_rate),
        (2, 4, 8000)
    );
    assert_eq!(audio.channel(1)[2], -6000.0 / 32768.0);
    let mono = audio.to_mono();
    assert_eq!(mono.len(), 4);
    assert!((mono[3] - (3000.0 - 9000.0) / 2.0 / 32768.0).abs() < 1e-7);
}

#[test]
fn flac_and_ogg_vorbis_decode() {
    let flac = load_audio(&fixtures().join("tabla_tun2.flac")).unwrap();
    assert_eq!(
        (flac.sample_rate, flac.channels, flac.frames()),
        (44_100, 1, 118_784)
    );
    let ogg = load_audio(&fixtures().join("synth_22050.ogg")).unwrap();
    assert_eq!((ogg.sample_rate, ogg.channels), (22_050, 1));
    // libsndfile's decoding of the same file (libvorbis): the decoders agree to float precision.
    let want = read_matrix(&fixtures().join("synth_22050_ogg_decoded.npy")).unwrap();
    assert_eq!(ogg.frames(), want.rows);
    let worst = ogg
        .samples
        .iter()
        .zip(&want.data)
        .fold(0.0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
    assert!(worst < 1e-4, "max difference to libsndfile {worst}");
}

#[test]
fn resampling_is_band_limited_and_keeps_the_length() {
    let sine = |f: f64, sr: f64, n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| (std::f64::consts::TAU * f * i as f64 / sr).sin() as f32)
            .collect()
    };
    let x = sine(1000.0, 44_100.0, 44_100);
    let y = resample(&x, 44_100, 16_000).unwrap();
    assert_eq!(y.len(), 16_000);
    let want = sine(1000.0, 16_000.0, 16_000);
    let worst = y[1000..15_000]
        .iter()
        .zip(&want[1000..15_000])
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst < 1e-3,
        "1 kHz tone after resampling: max error {worst}"
    );
    // A 10 kHz tone is above the new Nyquist frequency (8 kHz) and must be filtered out.
    let high = resample(&sine(10_000.0, 44_100.0, 44_100), 44_100, 16_000).unwrap();
    let rms = (high[1000..15_000].iter().map(|v| v * v).sum::<f32>() / 14_000.0).sqrt();
    assert!(rms < 1e-2, "aliased energy {rms}");
    assert_eq!(resample(&x, 16_000, 16_000).unwrap(), x);
}

#[test]
fn malformed_files_are_named_errors() {
    let good = wav(spec(1, 16, false), 100, |w, f, _| {
        w.write_sample(f as i16).unwrap()
    });
    let err = |bytes: &[u8]| decode_audio(bytes, "clip.wav").unwrap_err();
    // Truncated header.
    assert!(matches!(err(&good[..20]), AudioError::Corrupt { .. }));
    // Wrong magic.
    assert!(matches!(
        err(b"ID3\x03 an mp3, say"),
        AudioError::UnknownFormat(_)
    ));
    assert!(matches!(err(b""), AudioError::UnknownFormat(_)));
    // Zero-length data.
    let empty = wav(spec(1, 16, false), 0, |_, _, _| {});
    assert!(matches!(err(&empty), AudioError::Empty(_)));
    // More data claimed than present.
    let e = err(&good[..good.len() - 50]);
    assert!(matches!(e, AudioError::Corrupt { .. }), "{e}");
    // Absurd sample rate and channel count (patched into the fmt chunk).
    let mut rate = good.clone();
    rate[24..28].copy_from_slice(&1_000_000u32.to_le_bytes());
    rate[28..32].copy_from_slice(&2_000_000u32.to_le_bytes()); // byte rate, kept consistent
    let e = err(&rate);
    assert!(
        e.to_string()
            .contains(&format!("outside 1..={MAX_SAMPLE_RATE}")),
        "{e}"
    );
    let mut channels = good.clone();
    channels[22..24].copy_from_slice(&1000u16.to_le_bytes());
    let e = err(&channels);
    assert!(
        matches!(
            e,
            AudioError::Unsupported { .. } | AudioError::Corrupt { .. }
        ),
        "{e}"
    );
    // A FLAC cut short.
    let flac = std::fs::read(fixtures().join("tabla_tun2.flac")).unwrap();
    let e = err(&flac[..flac.len() / 2]);
    assert!(
        e.to_string().contains("claims 118784 frames") || matches!(e, AudioError::Corrupt { .. }),
        "{e}"
    );
    // A missing file names its path.
    let e = load_audio(std::path::Path::new("/no/such/clip.wav")).unwrap_err();
    assert!(e.to_string().contains("/no/such/clip.wav"));
}

#[test]
fn mutated_files_never_panic() {
    let inputs = [
        wav(spec(2, 24, false), 64, |w, f, c| {
            w.write_sample((f * 1000 + c) as i32).unwrap()
        }),
        std::fs::read(fixtures().join("tabla_tun2.flac")).unwrap()[..4096].to_vec(),
        std::fs::read(fixtures().join("synth_22050.ogg")).unwrap(),
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for input in &inputs {
        for _ in 0..300 {
            let mut bytes = input.clone();
            match next() % 3 {
                0 => bytes.truncate((next() as usize) % bytes.len()),
                1 => {
                    for _ in 0..1 + next() % 8 {
                        let i = (next() as usize) % bytes.len();
                        bytes[i] = next() as u8;
                    }
                }
                _ => {
                    let i = (next() as usize) % bytes.len().saturating_sub(4).max(1);
                    let end = (i + 4).min(bytes.len());
                    bytes[i..end].fill(0xFF);
                }
            }
            let result =
                std::panic::catch_unwind(|| decode_audio(&bytes, "mutant").map(|a| a.frames()));
            assert!(result.is_ok(), "decoder panicked on a mutated input");
        }
    }
}

/// Found by the `audio` fuzz target: a FLAC Vorbis comment (or picture) length that overruns
/// its metadata block made symphonia ask for up to 4 GiB before the read failed. It is now a
/// named error before symphonia sees the file; the file without the bad block still decodes.
#[test]
fn flac_metadata_lengths_past_their_block_are_named() {
    let flac = std::fs::read(fixtures().join("tabla_tun2.flac")).unwrap();
    // "fLaC" and the STREAMINFO block (4-byte head + 34 bytes), marked not last.
    let mut head = flac[..42].to_vec();
    head[4] &= 0x7f;
    let rest_after_metadata = {
        // Skip the fixture's own metadata blocks to reach its first frame.
        let mut at = 4;
        loop {
            let last = flac[at] & 0x80 != 0;
            let len = u32::from_be_bytes([0, flac[at + 1], flac[at + 2], flac[at + 3]]) as usize;
            at += 4 + len;
            if last {
                break at;
            }
        }
    };
    let with_block = |kind: u8, body: &[u8]| {
        let mut bytes = head.clone();
        bytes.push(0x80 | kind);
        bytes.extend(&(body.len() as u32).to_be_bytes()[1..]);
        bytes.extend(body);
        bytes.extend(&flac[rest_after_metadata..]);
        bytes
    };
    // A vendor string "of" 4 GiB - 16 bytes in a 12-byte comment block.
    let mut comment = (u32::MAX - 15).to_le_bytes().to_vec();
    comment.extend([0u8; 8]);
    let err = decode_audio(&with_block(4, &comment), "bad.flac").unwrap_err();
    assert!(matches!(err, AudioError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("Vorbis comment vendor string"),
        "{err}"
    );
    // A picture whose data length overruns its block.
    let mut picture = vec![0u8; 4];
    picture.extend(0u32.to_be_bytes()); // MIME type: empty
    picture.extend(0u32.to_be_bytes()); // description: empty
    picture.extend([0u8; 16]);
    picture.extend(1_000_000u32.to_be_bytes());
    picture.extend([0u8; 4]);
    let err = decode_audio(&with_block(6, &picture), "bad.flac").unwrap_err();
    assert!(err.to_string().contains("picture data"), "{err}");
    // A well-formed comment block: the file decodes as before.
    let mut comment = 3u32.to_le_bytes().to_vec();
    comment.extend(b"abc");
    comment.extend(1u32.to_le_bytes());
    comment.extend(5u32.to_le_bytes());
    comment.extend(b"A=bcd");
    let audio = decode_audio(&with_block(4, &comment), "good.flac").unwrap();
    assert_eq!(audio.frames(), 118_784);
}
