//! Text conditioning: a CLIP text tower's final token states (transformers'
//! `CLIPTextModel(...)[0]`, the `last_hidden_state` after the final layer norm), from a
//! diffusers pipeline's `text_encoder/` + `tokenizer/` folders or from any CLIP we have.

use std::path::Path;

use burn::tensor::{Tensor, backend::Backend};
use mm_core::hf::{HfParams, Layout, ParamVisitor, WeightMap, WeightWriter};
use mm_text::{ClipTextConfig, ClipTextTransformer, ClipTokenizer, TextBatch};
use serde_json::Value;

use super::folder::FolderError;

/// A tokenizer and the text tower whose token states condition the UNet.
#[derive(Debug, Clone)]
pub struct TextConditioner<B: Backend> {
    /// The tower (its projection is unused).
    pub tower: ClipTextTransformer<B>,
    /// The tower's settings.
    pub config: ClipTextConfig,
    /// Its tokenizer.
    pub tokenizer: ClipTokenizer,
    /// Tokens per prompt, padded (the tokenizer's `model_max_length`, at most the tower's
    /// positions), as diffusers' pipelines pad.
    pub context_length: usize,
}

/// The tower without the projection: `CLIPTextModel`'s keys (`text_model.*`).
struct TowerOnly<'a, B: Backend>(&'a mut ClipTextTransformer<B>);

impl<B: Backend> HfParams<B> for TowerOnly<'_, B> {
    fn visit_hf(&mut self, prefix: &str, v: &mut dyn ParamVisitor<B>) {
        let t = &mut *self.0;
        let p = format!("{prefix}text_model.");
        v.visit(
            &format!("{p}embeddings.token_embedding.weight"),
            Layout::Same,
            &mut t.token_embedding,
        );
        v.visit(
            &format!("{p}embeddings.position_embedding.weight"),
            Layout::Same,
            &mut t.position_embedding,
        );
        t.encoder.visit_hf(&format!("{p}encoder."), v);
        t.final_layer_norm
            .visit_hf(&format!("{p}final_layer_norm."), v);
    }
}

fn text_config(value: &Value) -> Result<ClipTextConfig, String> {
    let get = |k: &str, d: usize| {
        value
            .get(k)
            .and_then(Value::as_u64)
            .map_or(d, |x| x as usize)
    };
    let hidden = get("hidden_size", 512);
    let act = value
        .get("hidden_act")
        .cloned()
        .unwrap_or(Value::from("quick_gelu"));
    let act = serde_json::from_value(act.clone())
        .map_err(|_| format!("hidden_act {act} is not supported (quick_gelu, gelu, relu)"))?;
    let config = ClipTextConfig::new(
        hidden,
        get("intermediate_size", 2048),
        get("projection_dim", hidden),
        get("num_hidden_layers", 12),
        get("num_attention_heads", 8),
    )
    .with_vocab_size(get("vocab_size", 49408))
    .with_max_position_embeddings(get("max_position_embeddings", 77))
    .with_hidden_act(act)
    .with_layer_norm_eps(
        value
            .get("layer_norm_eps")
            .and_then(Value::as_f64)
            .unwrap_or(1e-5),
    );
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

impl<B: Backend> TextConditioner<B> {
    /// Loads a transformers `CLIPTextModel` folder (`text_encoder`) and a CLIP tokenizer
    /// folder (`tokenizer`), as a diffusers pipeline holds them.
    pub fn load(
        text_encoder: &Path,
        tokenizer: &Path,
        device: &B::Device,
    ) -> Result<Self, FolderError> {
        let path = text_encoder.join("config.json");
        let bad = |reason: String| FolderError::Config {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let config = text_config(&value).map_err(bad)?;
        let mut tower = config.init::<B>(device).map_err(|e| bad(e.to_string()))?;
        WeightMap::<B>::open_folder(text_encoder, &["position_ids"], device)?
            .load_into(&mut TowerOnly(&mut tower), "")?;
        let tok_err = |reason: String| FolderError::Config {
            path: tokenizer.display().to_string(),
            reason,
        };
        let tokenizer = ClipTokenizer::from_folder(tokenizer)
            .map_err(|e| tok_err(e.to_string()))?
            .ok_or_else(|| tok_err("no tokenizer.json, nor vocab.json + merges.txt".into()))?;
        Ok(Self::new(tower, config, tokenizer))
    }

    /// A conditioner from a tower (with its settings) and tokenizer we already have: the
    /// text side of our CLIP.
    pub fn new(
        tower: ClipTextTransformer<B>,
        config: ClipTextConfig,
        tokenizer: ClipTokenizer,
    ) -> Self {
        let context_length = tokenizer.max_tokens(tower.context_length());
        Self {
            tower,
            config,
            tokenizer,
            context_length,
        }
    }

    /// Writes the tower as a transformers `CLIPTextModel` folder and the tokenizer as a
    /// `CLIPTokenizerFast` folder (`tokenizer.json`, `tokenizer_config.json`).
    pub fn save(&self, text_encoder: &Path, tokenizer: &Path) -> Result<(), FolderError> {
        let c = &self.config;
        let act = serde_json::to_value(c.hidden_act).expect("activations serialize");
        let config = serde_json::json!({
            "architectures": ["CLIPTextModel"],
            "model_type": "clip_text_model",
            "vocab_size": c.vocab_size,
            "hidden_size": c.hidden_size,
            "intermediate_size": c.intermediate_size,
            "projection_dim": c.projection_dim,
            "num_hidden_layers": c.num_hidden_layers,
            "num_attention_heads": c.num_attention_heads,
            "max_position_embeddings": c.max_position_embeddings,
            "hidden_act": act,
            "layer_norm_eps": c.layer_norm_eps,
            "bos_token_id": self.tokenizer.bos_id(),
            "eos_token_id": self.tokenizer.eot_id(),
            "pad_token_id": self.tokenizer.pad_id(),
        });
        mm_core::nn::materialize(&self.tower);
        let mut tower = self.tower.clone();
        let mut writer = WeightWriter::new(3);
        writer.collect(&mut TowerOnly(&mut tower), "");
        let write = |dir: &Path, name: &str, bytes: &[u8]| {
            std::fs::create_dir_all(dir)
                .and_then(|_| mm_data::fs::atomic_write(&dir.join(name), bytes))
                .map_err(|e| FolderError::Config {
                    path: dir.join(name).display().to_string(),
                    reason: e.to_string(),
                })
        };
        write(
            text_encoder,
            "config.json",
            &serde_json::to_vec_pretty(&config).expect("json"),
        )?;
        let metadata = [("format".to_string(), "pt".to_string())]
            .into_iter()
            .collect();
        writer.write(&text_encoder.join("model.safetensors"), Some(metadata))?;
        write(
            tokenizer,
            "tokenizer.json",
            self.tokenizer.to_json().as_bytes(),
        )?;
        let mut tok = self.tokenizer.config_json(self.context_length);
        tok["tokenizer_class"] = serde_json::json!("CLIPTokenizerFast");
        write(
            tokenizer,
            "tokenizer_config.json",
            &serde_json::to_vec_pretty(&tok).expect("json"),
        )
    }

    /// The final token states of `prompts`, each padded to [`Self::context_length`].
    ///
    /// # Shapes
    /// - output: `[prompts, context_length, hidden]`.
    pub fn encode(&self, prompts: &[&str]) -> Result<Tensor<B, 3>, mm_text::TokenizerError> {
        let device = self.tower.token_embedding.val().device();
        let batch = self.tokenizer.encode_batch(prompts, self.context_length)?;
        let (ids, eot_positions) = batch.to_tensors::<B>(&device);
        let out = self.tower.forward(TextBatch { ids, eot_positions });
        Ok(out.sequence.expect("the text tower returns token states"))
    }
}
