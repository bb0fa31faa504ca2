//! Sound embeddings made by another model, as the localizer's sound input in place of the
//! log-mel its audio CNN reads: a JSONL file with one `{"sha256", "embedding"}` per sound file
//! (the sha256 of the file's bytes, so the same recording matches wherever it sits; other
//! fields, such as the file's path, are ignored). With them the localizer's sound side is one
//! trained projection of a frozen embedding (`LocalizerConfig::sound_embedding`), which is how
//! a pretrained audio model joins it before it can run on Burn itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mm_audio::features::Features;
use serde::Deserialize;

use super::clips::{AvClip, mel_extractor};
use crate::error::{Result, VideoError};

/// Embeddings by the sha256 of the sound file they were made from.
#[derive(Debug, Clone)]
pub struct SoundEmbeddings {
    file: PathBuf,
    width: usize,
    by_hash: HashMap<String, Vec<f64>>,
}

#[derive(Deserialize)]
struct Line {
    sha256: String,
    embedding: Vec<f64>,
}

impl SoundEmbeddings {
    /// Reads `file`; every embedding must be finite and of one width.
    pub fn read(file: &Path) -> Result<Self> {
        let bad = |reason: String| VideoError::Request(format!("{}: {reason}", file.display()));
        let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
        let mut by_hash = HashMap::new();
        let mut width = None;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let n = i + 1;
            let l: Line = serde_json::from_str(line).map_err(|e| bad(format!("line {n}: {e}")))?;
            if l.sha256.len() != 64 || !l.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!("line {n}: `sha256` is not 64 hex digits")));
            }
            if l.embedding.is_empty() || l.embedding.iter().any(|v| !v.is_finite()) {
                return Err(bad(format!(
                    "line {n}: the embedding is empty or not finite"
                )));
            }
            match width {
                None => width = Some(l.embedding.len()),
                Some(w) if w != l.embedding.len() => {
                    return Err(bad(format!(
                        "line {n}: an embedding of {} values after ones of {w}",
                        l.embedding.len()
                    )));
                }
                Some(_) => {}
            }
            by_hash.insert(l.sha256.to_ascii_lowercase(), l.embedding);
        }
        let width = width.ok_or_else(|| bad("no embeddings".into()))?;
        Ok(SoundEmbeddings {
            file: file.to_path_buf(),
            width,
            by_hash,
        })
    }

    /// Values per embedding.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The embedding of the sound file at `audio`, as a one-row [`Features`].
    pub fn features(&self, audio: &Path) -> Result<Features> {
        let hash = mm_data::fetch::sha256_file(audio)
            .map_err(|e| VideoError::Request(format!("{}: {e}", audio.display())))?;
        let data = self.by_hash.get(&hash).ok_or_else(|| {
            VideoError::Request(format!(
                "{} has no embedding of {} (sha256 {hash}); embed every sound the run reads",
                self.file.display(),
                audio.display()
            ))
        })?;
        Ok(Features {
            rows: 1,
            frames: self.width,
            data: data.clone(),
        })
    }
}

/// How a sound file becomes the localizer's sound input.
#[derive(Debug, Clone, Copy)]
pub enum SoundInput<'a> {
    /// The normalized log-mel of its first seconds (the audio CNN's input).
    LogMel,
    /// Its embedding from a file.
    Embedding(&'a SoundEmbeddings),
}

impl SoundInput<'_> {
    /// The input for `samples`, the decoded sound of the file at `path`.
    pub fn features(&self, samples: &[f32], path: &Path) -> Result<Features> {
        match self {
            SoundInput::LogMel => AvClip::log_mel(samples, &mel_extractor()),
            SoundInput::Embedding(e) => e.features(path),
        }
    }
}
