//! HuggingFace `CLIPModel` folders in and out.
//!
//! A folder holds `config.json` (HF `CLIPConfig`) and weights in any form the hub has them
//! (`model.safetensors`, safetensors shards with their index, or `pytorch_model.bin`; f32, f16
//! or bf16: [`mm_core::hf::files`]). Optionally: a tokenizer (`tokenizer.json`, or the slow
//! tokenizer's `vocab.json` + `merges.txt`, with `tokenizer_config.json`) and preprocessing
//! settings (`preprocessor_config.json` or the nested `processor_config.json`, every size
//! form: [`mm_vision::processor_config`]); the bundled CLIP tokenizer and OpenAI's
//! preprocessing at the model's image size are used where absent. Keys map through the towers'
//! key tables (`HfParams` impls in `mm-vision` and `mm-text`) plus `logit_scale`; loading is
//! strict.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use mm_core::hf::{HfError, HfParams, Layout, ParamVisitor, WeightMap, WeightWriter};
use mm_core::nn::Activation;
use mm_text::{ClipTextConfig, ClipTokenizer, TokenizerError};
use mm_vision::{
    AlphaMode, ClipImageProcessor, ClipVisionConfig, ProcessorConfigError, load_processor_config,
};
use serde_json::{Value, json};

use crate::checkpoint::CheckpointError;
use crate::clip::{Clip, ClipConfig};

/// Why an HF folder could not be loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum HfFolderError {
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is malformed or describes something we cannot run.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The weights do not fit the config.
    #[error(transparent)]
    Weights(#[from] HfError),
    /// The tokenizer could not be loaded.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The preprocessing settings could not be read or do not fit the model.
    #[error(transparent)]
    Processor(#[from] ProcessorConfigError),
    /// A folder of ours could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// A loaded CLIP with everything needed to run it on raw images and texts.
pub struct LoadedClip<B: Backend> {
    /// The model.
    pub model: Clip<B>,
    /// Its configuration.
    pub config: ClipConfig,
    /// The tokenizer.
    pub tokenizer: ClipTokenizer,
    /// The image preprocessing.
    pub processor: ClipImageProcessor,
    /// Alpha handling when decoding: HF folders drop alpha as transformers does; our own
    /// models composite on white as they were trained.
    pub alpha: AlphaMode,
}

/// The full `CLIPModel` key table: both towers at the top level, plus `logit_scale`.
impl<B: Backend> HfParams<B> for Clip<B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        self.text_model.visit_hf(prefix, v);
        self.vision_model.visit_hf(prefix, v);
        v.visit(
            &format!("{prefix}logit_scale"),
            Layout::Scalar,
            &mut self.logit_scale.value,
        );
    }
}

fn field<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn usize_or(obj: &Value, key: &str, default: usize) -> usize {
    field(obj, key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .unwrap_or(default)
}

fn activation(obj: &Value, path: &Path) -> Result<Activation, HfFolderError> {
    let name = field(obj, "hidden_act")
        .and_then(Value::as_str)
        .unwrap_or("quick_gelu");
    serde_json::from_value(json!(name)).map_err(|_| HfFolderError::Config {
        path: path.into(),
        reason: format!("hidden_act `{name}` is not supported (quick_gelu, gelu, relu)"),
    })
}

/// Reads HF `CLIPConfig` JSON into our config, with transformers' defaults for absent fields.
pub fn clip_config_from_hf(value: &Value, path: &Path) -> Result<ClipConfig, HfFolderError> {
    if let Some(kind) = field(value, "model_type").and_then(Value::as_str)
        && kind != "clip"
    {
        return Err(HfFolderError::Config {
            path: path.into(),
            reason: format!("model_type `{kind}` is not `clip`"),
        });
    }
    let projection_dim = usize_or(value, "projection_dim", 512);
    let empty = json!({});
    let t = field(value, "text_config").unwrap_or(&empty);
    let v = field(value, "vision_config").unwrap_or(&empty);
    let eps = |o: &Value| {
        field(o, "layer_norm_eps")
            .and_then(Value::as_f64)
            .unwrap_or(1e-5)
    };
    let text = ClipTextConfig::new(
        usize_or(t, "hidden_size", 512),
        usize_or(t, "intermediate_size", 2048),
        projection_dim,
        usize_or(t, "num_hidden_layers", 12),
        usize_or(t, "num_attention_heads", 8),
    )
    .with_vocab_size(usize_or(t, "vocab_size", 49408))
    .with_max_position_embeddings(usize_or(t, "max_position_embeddings", 77))
    .with_hidden_act(activation(t, path)?)
    .with_layer_norm_eps(eps(t));
    let vision = ClipVisionConfig::new(
        usize_or(v, "hidden_size", 768),
        usize_or(v, "intermediate_size", 3072),
        projection_dim,
        usize_or(v, "num_hidden_layers", 12),
        usize_or(v, "num_attention_heads", 12),
        usize_or(v, "image_size", 224),
        usize_or(v, "patch_size", 32),
    )
    .with_num_channels(usize_or(v, "num_channels", 3))
    .with_hidden_act(activation(v, path)?)
    .with_layer_norm_eps(eps(v));
    let logit = field(value, "logit_scale_init_value")
        .and_then(Value::as_f64)
        .unwrap_or(2.6592);
    let config = ClipConfig::new(text, vision, projection_dim).with_logit_scale_init_value(logit);
    config.validate().map_err(|e| HfFolderError::Config {
        path: path.into(),
        reason: e.to_string(),
    })?;
    Ok(config)
}

/// Writes our config as HF `CLIPConfig` JSON (the fields transformers reads).
pub fn clip_config_to_hf(config: &ClipConfig) -> Value {
    let act = |a: Activation| serde_json::to_value(a).expect("activations serialize");
    let t = &config.text_config;
    let v = &config.vision_config;
    json!({
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": config.projection_dim,
        "logit_scale_init_value": config.logit_scale_init_value,
        "initializer_factor": 1.0,
        "text_config": {
            "model_type": "clip_text_model",
            "vocab_size": t.vocab_size,
            "hidden_size": t.hidden_size,
            "intermediate_size": t.intermediate_size,
            "projection_dim": config.projection_dim,
            "num_hidden_layers": t.num_hidden_layers,
            "num_attention_heads": t.num_attention_heads,
            "max_position_embeddings": t.max_position_embeddings,
            "hidden_act": act(t.hidden_act),
            "layer_norm_eps": t.layer_norm_eps,
            "bos_token_id": 49406,
            "eos_token_id": 49407,
            "pad_token_id": 49407
        },
        "vision_config": {
            "model_type": "clip_vision_model",
            "hidden_size": v.hidden_size,
            "intermediate_size": v.intermediate_size,
            "projection_dim": config.projection_dim,
            "num_hidden_layers": v.num_hidden_layers,
            "num_attention_heads": v.num_attention_heads,
            "num_channels": v.num_channels,
            "image_size": v.image_size,
            "patch_size": v.patch_size,
            "hidden_act": act(v.hidden_act),
            "layer_norm_eps": v.layer_norm_eps
        }
    })
}

fn read_json(path: &Path) -> Result<Value, HfFolderError> {
    let text = std::fs::read_to_string(path).map_err(|source| HfFolderError::Io {
        path: path.into(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| HfFolderError::Config {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// Whether `dir` is an HF folder (has weights in one of the HF forms) rather than one of ours.
pub fn is_hf_folder(dir: &Path) -> bool {
    mm_core::hf::find_weights(dir).is_ok()
}

/// Loads an HF `CLIPModel` folder.
pub fn load_hf_clip<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<LoadedClip<B>, HfFolderError> {
    let config_path = dir.join("config.json");
    let config = clip_config_from_hf(&read_json(&config_path)?, &config_path)?;
    let mut model = config
        .init::<B>(device)
        .map_err(|e| HfFolderError::Config {
            path: config_path.clone(),
            reason: e.to_string(),
        })?;
    WeightMap::<B>::open_folder(dir, &["position_ids"], device)?
        .with_conv_channels(config.vision_config.num_channels)
        .load_into(&mut model, "")?;
    let tokenizer = ClipTokenizer::from_folder(dir)?.unwrap_or_else(ClipTokenizer::bundled);
    let image_size = config.vision_config.image_size as u32;
    let processor = match load_processor_config(dir)? {
        Some((processor, path)) => {
            check_output_size(&processor, image_size, &path)?;
            processor
        }
        None => ClipImageProcessor::clip(image_size),
    };
    Ok(LoadedClip {
        model,
        config,
        tokenizer,
        alpha: processor.alpha_mode(),
        processor,
    })
}

/// The preprocessing must give every image the model's `image_size` square.
fn check_output_size(
    processor: &ClipImageProcessor,
    image_size: u32,
    path: &Path,
) -> Result<(), ProcessorConfigError> {
    let reason = match processor.fixed_output_size() {
        Some(size) if size == (image_size, image_size) => return Ok(()),
        Some((h, w)) => format!(
            "the preprocessing gives {h}x{w} images but the model's vision tower takes \
             {image_size}x{image_size}"
        ),
        None => format!(
            "the preprocessing gives images of each input's own size (no center crop and no \
             fixed resize) but the model's vision tower takes {image_size}x{image_size}"
        ),
    };
    Err(ProcessorConfigError::Invalid {
        path: path.into(),
        reason,
    })
}

/// Loads either an HF folder or a model folder of ours (`config.json` + `model.mpk`).
pub fn load_any_clip<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<LoadedClip<B>, HfFolderError> {
    if is_hf_folder(dir) {
        return load_hf_clip(dir, device);
    }
    let (model, config) = crate::checkpoint::load_model::<B>(dir, device)?;
    let processor = ClipImageProcessor::clip(config.vision_config.image_size as u32);
    Ok(LoadedClip {
        model,
        config,
        tokenizer: ClipTokenizer::bundled(),
        processor,
        alpha: AlphaMode::CompositeOnWhite,
    })
}

/// Writes `model` as an HF `CLIPModel` folder that `CLIPModel.from_pretrained` loads:
/// `config.json` (with the tokenizer's special ids), `model.safetensors`, `tokenizer.json`,
/// `tokenizer_config.json` and `preprocessor_config.json`.
pub fn export_hf_clip<B: Backend>(
    model: &Clip<B>,
    config: &ClipConfig,
    processor: &ClipImageProcessor,
    tokenizer: &ClipTokenizer,
    dir: &Path,
) -> Result<(), HfFolderError> {
    std::fs::create_dir_all(dir).map_err(|source| HfFolderError::Io {
        path: dir.into(),
        source,
    })?;
    let mut writer = WeightWriter::new(config.vision_config.num_channels);
    writer.collect_module(model, "");
    let metadata = [("format".to_string(), "pt".to_string())]
        .into_iter()
        .collect();
    writer.write(&dir.join("model.safetensors"), Some(metadata))?;
    let mut pre = serde_json::to_value(processor).expect("processor serializes");
    pre["image_processor_type"] = json!("CLIPImageProcessor");
    pre["processor_class"] = json!("CLIPProcessor");
    let mut hf_config = clip_config_to_hf(config);
    let text = &mut hf_config["text_config"];
    text["bos_token_id"] = json!(tokenizer.bos_id());
    text["eos_token_id"] = json!(tokenizer.eot_id());
    text["pad_token_id"] = json!(tokenizer.pad_id());
    let files: [(&str, Vec<u8>); 4] = [
        (
            "config.json",
            serde_json::to_vec_pretty(&hf_config).expect("json"),
        ),
        (
            "preprocessor_config.json",
            serde_json::to_vec_pretty(&pre).expect("json"),
        ),
        ("tokenizer.json", tokenizer.to_json().into_bytes()),
        (
            "tokenizer_config.json",
            serde_json::to_vec_pretty(
                &tokenizer.config_json(config.text_config.max_position_embeddings),
            )
            .expect("json"),
        ),
    ];
    for (name, bytes) in files {
        let path = dir.join(name);
        mm_data::fs::atomic_write(&path, &bytes)
            .map_err(|source| HfFolderError::Io { path, source })?;
    }
    Ok(())
}
