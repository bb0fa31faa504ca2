//! JSONL manifests: one JSON object per line, one sample per object, paths relative to the
//! manifest's folder.
//!
//! One reader serves every task: [`Manifest<R>`] parses any [`Record`] type, names the file
//! and line of the first bad record, skips blank lines and ignores unknown fields (so richer
//! manifests stay readable). The record types of each task are in [`records`]:
//! image-caption (the format CLIP training reads), audio-label, video clip, question-answer
//! and image-mask.

pub mod records;

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use records::{AudioLabel, ImageCaption, ImageMask, ImageSound, QuestionAnswer, VideoClip};

/// One line of a manifest of some task.
pub trait Record: Serialize + DeserializeOwned {
    /// The task's name for its records, used in errors (`image-caption`).
    const KIND: &'static str;

    /// Checks what the JSON types cannot (a required string is not blank, a list not empty);
    /// the error says which field is wrong.
    fn check(&self) -> Result<(), String>;
}

/// A parsed manifest: its file, the folder its paths are relative to, and its records in file
/// order.
#[derive(Debug, Clone)]
pub struct Manifest<R> {
    /// The manifest file.
    pub path: PathBuf,
    /// The folder media paths are relative to.
    pub root: PathBuf,
    /// The samples, in file order.
    pub records: Vec<R>,
}

/// Why a manifest could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read or written.
    #[error("cannot access manifest {path}: {source}")]
    Io {
        /// The manifest file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a valid record.
    #[error("{path}:{line}: invalid {kind} record: {reason}")]
    Record {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The record type expected.
        kind: &'static str,
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

impl<R: Record> Manifest<R> {
    /// Reads and checks a manifest file; an empty one is an error.
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
                kind: R::KIND,
                reason,
            };
            let record: R = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            record.check().map_err(bad)?;
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

    /// A record's media path (relative to the manifest) made usable: joined to its folder.
    pub fn resolve(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Serializes records as JSONL text.
    pub fn to_jsonl(records: &[R]) -> String {
        let mut out = String::new();
        for r in records {
            out.push_str(&serde_json::to_string(r).expect("records serialize"));
            out.push('\n');
        }
        out
    }

    /// Writes records as a JSONL manifest at `path`, atomically.
    pub fn write(path: &Path, records: &[R]) -> Result<(), ManifestError> {
        crate::fs::atomic_write(path, Self::to_jsonl(records).as_bytes()).map_err(|source| {
            ManifestError::Io {
                path: path.into(),
                source,
            }
        })
    }
}

impl Manifest<ImageCaption> {
    /// Absolute (or manifest-relative) path of a record's image.
    pub fn image_path(&self, record: &ImageCaption) -> PathBuf {
        self.resolve(&record.image)
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
        let m =
            Manifest::<ImageCaption>::parse(text, Path::new("/data/set/manifest.jsonl")).unwrap();
        assert_eq!(m.records.len(), 2);
        assert_eq!(m.records[0].label.as_deref(), Some("cat"));
        assert_eq!(m.records[1].split.as_deref(), Some("test"));
        assert_eq!(
            m.image_path(&m.records[1]),
            PathBuf::from("/data/set/b.png")
        );
    }

    #[test]
    fn errors_name_file_line_and_kind() {
        let parse = |text: &str| {
            Manifest::<ImageCaption>::parse(text, Path::new("m.jsonl"))
                .unwrap_err()
                .to_string()
        };
        let err = parse("{\"image\": \"a.png\", \"captions\": [\"x\"]}\n{\"image\": \"b.png\"}\n");
        assert!(
            err.starts_with("m.jsonl:2: invalid image-caption record"),
            "{err}"
        );
        assert!(err.contains("captions"), "{err}");
        let err = parse("not json\n");
        assert!(err.starts_with("m.jsonl:1:"), "{err}");
        let err = parse("{\"image\": \"a\", \"captions\": []}");
        assert!(err.contains("`captions` is empty"), "{err}");
        let err = Manifest::<AudioLabel>::parse(
            "{\"audio\": \"a.wav\", \"label\": \" \", \"split\": \"train\"}",
            Path::new("s.jsonl"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("s.jsonl:1: invalid audio-label record"),
            "{err}"
        );
        assert!(err.contains("`label` is empty"), "{err}");
    }

    #[test]
    fn missing_and_empty_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.jsonl");
        assert!(matches!(
            Manifest::<ImageCaption>::read(&missing),
            Err(ManifestError::Io { .. })
        ));
        let empty = dir.path().join("empty.jsonl");
        std::fs::write(&empty, "\n").unwrap();
        assert!(matches!(
            Manifest::<VideoClip>::read(&empty),
            Err(ManifestError::Empty { .. })
        ));
    }

    #[test]
    fn written_manifests_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qa.jsonl");
        let records = vec![QuestionAnswer {
            image: "img/1.png".into(),
            question: "What colour is the shape?".into(),
            answers: vec!["red".into()],
            answer_type: Some("color".into()),
            split: Some("train".into()),
        }];
        Manifest::write(&path, &records).unwrap();
        let back = Manifest::<QuestionAnswer>::read(&path).unwrap();
        assert_eq!(back.records, records);
        assert_eq!(back.resolve("img/1.png"), dir.path().join("img/1.png"));
    }
}
