//! Mel spectrograms, log-mel and MFCCs against librosa 0.11 on committed synthetic and real
//! signals, in the Whisper-style and librosa-default-style settings (reference made by
//! `tests/fixtures/librosa/generate.py`); and the device front-end against the host one (on
//! wgpu: `tests/tests/backends/crate_ops.rs`, with the other wgpu tests).

use std::path::PathBuf;

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData, backend::Backend};
use mm_audio::device::DeviceMel;
use mm_audio::mel::MelScale;
use mm_audio::stft::{PadMode, Window};
use mm_audio::{MelConfig, MelExtractor, load_audio};
use mm_data::matrix::read_matrix;
use serde_json::Value;

fn fixtures() -> PathBuf {
    mm_data::package_dir!().join("tests/fixtures/librosa")
}

fn config(case: &Value) -> MelConfig {
    let u = |k: &str| case[k].as_u64().unwrap() as usize;
    let mut cfg = MelConfig::new(u("sr") as u32, u("n_fft"), u("hop_length"), u("n_mels"));
    if case["htk"].as_bool() == Some(true) {
        cfg.scale = MelScale::Htk;
    }
    if let Some(p) = case["power"].as_f64() {
        cfg.power = p;
    }
    if case["window"].as_str() == Some("hamming") {
        cfg.stft.window = Window::Hamming;
    }
    if case["pad_mode"].as_str() == Some("reflect") {
        cfg.stft.pad_mode = PadMode::Reflect;
    }
    cfg
}

fn signal(name: &str) -> Vec<f32> {
    load_audio(&fixtures().join(name)).unwrap().to_mono()
}

#[test]
fn features_match_librosa_within_1e4_relative() {
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("cases.json")).unwrap())
            .unwrap();
    let cases = meta["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 30);
    for case in cases {
        let extractor = MelExtractor::new(config(case)).unwrap();
        let y = signal(case["signal"].as_str().unwrap());
        let variant = case["variant"].as_str().unwrap();
        let ours = match variant {
            "db" => extractor.log_mel(&y, Some(80.0)),
            "mfcc" => extractor.mfcc(&y, 20),
            _ => extractor.mel(&y),
        }
        .unwrap();
        let want = read_matrix(&fixtures().join(case["file"].as_str().unwrap())).unwrap();
        assert_eq!((ours.rows, ours.frames), (want.rows, want.cols), "{case}");
        // Decibels and MFCCs cross zero: there the tolerance is 1e-4 absolute.
        let floor = if variant == "db" || variant == "mfcc" {
            1e-4
        } else {
            0.0
        };
        let mut worst = 0.0f64;
        for (a, b) in ours.data.iter().zip(&want.data) {
            let err = (a - b).abs() / (b.abs()).max(floor / 1e-4).max(f64::MIN_POSITIVE);
            worst = worst.max(err);
        }
        assert!(
            worst < 1e-4,
            "{} {}: worst relative error {worst}",
            case["signal"],
            case["file"]
        );
    }
}

#[test]
fn device_features_agree_with_the_host_in_both_settings() {
    let settings = [
        ("synth_16000.wav", MelConfig::whisper()), // n_fft 400: DFT by matrix product
        ("synth_22050.wav", MelConfig::librosa(22_050)), // n_fft 2048: Burn's rfft
    ];
    device_agrees_with_host::<Flex>(&Default::default(), &settings);
}

fn device_agrees_with_host<B: Backend>(device: &B::Device, settings: &[(&str, MelConfig)]) {
    for &(name, cfg) in settings {
        let y = signal(name);
        let host = MelExtractor::new(cfg)
            .unwrap()
            .log_mel(&y, Some(80.0))
            .unwrap();
        let mel = DeviceMel::<B>::new(cfg, device).unwrap();
        let batch = Tensor::<B, 2>::from_data(TensorData::new(y.repeat(2), [2, y.len()]), device);
        let out = mel.log_mel(batch, Some(80.0)).unwrap();
        assert_eq!(out.dims(), [2, host.rows, host.frames]);
        let got = out.into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let both = host.data.iter().chain(&host.data);
        for (i, (a, b)) in got.iter().zip(both).enumerate() {
            let err = (*a as f64 - b).abs();
            assert!(
                err < 1e-4 * b.abs() + 2e-3,
                "{name} element {i}: device {a} vs host {b} dB"
            );
        }
    }
}
