//! Labelled sound datasets: the JSONL audio manifest and the CC0 samples of the Debian package
//! `sonic-pi-samples`, grouped by their name prefix (`bd_`, `drum_`, `elec_`, `tabla_`, ...).
//!
//! ```json
//! {"audio": "unpacked/usr/share/sonic-pi/samples/bd_boom.flac", "label": "bd", "split": "train"}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mm_core::fetch::{DebPackage, FetchError, apt_download, extract_deb};
use serde::{Deserialize, Serialize};

/// The Debian package the sounds come from (CC0 samples), pinned.
pub const SONIC_PI_SAMPLES: DebPackage = DebPackage {
    name: "sonic-pi-samples",
    version: "3.2.2~repack-8",
    sha256: "25f2312d2fae005e6ad0f4726b8ed3084e776006a5a132083506e960224ac79d",
};

/// Groups with at least this many samples become classes.
pub const MIN_GROUP: usize = 8;

/// One labelled clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioRecord {
    /// Path relative to the manifest's folder.
    pub audio: String,
    /// Class.
    pub label: String,
    /// `train` or `test`.
    pub split: String,
}

/// Why a dataset could not be prepared or read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// Fetching or unpacking the package failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A file operation failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A manifest line is not a valid record.
    #[error("{path}:{line}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads an audio manifest; paths are resolved against its folder.
pub fn read_manifest(path: &Path) -> Result<Vec<(PathBuf, AudioRecord)>, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let root = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: AudioRecord =
            serde_json::from_str(line).map_err(|e| DatasetError::Manifest {
                path: path.to_path_buf(),
                line: i + 1,
                message: e.to_string(),
            })?;
        if record.label.trim().is_empty() {
            return Err(DatasetError::Manifest {
                path: path.to_path_buf(),
                line: i + 1,
                message: "empty label".into(),
            });
        }
        out.push((root.join(&record.audio), record));
    }
    Ok(out)
}

/// Fetches `sonic-pi-samples` into `cache`, unpacks it under `dest/unpacked`, and writes
/// `dest/sounds.jsonl`: every sample of a group with at least [`MIN_GROUP`] members, labelled by
/// group; within each group (sorted by name) every fourth sample is held out for testing.
pub fn prepare_sounds(cache: &Path, dest: &Path) -> Result<PathBuf, DatasetError> {
    let deb = apt_download(&SONIC_PI_SAMPLES, cache)?;
    let unpacked = dest.join("unpacked");
    let samples = unpacked.join("usr/share/sonic-pi/samples");
    if !samples.is_dir() {
        extract_deb(&deb, &unpacked)?;
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DatasetError::Io { path, source }
    };
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(&samples).map_err(io(&samples))? {
        let name = entry
            .map_err(io(&samples))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(stem) = name.strip_suffix(".flac") {
            let group = stem.split('_').next().unwrap_or(stem).to_string();
            groups.entry(group).or_default().push(name);
        }
    }
    let mut lines = String::new();
    for (group, mut files) in groups.into_iter().filter(|(_, f)| f.len() >= MIN_GROUP) {
        files.sort();
        for (i, file) in files.iter().enumerate() {
            let record = AudioRecord {
                audio: format!("unpacked/usr/share/sonic-pi/samples/{file}"),
                label: group.clone(),
                split: if i % 4 == 3 { "test" } else { "train" }.into(),
            };
            lines += &serde_json::to_string(&record).expect("record serializes");
            lines.push('\n');
        }
    }
    let manifest = dest.join("sounds.jsonl");
    mm_core::checkpoint::atomic_write(&manifest, lines.as_bytes()).map_err(io(&manifest))?;
    Ok(manifest)
}
