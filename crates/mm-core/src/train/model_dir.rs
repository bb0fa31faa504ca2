//! Model folders: `config.json` (whatever describes the model) and `model.mpk` (Burn's named
//! MessagePack record, f32), written together and atomically; the `final/` of every run.

use std::path::Path;

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::Backend;
use serde_json::Value;

use super::TrainError;

type Bytes = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// Writes `dir` with `config.json` = `config` and `model.mpk` = `model`'s weights.
pub fn save_model_dir<B: Backend, M: Module<B>>(
    dir: &Path,
    config: &Value,
    model: &M,
) -> Result<(), TrainError> {
    crate::nn::materialize(model);
    let weights = Recorder::<B>::record(&Bytes::default(), model.clone().into_record(), ())
        .map_err(|e| TrainError::BadCheckpoint {
            path: dir.join("model.mpk"),
            reason: e.to_string(),
        })?;
    let json = serde_json::to_vec_pretty(config).expect("JSON values serialize");
    mm_data::fs::write_folder_atomically(dir, &[("config.json", json), ("model.mpk", weights)])
        .map_err(|(path, source)| TrainError::Io { path, source })
}

/// `dir/config.json`.
pub fn read_model_config(dir: &Path) -> Result<Value, TrainError> {
    let path = dir.join("config.json");
    let bytes = std::fs::read(&path).map_err(|source| TrainError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| TrainError::Io {
        path,
        source: e.into(),
    })
}

/// `model` with the weights of `dir/model.mpk`.
pub fn load_weights<B: Backend, M: Module<B>>(
    dir: &Path,
    model: M,
    device: &B::Device,
) -> Result<M, TrainError> {
    let path = dir.join("model.mpk");
    let bytes = std::fs::read(&path).map_err(|source| TrainError::Io {
        path: path.clone(),
        source,
    })?;
    let record = Recorder::<B>::load(&Bytes::default(), bytes, device).map_err(|e| {
        TrainError::BadCheckpoint {
            path,
            reason: e.to_string(),
        }
    })?;
    Ok(model.load_record(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::nn::{Linear, LinearConfig};

    #[test]
    fn a_model_folder_round_trips_and_a_cut_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let device = Default::default();
        let model: Linear<NdArray> = LinearConfig::new(3, 2).init(&device);
        let path = dir.path().join("final");
        // Saved before its weights were ever read: the file must still hold the values the
        // model computes with (lazy initialization, see `crate::nn::materialize`).
        save_model_dir(&path, &serde_json::json!({"d": 3}), &model).unwrap();
        let weight = model.weight.val().into_data().convert::<f32>();
        assert_eq!(read_model_config(&path).unwrap()["d"], 3);
        let fresh: Linear<NdArray> = LinearConfig::new(3, 2).init(&device);
        let back = load_weights(&path, fresh, &device).unwrap();
        assert_eq!(back.weight.val().into_data().convert::<f32>(), weight);
        std::fs::write(path.join("model.mpk"), b"cut").unwrap();
        let fresh: Linear<NdArray> = LinearConfig::new(3, 2).init(&device);
        let err = load_weights(&path, fresh, &device).unwrap_err().to_string();
        assert!(err.contains("model.mpk"), "{err}");
    }
}
