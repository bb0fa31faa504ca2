//! The decoder's training dropout (`hidden_dropout_prob`): it reaches the saved folder, drops
//! on an autodiff backend (training) and never when decoding, and impossible rates are refused.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use mm_generate::caption::{Captioner, CaptionerConfig, export_hf_captioner, load_hf_captioner};

fn config(dropout: f64) -> CaptionerConfig {
    super::tiny_captioner_config(dropout)
}

fn logits<B: Backend>(model: &Captioner<B>) -> Vec<f32> {
    let device = Default::default();
    let pixels: Vec<f32> = (0..3 * 16 * 16)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![2i64, 5, 6, 7], [1, 4]), &device);
    let pixels = Tensor::<B, 4>::from_data(TensorData::new(pixels, [1, 3, 16, 16]), &device);
    model
        .forward(pixels, ids)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .unwrap()
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn dropout_is_saved_drops_in_training_and_never_in_decoding() {
    let _seeded = crate::seeded();
    let tokenizer = super::tiny_tokenizer();
    let with = tempfile::tempdir().unwrap();
    let without = tempfile::tempdir().unwrap();
    NdArray::<f32>::seed(&Default::default(), 5);
    let model = config(0.5).init::<NdArray>(&Default::default()).unwrap();
    export_hf_captioner(&model, &config(0.5), &tokenizer, with.path()).unwrap();
    export_hf_captioner(&model, &config(0.0), &tokenizer, without.path()).unwrap();
    let saved = std::fs::read_to_string(with.path().join("config.json")).unwrap();
    assert!(saved.contains("\"hidden_dropout_prob\": 0.5"), "{saved}");

    let decoding = load_hf_captioner::<NdArray>(with.path(), &Default::default()).unwrap();
    let plain =
        load_hf_captioner::<Autodiff<NdArray>>(without.path(), &Default::default()).unwrap();
    let training =
        load_hf_captioner::<Autodiff<NdArray>>(with.path(), &Default::default()).unwrap();
    assert_eq!(decoding.config.decoder.hidden_dropout_prob, 0.5);
    let (d, p, t) = (
        logits(&decoding.model),
        logits(&plain.model),
        logits(&training.model),
    );
    // Decoding (no autodiff) is the model without dropout; training drops.
    assert!(
        largest_difference(&d, &p) < 1e-5,
        "{}",
        largest_difference(&d, &p)
    );
    assert!(
        largest_difference(&t, &p) > 1e-2,
        "{}",
        largest_difference(&t, &p)
    );

    let Err(err) = config(1.0).init::<NdArray>(&Default::default()) else {
        panic!("a rate of 1 drops everything and must be refused");
    };
    let err = err.to_string();
    assert!(err.contains("hidden_dropout_prob"), "{err}");
}
