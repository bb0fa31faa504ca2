//! Checkpoint files that a kill cannot cut, and finding the newest checkpoint that is whole.
//!
//! burn-train's checkpointer writes `checkpoint/{model,optim,scheduler}-N.mpk` for epoch
//! (chunk) `N` through a [`FileRecorder`]. [`AtomicMpkRecorder`] is Burn's named MessagePack
//! format written to a temporary file and renamed into place, so each file is either the old
//! state or the new one. A checkpoint counts only when all three of its files are present.

use std::path::{Path, PathBuf};

use burn::record::{
    FileRecorder, FullPrecisionSettings, NamedMpkBytesRecorder, NamedMpkFileRecorder, Recorder,
    RecorderError,
};
use burn::tensor::backend::Backend;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Burn's full-precision named MessagePack files, written atomically.
#[derive(Debug, Default, Clone)]
pub struct AtomicMpkRecorder;

impl<B: Backend> Recorder<B> for AtomicMpkRecorder {
    type Settings = FullPrecisionSettings;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: Serialize>(&self, item: I, mut file: PathBuf) -> Result<(), RecorderError> {
        let bytes = Recorder::<B>::save_item(
            &NamedMpkBytesRecorder::<FullPrecisionSettings>::default(),
            item,
            (),
        )?;
        file.set_extension(<Self as FileRecorder<B>>::file_extension());
        mm_data::fs::atomic_write(&file, &bytes)
            .map_err(|e| RecorderError::Unknown(format!("{}: {e}", file.display())))
    }

    fn load_item<I: DeserializeOwned>(&self, file: &mut PathBuf) -> Result<I, RecorderError> {
        Recorder::<B>::load_item(
            &NamedMpkFileRecorder::<FullPrecisionSettings>::default(),
            file,
        )
    }
}

impl<B: Backend> FileRecorder<B> for AtomicMpkRecorder {
    fn file_extension() -> &'static str {
        "mpk"
    }
}

/// The parts of one checkpoint, in burn-train's naming.
pub const CHECKPOINT_PARTS: [&str; 3] = ["model", "optim", "scheduler"];

/// The path burn-train reads part `part` of checkpoint `epoch` from (without extension).
pub fn part_path(checkpoint_dir: &Path, part: &str, epoch: usize) -> PathBuf {
    checkpoint_dir.join(format!("{part}-{epoch}"))
}

/// Checkpoints in `checkpoint_dir` with all their files present, newest first.
pub fn complete_checkpoints(checkpoint_dir: &Path) -> Vec<usize> {
    let Ok(entries) = std::fs::read_dir(checkpoint_dir) else {
        return Vec::new();
    };
    let mut epochs: Vec<usize> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("model-")?
                .strip_suffix(".mpk")?
                .parse()
                .ok()
        })
        .filter(|&n| {
            CHECKPOINT_PARTS.iter().all(|p| {
                part_path(checkpoint_dir, p, n)
                    .with_extension("mpk")
                    .is_file()
            })
        })
        .collect();
    epochs.sort_unstable_by(|a, b| b.cmp(a));
    epochs
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};

    #[test]
    fn saves_atomically_and_finds_whole_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let device = Default::default();
        let layer: Linear<NdArray> = LinearConfig::new(3, 2).init(&device);
        // Parameters are initialized lazily; records hold f32 ("full precision" in Burn).
        let weight = layer.weight.val().into_data().convert::<f32>();
        let rec = AtomicMpkRecorder;
        for epoch in [1, 2] {
            for part in CHECKPOINT_PARTS {
                Recorder::<NdArray>::record(
                    &rec,
                    layer.clone().into_record(),
                    part_path(dir.path(), part, epoch),
                )
                .unwrap();
            }
        }
        // Checkpoint 3 was cut by a kill: its scheduler file was never renamed into place.
        Recorder::<NdArray>::record(
            &rec,
            layer.clone().into_record(),
            part_path(dir.path(), "model", 3),
        )
        .unwrap();
        assert_eq!(complete_checkpoints(dir.path()), vec![2, 1]);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| n.ends_with(".mpk") && !n.starts_with('.'))
        );
        let back: <Linear<NdArray> as Module<NdArray>>::Record =
            Recorder::<NdArray>::load(&rec, part_path(dir.path(), "model", 2), &device).unwrap();
        let reloaded = layer.clone().load_record(back);
        assert_eq!(reloaded.weight.val().into_data().convert::<f32>(), weight);
    }
}
