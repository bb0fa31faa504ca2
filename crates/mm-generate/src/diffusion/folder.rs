//! diffusers model folders: `config.json` beside `diffusion_pytorch_model.safetensors` (or
//! `.bin`), as `save_pretrained` writes them; the reading, strict loading and writing that
//! the UNet and the VAE share.

use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::Backend;
use mm_core::hf::{HfError, HfParams, WeightMap, WeightWriter};
use serde_json::{Value, json};

/// The weight files of a diffusers model folder, in diffusers' order of preference.
pub const WEIGHT_FILES: [&str; 2] = [
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.bin",
];

/// Why a diffusers folder could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// A config is missing, unreadable or describes something not implemented.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The weights could not be read, or do not fit the config.
    #[error(transparent)]
    Weights(#[from] HfError),
}

/// `dir/config.json` parsed, checked to name `class` if it names one, and handed to `parse`
/// (whose error message is reported with the file's path).
pub fn read_config<T>(
    dir: &Path,
    class: &str,
    parse: impl FnOnce(&Value) -> Result<T, String>,
) -> Result<T, FolderError> {
    let path = dir.join("config.json");
    let bad = |reason: String| FolderError::Config {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if let Some(found) = value.get("_class_name").and_then(Value::as_str)
        && found != class
    {
        return Err(bad(format!("`_class_name` is {found}, expected {class}")));
    }
    parse(&value).map_err(bad)
}

/// Fills `model` from the folder's weight file through its key table; every weight must be
/// present and used.
pub fn load_weights<B: Backend, M: HfParams<B>>(
    dir: &Path,
    model: &mut M,
    device: &B::Device,
) -> Result<(), FolderError> {
    let file = WEIGHT_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| HfError::NoWeights {
            dir: dir.into(),
            looked_for: WEIGHT_FILES.iter().map(|s| s.to_string()).collect(),
        })?;
    WeightMap::<B>::open(&file, &[], device)?.load_into(model, "")?;
    Ok(())
}

/// Writes `model`'s weights and `config` (with `_class_name: class`) as `save_pretrained` does.
pub fn save<B: Backend, M: HfParams<B> + Module<B>>(
    model: &M,
    config: Value,
    class: &str,
    dir: &Path,
) -> Result<(), FolderError> {
    let io = |path: &Path, e: std::io::Error| FolderError::Config {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    // Conv weights are written as they are; the channel count only matters for ConvAsLinear.
    let mut writer = WeightWriter::new(3);
    writer.collect_module(model, "");
    let metadata = [("format".to_string(), "pt".to_string())]
        .into_iter()
        .collect();
    writer.write(&dir.join(WEIGHT_FILES[0]), Some(metadata))?;
    let mut value = config;
    value["_class_name"] = json!(class);
    let path = dir.join("config.json");
    mm_data::fs::atomic_write(
        &path,
        &serde_json::to_vec_pretty(&value).expect("JSON values serialize"),
    )
    .map_err(|e| io(&path, e))
}
