//! Saving and loading CLIP models and training checkpoints.
//!
//! A model folder holds `config.json` (a [`ClipConfig`]) and `model.mpk` (Burn's named
//! MessagePack record, full precision). Folders are written under a temporary name, synced and
//! renamed into place, so a crash mid-save leaves the previous one intact. Training checkpoints
//! are the house loop's (`mm_core::train`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder, RecorderError};
use burn::tensor::backend::Backend;
use mm_core::hf::{HfParams, Layout, ParamSlot, ParamVisitor};
use serde::Deserialize;

use crate::clip::{Clip, ClipConfig};

/// The recorder used for every file written here.
pub type ModelRecorder = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// Why a model or checkpoint could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A JSON file is malformed.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A weight file could not be decoded.
    #[error("{path}: cannot decode weights: {source}")]
    Record {
        /// The file.
        path: PathBuf,
        /// The recorder's error.
        #[source]
        source: RecorderError,
    },
    /// The configuration is inconsistent.
    #[error("{path}: invalid model config: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads and parses a JSON file.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, CheckpointError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(|source| CheckpointError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Serializes a record to bytes.
pub fn record_bytes<B: Backend, R: burn::record::Record<B>>(record: R) -> Vec<u8> {
    Recorder::<B>::record(&ModelRecorder::default(), record, ()).expect("records serialize")
}

/// Reads a record file.
pub fn load_record<B: Backend, R: burn::record::Record<B>>(
    path: &Path,
    device: &B::Device,
) -> Result<R, CheckpointError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    Recorder::<B>::load(&ModelRecorder::default(), bytes, device).map_err(|source| {
        CheckpointError::Record {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Writes `files` (name, bytes) as folder `dest`, atomically replacing any previous one.
pub fn write_folder_atomically(
    dest: &Path,
    files: &[(&str, Vec<u8>)],
) -> Result<(), CheckpointError> {
    mm_data::fs::write_folder_atomically(dest, files)
        .map_err(|(path, source)| CheckpointError::Io { path, source })
}

/// Saves a model folder (`config.json`, `model.mpk`).
pub fn save_model<B: Backend>(
    model: &Clip<B>,
    config: &ClipConfig,
    dir: &Path,
) -> Result<(), CheckpointError> {
    let json = serde_json::to_vec_pretty(config).expect("configs serialize");
    mm_core::nn::materialize(model);
    write_folder_atomically(
        dir,
        &[
            ("config.json", json),
            (
                "model.mpk",
                record_bytes::<B, _>(model.clone().into_record()),
            ),
        ],
    )
}

/// Reads a folder's `config.json` and checks it.
pub fn load_config(dir: &Path) -> Result<ClipConfig, CheckpointError> {
    let path = dir.join("config.json");
    let config: ClipConfig = read_json(&path)?;
    config.validate().map_err(|e| CheckpointError::Config {
        path,
        reason: e.to_string(),
    })?;
    Ok(config)
}

/// Loads a model folder written by [`save_model`] (a run's `final/` or any checkpoint).
///
/// Weights whose shapes disagree with `config.json` are an error naming the first of them.
pub fn load_model<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(Clip<B>, ClipConfig), CheckpointError> {
    let config = load_config(dir)?;
    let weights = dir.join("model.mpk");
    let record = load_record::<B, _>(&weights, device)?;
    let mut fresh = config
        .init::<B>(device)
        .map_err(|e| CheckpointError::Config {
            path: dir.join("config.json"),
            reason: e.to_string(),
        })?;
    let expected = shapes(&mut fresh);
    let mut model = fresh.load_record(record);
    for ((key, want), (_, got)) in expected.iter().zip(shapes(&mut model)) {
        if *want != got {
            return Err(CheckpointError::Config {
                path: weights,
                reason: format!("`{key}` has shape {got:?} but config.json implies {want:?}"),
            });
        }
    }
    Ok((model, config))
}

/// Records every parameter's shape under its HF key.
struct Shapes(Vec<(String, Vec<usize>)>);

impl<B: Backend> ParamVisitor<B> for Shapes {
    fn visit(&mut self, key: &str, _: Layout, param: &mut dyn ParamSlot<B>) {
        self.0.push((key.to_string(), param.shape()));
    }
}

fn shapes<B: Backend>(model: &mut Clip<B>) -> Vec<(String, Vec<usize>)> {
    let mut s = Shapes(Vec::new());
    model.visit_hf("", &mut s);
    s.0
}
