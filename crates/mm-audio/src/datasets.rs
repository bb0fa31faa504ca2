//! Labelled sound datasets: the JSONL audio manifest and the CC0 samples of the Debian package
//! `sonic-pi-samples`, grouped by their name prefix (`bd_`, `drum_`, `elec_`, `tabla_`, ...).
//!
//! ```json
//! {"audio": "unpacked/usr/share/sonic-pi/samples/bd_boom.flac", "label": "bd", "split": "train"}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mm_data::fetch::{DebPackage, FetchError, apt_download, extract_deb};
use mm_data::manifest::{AudioLabel, Manifest, ManifestError};

/// The Debian package the sounds come from (CC0 samples), pinned.
pub const SONIC_PI_SAMPLES: DebPackage = DebPackage {
    name: "sonic-pi-samples",
    version: "3.2.2~repack-8",
    sha256: "25f2312d2fae005e6ad0f4726b8ed3084e776006a5a132083506e960224ac79d",
};

/// Groups with at least this many samples become classes.
pub const MIN_GROUP: usize = 8;

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
    /// The manifest is missing, malformed or empty.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// Reads an audio manifest (the house's generic reader, [`AudioLabel`] records); paths are
/// resolved against its folder.
pub fn read_manifest(path: &Path) -> Result<Vec<(PathBuf, AudioLabel)>, DatasetError> {
    let manifest = Manifest::<AudioLabel>::read(path)?;
    Ok(manifest
        .records
        .iter()
        .map(|r| (manifest.resolve(&r.audio), r.clone()))
        .collect())
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
    let mut records = Vec::new();
    for (group, mut files) in groups.into_iter().filter(|(_, f)| f.len() >= MIN_GROUP) {
        files.sort();
        for (i, file) in files.iter().enumerate() {
            records.push(AudioLabel {
                audio: format!("unpacked/usr/share/sonic-pi/samples/{file}"),
                label: group.clone(),
                split: if i % 4 == 3 { "test" } else { "train" }.into(),
            });
        }
    }
    let manifest = dest.join("sounds.jsonl");
    Manifest::write(&manifest, &records)?;
    Ok(manifest)
}
