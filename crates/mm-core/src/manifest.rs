//! The JSONL dataset manifest: one JSON object per line, one sample per object.
//!
//! ```json
//! {"image": "img/1f600.png", "captions": ["grinning face", "grinning"], "label": "face-smiling", "split": "train"}
//! ```
//! - `image`: path relative to the manifest's folder (required);
//! - `captions`: one or more strings (required, not empty);
//! - `label`: class name (optional); `split`: free-form split name (optional).
//!
//! Unknown fields are ignored, so richer manifests stay readable. Blank lines are skipped.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One sample of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Image path, relative to the manifest's folder.
    pub image: String,
    /// Captions describing the image; the first is the primary one.
    pub captions: Vec<String>,
    /// Class label, when the dataset has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Split name (`train`, `test`, ...), when the dataset has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

/// A parsed manifest: its folder and its records in file order.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file.
    pub path: PathBuf,
    /// The folder media paths are relative to.
    pub root: PathBuf,
    /// The samples, in file order.
    pub records: Vec<Record>,
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Io {
        /// The manifest file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a valid record.
    #[error("{path}:{line}: invalid manifest record: {reason}")]
    Record {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The manifest has no records.
    #[error("manifest {path} has no records")]
    Empty {
        /// The manifest file.
        path: PathBuf,
    },
}

impl Manifest {
    /// Reads and validates a manifest file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = path.as_ref().to_path_buf();
        let text = fs::read_to_string(&path).map_err(|source| ManifestError::Io {
            path: path.clone(),
            source,
        })?;
        let manifest = Self::parse(&text, &path)?;
        if manifest.records.is_empty() {
            return Err(ManifestError::Empty { path });
        }
        Ok(manifest)
    }

    /// Parses manifest text; `path` names the file in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ManifestError> {
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |reason: String| ManifestError::Record {
                path: path.to_path_buf(),
                line: i + 1,
                reason,
            };
            let record: Record = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            if record.image.trim().is_empty() {
                return Err(bad("`image` is empty".into()));
            }
            if record.captions.is_empty() {
                return Err(bad("`captions` is empty".into()));
            }
            records.push(record);
        }
        let root = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Self {
            path: path.to_path_buf(),
            root,
            records,
        })
    }

    /// Absolute (or manifest-relative) path of a record's image.
    pub fn image_path(&self, record: &Record) -> PathBuf {
        self.root.join(&record.image)
    }

    /// Serializes records as JSONL text.
    pub fn to_jsonl(records: &[Record]) -> String {
        let mut out = String::new();
        for r in records {
            out.push_str(&serde_json::to_string(r).expect("records serialize"));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_and_ignores_unknown_fields() {
        let text = r#"{"image": "a.png", "captions": ["a cat"], "label": "cat", "extra": 3}

{"image": "b.png", "captions": ["a dog", "dog"], "split": "test"}
"#;
        let m = Manifest::parse(text, Path::new("/data/set/manifest.jsonl")).unwrap();
        assert_eq!(m.records.len(), 2);
        assert_eq!(m.records[0].label.as_deref(), Some("cat"));
        assert_eq!(m.records[1].split.as_deref(), Some("test"));
        assert_eq!(
            m.image_path(&m.records[1]),
            PathBuf::from("/data/set/b.png")
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = "{\"image\": \"a.png\", \"captions\": [\"x\"]}\n{\"image\": \"b.png\"}\n";
        let err = Manifest::parse(text, Path::new("m.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m.jsonl:2:"), "{err}");
        assert!(err.contains("captions"), "{err}");
        let err = Manifest::parse("not json\n", Path::new("m.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m.jsonl:1:"), "{err}");
        let err = Manifest::parse("{\"image\": \"a\", \"captions\": []}", Path::new("m.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`captions` is empty"), "{err}");
    }

    #[test]
    fn missing_and_empty_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.jsonl");
        assert!(matches!(
            Manifest::read(&missing),
            Err(ManifestError::Io { .. })
        ));
        let empty = dir.path().join("empty.jsonl");
        std::fs::write(&empty, "\n").unwrap();
        assert!(matches!(
            Manifest::read(&empty),
            Err(ManifestError::Empty { .. })
        ));
    }
}
