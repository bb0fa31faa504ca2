//! HuggingFace `VisionEncoderDecoderModel` folders (ViT encoder, BERT decoder) in and out:
//! `config.json` with its `encoder` and `decoder` parts, weights in any form
//! [`mm_core::hf::files`] reads, `generation_config.json` for the special tokens and decoding
//! defaults, and the BERT tokenizer (`tokenizer.json` or `vocab.txt`). Loading is strict: a
//! weight left over or missing, or a decoder transformers would not build the same way, is an
//! error that names it.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use mm_core::hf::{HfError, HfParams, ParamVisitor, WeightMap, WeightWriter};
use mm_text::WordPieceTokenizer;
use mm_text::tokenizer::TokenizerError;
use mm_vision::{ClipImageProcessor, Filter, ViTConfig};
use serde_json::{Value, json};

use super::data::vit_processor;
use super::decoder::BertDecoderConfig;
use super::model::{Captioner, CaptionerConfig};
use crate::decode::{EarlyStopping, GenerateError, GenerationConfig};

/// Why a captioner could not be loaded, saved or run.
#[derive(Debug, thiserror::Error)]
pub enum CaptionError {
    /// A file of the folder is missing or wrong.
    #[error("{path}: {reason}")]
    Folder {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The sizes do not fit together.
    #[error("captioner config: {0}")]
    Config(String),
    /// Weights could not be read or written.
    #[error(transparent)]
    Weights(#[from] HfError),
    /// The tokenizer could not be read, written or used.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// Decoding failed.
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

impl From<mm_core::nn::ConfigError> for CaptionError {
    fn from(e: mm_core::nn::ConfigError) -> Self {
        CaptionError::Config(e.0)
    }
}

/// transformers' keys: `encoder.` (ViTModel), `enc_to_dec_proj.`, `decoder.` (BertLMHeadModel).
impl<B: Backend> HfParams<B> for Captioner<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.encoder.visit_hf(&format!("{prefix}encoder."), v);
        if let Some(p) = self.enc_to_dec_proj.as_mut() {
            p.visit_hf(&format!("{prefix}enc_to_dec_proj."), v);
        }
        self.decoder.visit_hf(&format!("{prefix}decoder."), v);
    }
}

/// A loaded captioner with what decoding needs.
#[derive(Debug)]
pub struct LoadedCaptioner<B: Backend> {
    /// The model.
    pub model: Captioner<B>,
    /// Its sizes and special tokens.
    pub config: CaptionerConfig,
    /// The folder's decoding defaults (`generation_config.json`), special tokens included.
    pub generation: GenerationConfig,
    /// The folder's tokenizer.
    pub tokenizer: WordPieceTokenizer,
    /// The folder's image processor (`preprocessor_config.json`, else ViT's defaults at the
    /// encoder's size).
    pub processor: ClipImageProcessor,
}

fn read_json(path: &Path) -> Result<Value, CaptionError> {
    let text = std::fs::read_to_string(path).map_err(|e| CaptionError::Folder {
        path: path.into(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| CaptionError::Folder {
        path: path.into(),
        reason: format!("not JSON: {e}"),
    })
}

fn token_id(raw: &Value, key: &str) -> Option<u32> {
    match raw.get(key)? {
        Value::Number(n) => n.as_u64().map(|x| x as u32),
        Value::Array(a) => a.first()?.as_u64().map(|x| x as u32),
        _ => None,
    }
}

/// The model config of a `config.json` value (`path` names it in errors).
pub fn captioner_config(raw: &Value, path: &Path) -> Result<CaptionerConfig, CaptionError> {
    let bad = |reason: String| CaptionError::Folder {
        path: path.into(),
        reason,
    };
    let kind = |part: &str| {
        raw[part]["model_type"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    if raw["model_type"] != "vision-encoder-decoder"
        || kind("encoder") != "vit"
        || kind("decoder") != "bert"
    {
        return Err(bad(format!(
            "not a ViT + BERT VisionEncoderDecoderModel (model_type {}, encoder {}, decoder {})",
            raw["model_type"],
            kind("encoder"),
            kind("decoder")
        )));
    }
    let d = &raw["decoder"];
    if d["is_decoder"] != true || d["add_cross_attention"] != true {
        return Err(bad(
            "the decoder needs is_decoder and add_cross_attention".into()
        ));
    }
    if let Some(p) = d["position_embedding_type"]
        .as_str()
        .filter(|p| *p != "absolute")
    {
        return Err(bad(format!(
            "position_embedding_type {p} is not supported (only absolute)"
        )));
    }
    if !d["cross_attention_hidden_size"].is_null() {
        return Err(bad("cross_attention_hidden_size is not supported".into()));
    }
    let encoder: ViTConfig =
        serde_json::from_value(raw["encoder"].clone()).map_err(|e| bad(format!("encoder: {e}")))?;
    let decoder: BertDecoderConfig =
        serde_json::from_value(d.clone()).map_err(|e| bad(format!("decoder: {e}")))?;
    let start = token_id(raw, "decoder_start_token_id")
        .or_else(|| token_id(d, "decoder_start_token_id"))
        .or_else(|| token_id(d, "bos_token_id"))
        .ok_or_else(|| bad("no decoder_start_token_id".into()))?;
    let pad = token_id(raw, "pad_token_id")
        .or_else(|| token_id(d, "pad_token_id"))
        .unwrap_or(0);
    let eos = token_id(raw, "eos_token_id")
        .or_else(|| token_id(d, "eos_token_id"))
        .or_else(|| token_id(d, "sep_token_id"))
        .ok_or_else(|| bad("no eos_token_id".into()))?;
    Ok(CaptionerConfig {
        encoder,
        decoder,
        decoder_start_token_id: start,
        eos_token_id: eos,
        pad_token_id: pad,
    })
}

/// The decoding defaults of a folder: the model's special tokens, overridden by
/// `generation_config.json` (special tokens, `num_beams`, `length_penalty`, `early_stopping`,
/// `no_repeat_ngram_size`, `max_new_tokens` or `max_length`) when it is there.
fn generation_defaults(
    dir: &Path,
    config: &CaptionerConfig,
) -> Result<GenerationConfig, CaptionError> {
    let mut g = config.generation();
    let path = dir.join("generation_config.json");
    if !path.is_file() {
        return Ok(g);
    }
    let raw = read_json(&path)?;
    let bad = |reason: String| CaptionError::Folder {
        path: path.clone(),
        reason,
    };
    if let Some(x) = token_id(&raw, "decoder_start_token_id") {
        g.decoder_start_token_id = x;
    }
    if let Some(x) = token_id(&raw, "eos_token_id") {
        g.eos_token_id = x;
    }
    if let Some(x) = token_id(&raw, "pad_token_id") {
        g.pad_token_id = x;
    }
    if let Some(x) = raw["num_beams"].as_u64() {
        g.num_beams = x as usize;
    }
    if let Some(x) = raw["length_penalty"].as_f64() {
        g.length_penalty = x as f32;
    }
    if let Some(x) = raw["no_repeat_ngram_size"].as_u64() {
        g.no_repeat_ngram_size = x as usize;
    }
    match &raw["suppress_tokens"] {
        Value::Null => {}
        Value::Array(ids) => {
            g.suppress_tokens = ids
                .iter()
                .map(|v| v.as_u64().and_then(|x| u32::try_from(x).ok()))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("suppress_tokens must be a list of token ids".into()))?;
        }
        other => {
            return Err(bad(format!(
                "suppress_tokens {other} is not a list of token ids"
            )));
        }
    }
    match &raw["early_stopping"] {
        Value::Bool(true) => g.early_stopping = EarlyStopping::True,
        Value::Bool(false) | Value::Null => {}
        Value::String(s) if s == "never" => g.early_stopping = EarlyStopping::Never,
        other => {
            return Err(bad(format!(
                "early_stopping {other} is not true, false or \"never\""
            )));
        }
    }
    if let Some(x) = raw["max_new_tokens"].as_u64() {
        g.max_new_tokens = x as usize;
    } else if let Some(x) = raw["max_length"].as_u64() {
        g.max_new_tokens = (x as usize).saturating_sub(1).max(1);
    }
    Ok(g)
}

/// The image processor of a folder: transformers' `ViTImageProcessor` settings from
/// `preprocessor_config.json` (a resize to `size` with no crop, rescale, normalize), ViT's
/// defaults at the encoder's size when there is none. Another processor class, or a size that
/// is not the encoder's square, is an error that names it.
pub fn image_processor(
    dir: &Path,
    config: &CaptionerConfig,
) -> Result<ClipImageProcessor, CaptionError> {
    let side = config.encoder.image_size as u32;
    let mut p = vit_processor(side);
    let path = dir.join("preprocessor_config.json");
    if !path.is_file() {
        return Ok(p);
    }
    let raw = read_json(&path)?;
    let bad = |reason: String| CaptionError::Folder {
        path: path.clone(),
        reason,
    };
    let class = raw["image_processor_type"]
        .as_str()
        .or(raw["feature_extractor_type"].as_str())
        .unwrap_or("ViTImageProcessor");
    if !class.starts_with("ViTImageProcessor") && class != "ViTFeatureExtractor" {
        return Err(bad(format!(
            "image processor {class} is not supported (ViTImageProcessor is)"
        )));
    }
    let size = match &raw["size"] {
        Value::Null => (side, side),
        Value::Number(n) => (
            n.as_u64().unwrap_or(0) as u32,
            n.as_u64().unwrap_or(0) as u32,
        ),
        v => (
            v["height"].as_u64().unwrap_or(0) as u32,
            v["width"].as_u64().unwrap_or(0) as u32,
        ),
    };
    if size != (side, side) {
        return Err(bad(format!(
            "size {:?} is not the encoder's {side}x{side} images",
            raw["size"]
        )));
    }
    if let Some(code) = raw["resample"].as_u64() {
        p.resample = Filter::from_pillow(code)
            .ok_or_else(|| bad(format!("resample {code} is not a Pillow filter")))?;
    }
    let flag = |key: &str, default: bool| raw[key].as_bool().unwrap_or(default);
    p.do_resize = flag("do_resize", true);
    p.do_rescale = flag("do_rescale", true);
    p.do_normalize = flag("do_normalize", true);
    if let Some(f) = raw["rescale_factor"].as_f64() {
        p.rescale_factor = f;
    }
    let triple = |key: &str, default: [f32; 3]| -> Result<[f32; 3], CaptionError> {
        match &raw[key] {
            Value::Null => Ok(default),
            Value::Number(n) => Ok([n.as_f64().unwrap_or(0.0) as f32; 3]),
            Value::Array(a) if a.len() == 3 => {
                Ok(std::array::from_fn(|i| a[i].as_f64().unwrap_or(0.0) as f32))
            }
            other => Err(bad(format!("{key} {other} is not 3 numbers"))),
        }
    };
    p.image_mean = triple("image_mean", p.image_mean)?;
    p.image_std = triple("image_std", p.image_std)?;
    if p.image_std.contains(&0.0) {
        return Err(bad("image_std has a zero".into()));
    }
    Ok(p)
}

/// Loads a `VisionEncoderDecoderModel` folder (ViT + BERT), or one [`export_hf_captioner`]
/// wrote.
pub fn load_hf_captioner<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<LoadedCaptioner<B>, CaptionError> {
    let path = dir.join("config.json");
    let config = captioner_config(&read_json(&path)?, &path)?;
    let mut model = config.init::<B>(device)?;
    let weights = WeightMap::<B>::open_folder(dir, &["position_ids", "token_type_ids"], device)?
        .with_conv_channels(config.encoder.num_channels);
    weights.load_into(&mut model, "")?;
    let tokenizer = WordPieceTokenizer::from_folder(dir)?;
    if tokenizer.vocab_size() > config.decoder.vocab_size {
        return Err(CaptionError::Folder {
            path: dir.into(),
            reason: format!(
                "the tokenizer has {} tokens but the decoder only {}",
                tokenizer.vocab_size(),
                config.decoder.vocab_size
            ),
        });
    }
    let generation = generation_defaults(dir, &config)?;
    let processor = image_processor(dir, &config)?;
    Ok(LoadedCaptioner {
        model,
        config,
        generation,
        tokenizer,
        processor,
    })
}

/// Writes a captioner as an HF folder that transformers' `VisionEncoderDecoderModel` and
/// `BertTokenizer` load: config.json, generation_config.json, model.safetensors, vocab.txt.
pub fn export_hf_captioner<B: Backend>(
    model: &Captioner<B>,
    config: &CaptionerConfig,
    tokenizer: &WordPieceTokenizer,
    dir: &Path,
) -> Result<(), CaptionError> {
    let io = |path: &Path, e: std::io::Error| CaptionError::Folder {
        path: path.into(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut encoder = serde_json::to_value(&config.encoder).expect("configs serialize");
    encoder["model_type"] = json!("vit");
    let mut decoder = serde_json::to_value(&config.decoder).expect("configs serialize");
    decoder["model_type"] = json!("bert");
    decoder["is_decoder"] = json!(true);
    decoder["add_cross_attention"] = json!(true);
    decoder["position_embedding_type"] = json!("absolute");
    decoder["pad_token_id"] = json!(config.pad_token_id);
    let specials = json!({
        "decoder_start_token_id": config.decoder_start_token_id,
        "eos_token_id": config.eos_token_id,
        "pad_token_id": config.pad_token_id,
    });
    let mut hf = json!({
        "architectures": ["VisionEncoderDecoderModel"],
        "model_type": "vision-encoder-decoder",
        "is_encoder_decoder": true,
        "tie_word_embeddings": false,
        "encoder": encoder,
        "decoder": decoder,
    });
    for (k, v) in specials.as_object().expect("an object") {
        hf[k] = v.clone();
    }
    let mut writer = WeightWriter::new(config.encoder.num_channels);
    writer.collect_module(model, "");
    let metadata = [("format".to_string(), "pt".to_string())]
        .into_iter()
        .collect();
    writer.write(&dir.join("model.safetensors"), Some(metadata))?;
    let write = |name: &str, value: &Value| {
        let path = dir.join(name);
        mm_data::fs::atomic_write(
            &path,
            &serde_json::to_vec_pretty(value).expect("JSON values serialize"),
        )
        .map_err(|e| io(&path, e))
    };
    write("generation_config.json", &specials)?;
    tokenizer.save(dir, config.decoder.max_position_embeddings)?;
    write("config.json", &hf)
}
