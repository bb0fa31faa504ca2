//! The captioner and its decoding against transformers: a tiny random
//! `VisionEncoderDecoderModel` (ViT + BERT decoder, `fixtures/hf_caption/generate.py`) loads
//! into ours and gives transformers' encoder states and decoder logits within 1e-4, and
//! `generate()`'s tokens and sequence scores (within 1e-5) for every case of the grid (beams
//! 1, 3, 5 x length_penalty 0, 1, 2 x early_stopping true / false / never, and
//! num_return_sequences, no_repeat_ngram_size and suppress_tokens cases), with the key/value
//! cache and without;
//! an exported folder loads back the same; broken folders are named errors.

use std::path::PathBuf;

use burn::backend::{Flex, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use mm_generate::caption::{LoadedCaptioner, export_hf_captioner, load_hf_captioner};
use mm_generate::decode::{EarlyStopping, GenerationConfig};
use serde_json::Value;

const STATE_TOLERANCE: f32 = 1e-4;
const SCORE_TOLERANCE: f32 = 1e-5;

fn fixtures() -> PathBuf {
    mm_data::package_dir!().join("tests/fixtures/hf_caption")
}

fn floats(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap() as f32],
        _ => panic!("not a number array"),
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
        .unwrap()
}

fn pixels<B: Backend>(exp: &Value) -> Tensor<B, 4> {
    Tensor::from_data(
        TensorData::new(floats(&exp["pixel_values"]), [2, 3, 32, 32]),
        &Default::default(),
    )
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

fn check_states<B: Backend>(loaded: &LoadedCaptioner<B>, exp: &Value, what: &str) {
    let hidden = loaded.model.encoder.forward(pixels::<B>(exp));
    let d = max_diff(&host(hidden), &floats(&exp["encoder_hidden"]));
    assert!(d <= STATE_TOLERANCE, "{what} encoder: {d}");
    let ids: Vec<i64> = floats(&exp["forced_ids"])
        .iter()
        .map(|&x| x as i64)
        .collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [2, 6]), &Default::default());
    let logits = loaded.model.forward(pixels::<B>(exp), ids);
    let d = max_diff(&host(logits), &floats(&exp["logits"]));
    assert!(d <= STATE_TOLERANCE, "{what} logits: {d}");
}

fn config_of(case: &Value, base: &GenerationConfig) -> GenerationConfig {
    let early = match &case["early_stopping"] {
        Value::Bool(true) => EarlyStopping::True,
        Value::Bool(false) => EarlyStopping::False,
        _ => EarlyStopping::Never,
    };
    GenerationConfig {
        num_beams: case["num_beams"].as_u64().unwrap() as usize,
        length_penalty: case["length_penalty"].as_f64().unwrap() as f32,
        early_stopping: early,
        max_new_tokens: case["max_new_tokens"].as_u64().unwrap() as usize,
        num_return_sequences: case["num_return_sequences"].as_u64().unwrap_or(1) as usize,
        no_repeat_ngram_size: case["no_repeat_ngram_size"].as_u64().unwrap_or(0) as usize,
        suppress_tokens: case["suppress_tokens"]
            .as_array()
            .map(|ids| ids.iter().map(|t| t.as_u64().unwrap() as u32).collect())
            .unwrap_or_default(),
        ..base.clone()
    }
}

/// transformers' sequence without its start token, cut after the end token (its padding).
fn generated(sequence: &Value, eos: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for t in sequence.as_array().unwrap()[1..].iter() {
        let t = t.as_u64().unwrap() as u32;
        out.push(t);
        if t == eos {
            break;
        }
    }
    out
}

fn check_grid<B: Backend>(loaded: &LoadedCaptioner<B>, exp: &Value) {
    let images = pixels::<B>(exp);
    let mut checked = 0;
    for case in exp["cases"].as_array().unwrap() {
        let config = config_of(&case["case"], &loaded.generation);
        for (i, out) in case["outputs"].as_array().unwrap().iter().enumerate() {
            let image = images.clone().narrow(0, i, 1);
            let cached = loaded.model.caption(image.clone(), &config, true).unwrap();
            let plain = loaded.model.caption(image, &config, false).unwrap();
            let want: Vec<Vec<u32>> = out["sequences"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| generated(s, config.eos_token_id))
                .collect();
            let scores = floats(&out["scores"]);
            let got: Vec<Vec<u32>> = cached.iter().map(|h| h.tokens.clone()).collect();
            assert_eq!(got, want, "tokens of {} image {i}", case["case"]);
            let plain_tokens: Vec<Vec<u32>> = plain.iter().map(|h| h.tokens.clone()).collect();
            assert_eq!(
                plain_tokens, want,
                "no-cache tokens of {} image {i}",
                case["case"]
            );
            for (h, s) in cached.iter().zip(&scores) {
                assert!(
                    (h.score - s).abs() <= SCORE_TOLERANCE,
                    "score of {} image {i}: {} vs {s}",
                    case["case"],
                    h.score
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * 33);
}

#[test]
fn the_grid_matches_transformers_on_flex() {
    let exp = expected();
    let loaded = load_hf_captioner::<Flex>(&fixtures().join("model"), &Default::default()).unwrap();
    assert_eq!(loaded.generation.decoder_start_token_id, 2);
    assert_eq!(loaded.generation.eos_token_id, 3);
    check_states(&loaded, &exp, "flex");
    check_grid(&loaded, &exp);
}

#[test]
fn states_match_on_ndarray_and_an_export_loads_back() {
    let exp = expected();
    let loaded =
        load_hf_captioner::<NdArray>(&fixtures().join("model"), &Default::default()).unwrap();
    check_states(&loaded, &exp, "ndarray");
    let dir = tempfile::tempdir().unwrap();
    export_hf_captioner(&loaded.model, &loaded.config, &loaded.tokenizer, dir.path()).unwrap();
    let back = load_hf_captioner::<NdArray>(dir.path(), &Default::default()).unwrap();
    assert_eq!(back.config, loaded.config);
    check_states(&back, &exp, "exported");
    let text = back.tokenizer.decode(&[2, 5, 18, 3]).unwrap();
    assert_eq!(text, "a circle");
}

#[test]
fn broken_folders_are_named() {
    let src = fixtures().join("model");
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let config_path = dir.path().join("config.json");
    let original = std::fs::read_to_string(&config_path).unwrap();
    let load = || load_hf_captioner::<NdArray>(dir.path(), &Default::default());

    let mut c: Value = serde_json::from_str(&original).unwrap();
    c["decoder"]["hidden_size"] = 32.into();
    std::fs::write(&config_path, c.to_string()).unwrap();
    let e = load().unwrap_err().to_string();
    assert!(e.contains("decoder.bert.embeddings"), "{e}");

    let mut c: Value = serde_json::from_str(&original).unwrap();
    c["decoder"]["add_cross_attention"] = false.into();
    std::fs::write(&config_path, c.to_string()).unwrap();
    let e = load().unwrap_err().to_string();
    assert!(e.contains("add_cross_attention"), "{e}");

    let mut c: Value = serde_json::from_str(&original).unwrap();
    c["encoder"]["model_type"] = "swin".into();
    std::fs::write(&config_path, c.to_string()).unwrap();
    let e = load().unwrap_err().to_string();
    assert!(e.contains("swin"), "{e}");

    std::fs::write(&config_path, &original).unwrap();
    let loaded = load().unwrap();
    let big = Tensor::<NdArray, 4>::zeros([1, 3, 64, 64], &Default::default());
    let e = loaded
        .model
        .caption(big, &loaded.generation, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("3x32x32"), "{e}");
    let small = Tensor::<NdArray, 4>::zeros([1, 3, 32, 32], &Default::default());
    let mut g = loaded.generation.clone();
    g.max_new_tokens = 40;
    let e = loaded
        .model
        .caption(small, &g, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("positions"), "{e}");

    // `suppress_tokens` in generation_config.json: read as transformers writes it, refused
    // when it is not a list of ids, or names a token the model does not have.
    let generation_path = dir.path().join("generation_config.json");
    let generation: Value =
        serde_json::from_str(&std::fs::read_to_string(&generation_path).unwrap()).unwrap();
    let with = |value: Value| {
        let mut g = generation.clone();
        g["suppress_tokens"] = value;
        std::fs::write(&generation_path, g.to_string()).unwrap();
    };
    with(serde_json::json!([23, 27]));
    assert_eq!(load().unwrap().generation.suppress_tokens, [23, 27]);
    with(serde_json::json!("23"));
    let e = load().unwrap_err().to_string();
    assert!(e.contains("suppress_tokens"), "{e}");
    with(serde_json::json!([23, -1]));
    let e = load().unwrap_err().to_string();
    assert!(e.contains("suppress_tokens"), "{e}");
    with(serde_json::json!([23, 640]));
    let loaded = load().unwrap();
    let small = Tensor::<NdArray, 4>::zeros([1, 3, 32, 32], &Default::default());
    let e = loaded
        .model
        .caption(small, &loaded.generation, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("suppress_tokens holds 640"), "{e}");
}
