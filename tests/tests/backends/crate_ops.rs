//! The GPU paths of single crates (wgpu, and CUDA where there is a GPU), against their host or
//! brute-force references: the audio front-end on the device and the exact vector index. They
//! live here, beside the other backend tests, because every test binary that names a GPU
//! backend compiles its whole fusion and CubeCL stack (about 4.5 CPU-minutes each in CI): one
//! such binary, not three.

#![cfg_attr(
    not(any(feature = "wgpu", feature = "cuda")),
    allow(dead_code, unused_imports)
)]

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// The device log-mel (`mm_audio::device::DeviceMel`) on backend `B` against the host
/// extractor, in the Whisper setting (n_fft 400: DFT by matrix product) and the librosa-default
/// one (n_fft 2048: Burn's rfft). Every signal of the batch is compared:
/// framing with Burn's `unfold` once read back wrong values for all but the first signal at
/// n_fft 2048.
fn audio_features_agree_with_the_host<B: Backend>(device: &B::Device) {
    use mm_audio::device::DeviceMel;
    use mm_audio::{MelConfig, MelExtractor, load_audio};
    let fixtures = mm_data::package_dir!().join("../crates/mm-audio/tests/fixtures/librosa");
    let settings = [
        ("synth_16000.wav", MelConfig::whisper()),
        ("synth_22050.wav", MelConfig::librosa(22_050)),
    ];
    for (name, cfg) in settings {
        let y = load_audio(&fixtures.join(name)).unwrap().to_mono();
        let host = MelExtractor::new(cfg)
            .unwrap()
            .log_mel(&y, Some(80.0))
            .unwrap();
        let mel = DeviceMel::<B>::new(cfg, device).unwrap();
        let batch = Tensor::<B, 2>::from_data(TensorData::new(y.repeat(2), [2, y.len()]), device);
        let out = mel.log_mel(batch, Some(80.0)).unwrap();
        assert_eq!(out.dims(), [2, host.rows, host.frames]);
        let got = out.into_data().convert::<f32>().to_vec::<f32>().unwrap();
        for (i, (a, b)) in got
            .iter()
            .zip(host.data.iter().chain(&host.data))
            .enumerate()
        {
            let err = (*a as f64 - b).abs();
            assert!(
                err < 1e-4 * b.abs() + 2e-3,
                "{name} element {i}: device {a} vs host {b} dB"
            );
        }
    }
}

/// The exact index on backend `B`, tiled and filled in two additions, finds what brute force
/// finds.
fn exact_index_matches_brute_force<B: Backend>(device: &B::Device)
where
    B::Device: Send + Sync,
{
    use mm_data::synth::vectors::random_unit_vectors;
    use mm_retrieval::{ExactIndex, VectorIndex};
    let dim = 32;
    let data = random_unit_vectors(2000, dim, 11);
    let queries = random_unit_vectors(20, dim, 12);
    let mut index = ExactIndex::<B>::new(dim, device).with_tile(700);
    index.add(&data[..900 * dim]).unwrap();
    index.add(&data[900 * dim..]).unwrap();
    let found = index.search_batch(&queries, 5).unwrap();
    for (q, hits) in queries.chunks(dim).zip(&found) {
        let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
        assert_eq!(ids, brute_force(&data, q, 5));
    }
}

/// The ids of `query`'s `k` highest dot products in `data` (rows of `query.len()`), ties by id.
fn brute_force(data: &[f32], query: &[f32], k: usize) -> Vec<u64> {
    let mut scored: Vec<(f32, u64)> = data
        .chunks(query.len())
        .enumerate()
        .map(|(i, row)| (row.iter().zip(query).map(|(a, b)| a * b).sum(), i as u64))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, i)| i).collect()
}

#[cfg(feature = "wgpu")]
#[test]
fn audio_features_on_wgpu_agree_with_the_host() {
    use burn::backend::{Wgpu, wgpu::WgpuDevice};
    audio_features_agree_with_the_host::<Wgpu>(&WgpuDevice::DefaultDevice);
}

#[cfg(feature = "wgpu")]
#[test]
fn exact_index_on_wgpu_matches_brute_force() {
    use burn::backend::{Wgpu, wgpu::WgpuDevice};
    exact_index_matches_brute_force::<Wgpu>(&WgpuDevice::DefaultDevice);
}

#[cfg(feature = "cuda")]
#[test]
fn audio_features_on_cuda_agree_with_the_host() {
    if let Some(device) = crate::devices::cuda_device() {
        audio_features_agree_with_the_host::<burn::backend::Cuda>(&device);
    }
}

#[cfg(feature = "cuda")]
#[test]
fn exact_index_on_cuda_matches_brute_force() {
    if let Some(device) = crate::devices::cuda_device() {
        exact_index_matches_brute_force::<burn::backend::Cuda>(&device);
    }
}
