//! HuggingFace ViLT folders in and out: `config.json` (transformers `ViltConfig`, with
//! `id2label` for question answering) and weights in any form [`mm_core::hf::files`] reads.
//! The heads are those whose weights the folder holds (`rank_output`, `mlm_score`,
//! `classifier`), so a `ViltForQuestionAnswering`, `ViltForMaskedLM` or
//! `ViltForImageAndTextRetrieval` folder loads as it is, strictly: a key left over or missing
//! is an error that names it.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use mm_core::hf::{WeightMap, WeightWriter};
use serde_json::{Value, json};

use super::ViltError;
use super::heads::{Heads, Vilt};
use super::model::ViltConfig;

/// A loaded ViLT with its configuration and answer names (question answering only).
#[derive(Debug)]
pub struct LoadedVilt<B: Backend> {
    /// The model.
    pub model: Vilt<B>,
    /// Its sizes.
    pub config: ViltConfig,
    /// `id2label` in logit order (empty without a question-answering head).
    pub answers: Vec<String>,
}

fn read_json(path: &Path) -> Result<Value, ViltError> {
    let text = std::fs::read_to_string(path).map_err(|e| ViltError::Folder {
        path: path.into(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| ViltError::Folder {
        path: path.into(),
        reason: format!("not JSON: {e}"),
    })
}

/// The answers of `id2label` (`{"0": "yes", ...}`) in id order; every id from 0 to n-1 must be
/// there.
fn answers_from_config(config: &Value, path: &Path) -> Result<Vec<String>, ViltError> {
    let Some(map) = config.get("id2label").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut by_id = BTreeMap::new();
    for (k, v) in map {
        let id: usize = k.parse().map_err(|_| ViltError::Folder {
            path: path.into(),
            reason: format!("id2label key {k:?} is not a number"),
        })?;
        by_id.insert(id, v.as_str().unwrap_or_default().to_string());
    }
    if by_id.keys().copied().ne(0..by_id.len()) {
        return Err(ViltError::Folder {
            path: path.into(),
            reason: "id2label does not number its labels 0..n-1".into(),
        });
    }
    Ok(by_id.into_values().collect())
}

/// Loads an HF ViLT folder (or one written by [`export_hf_vilt`]).
pub fn load_hf_vilt<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<LoadedVilt<B>, ViltError> {
    let path = dir.join("config.json");
    let raw = read_json(&path)?;
    let config: ViltConfig =
        serde_json::from_value(raw.clone()).map_err(|e| ViltError::Folder {
            path: path.clone(),
            reason: format!("not a ViLT config: {e}"),
        })?;
    let weights = WeightMap::<B>::open_folder(dir, &["position_ids", "token_type_ids"], device)?
        .with_conv_channels(config.num_channels);
    let mut answers = answers_from_config(&raw, &path)?;
    let heads = Heads {
        itm: weights.contains("rank_output.weight"),
        mlm: weights.contains("mlm_score.bias"),
        answers: weights
            .contains("classifier.3.weight")
            .then_some(answers.len()),
    };
    if heads.answers == Some(0) {
        return Err(ViltError::Folder {
            path,
            reason: "a question-answering folder needs `id2label`".into(),
        });
    }
    if heads.answers.is_none() {
        answers.clear();
    }
    let mut model = config.init_with_heads::<B>(heads, device)?;
    weights.load_into(&mut model, "")?;
    Ok(LoadedVilt {
        model,
        config,
        answers,
    })
}

/// The transformers class a folder with `heads` loads as.
fn architecture(heads: Heads) -> &'static str {
    if heads.answers.is_some() {
        "ViltForQuestionAnswering"
    } else if heads.mlm {
        "ViltForMaskedLM"
    } else if heads.itm {
        "ViltForImageAndTextRetrieval"
    } else {
        "ViltModel"
    }
}

/// Writes `model` as an HF folder (`config.json`, `model.safetensors`) that transformers'
/// ViLT classes load; `answers` name the question-answering logits.
pub fn export_hf_vilt<B: Backend>(
    model: &Vilt<B>,
    config: &ViltConfig,
    answers: &[String],
    dir: &Path,
) -> Result<(), ViltError> {
    let heads = model.heads();
    if heads.answers.is_some_and(|n| n != answers.len()) {
        return Err(ViltError::Input(format!(
            "the model answers {} ways but {} answer names were given",
            heads.answers.unwrap_or(0),
            answers.len()
        )));
    }
    let io = |path: &Path, e: std::io::Error| ViltError::Folder {
        path: path.into(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut hf = serde_json::to_value(config).expect("configs serialize");
    hf["model_type"] = json!("vilt");
    hf["architectures"] = json!([architecture(heads)]);
    if heads.answers.is_some() {
        hf["num_labels"] = json!(answers.len());
        hf["id2label"] = answers
            .iter()
            .enumerate()
            .map(|(i, a)| (i.to_string(), json!(a)))
            .collect();
        hf["label2id"] = answers
            .iter()
            .enumerate()
            .map(|(i, a)| (a.clone(), json!(i)))
            .collect();
    }
    let mut writer = WeightWriter::new(config.num_channels);
    writer.collect_module(model, "");
    let metadata = [("format".to_string(), "pt".to_string())]
        .into_iter()
        .collect();
    writer.write(&dir.join("model.safetensors"), Some(metadata))?;
    let path = dir.join("config.json");
    mm_data::fs::atomic_write(
        &path,
        &serde_json::to_vec_pretty(&hf).expect("JSON values serialize"),
    )
    .map_err(|e| io(&path, e))
}
