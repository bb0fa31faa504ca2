//! The CLIP BPE tokenizer.
//!
//! Loads any HF `tokenizer.json`; [`ClipTokenizer::bundled`] gives the one built from the BPE
//! vocabulary OpenAI CLIP and open_clip use (see `assets/build_clip_tokenizer.py`). Texts are
//! wrapped in `<|startoftext|>` / `<|endoftext|>`, truncated to the context length keeping the
//! end-of-text token last (as open_clip and `CLIPTokenizerFast(truncation=True)` do), and
//! padded with the end-of-text id. [`ClipTokenizer::from_folder`] reads an HF folder's
//! tokenizer in any of its forms (see [`crate::tokenizer_folder`]), with its own special tokens,
//! padding token and `model_max_length`.

use std::io::Read;
use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use tokenizers::{AddedToken, Tokenizer};

use crate::tokenizer_folder::{TokenizerSettings, clip_json_from_vocab};

/// The gzipped `tokenizer.json` built by `assets/build_clip_tokenizer.py`.
const BUNDLED: &[u8] = include_bytes!("../assets/clip-tokenizer.json.gz");

/// CLIP's context length.
pub const CLIP_CONTEXT_LENGTH: usize = 77;

/// Longest text accepted, in bytes; CLIP sees at most 75 tokens of it anyway.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Why text could not be tokenized.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The tokenizer file could not be read.
    #[error("cannot read tokenizer {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The tokenizer file is not a valid `tokenizer.json`.
    #[error("invalid tokenizer {name}: {reason}")]
    Invalid {
        /// The file or source.
        name: String,
        /// The parser's message.
        reason: String,
    },
    /// The tokenizer lacks a special token it needs.
    #[error("tokenizer {name} has no `{token}` token; is it a CLIP tokenizer?")]
    MissingSpecial {
        /// The file or source.
        name: String,
        /// The missing token.
        token: String,
    },
    /// The text is longer than [`MAX_TEXT_BYTES`].
    #[error("text of {len} bytes is longer than the {MAX_TEXT_BYTES}-byte limit")]
    TooLong {
        /// The text's length.
        len: usize,
    },
    /// The context length cannot hold the two special tokens.
    #[error("context length {0} is too short: it must hold at least the two special tokens")]
    ContextTooShort(usize),
    /// The tokenizer library failed.
    #[error("tokenization failed: {0}")]
    Encode(String),
}

/// A CLIP tokenizer.
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    bos: u32,
    eot: u32,
    pad: u32,
    unk: String,
    model_max_length: Option<usize>,
}

/// Token ids of a batch, padded to one context length.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    /// `batch * context_length` ids, row-major.
    pub ids: Vec<i64>,
    /// Number of texts.
    pub batch: usize,
    /// Tokens per row.
    pub context_length: usize,
    /// Index of each row's end-of-text token (the pooling position).
    pub eot_positions: Vec<i64>,
}

impl TokenBatch {
    /// Moves the batch to `device` as `(ids [batch, context], eot_positions [batch])`.
    pub fn to_tensors<B: Backend>(
        &self,
        device: &B::Device,
    ) -> (Tensor<B, 2, Int>, Tensor<B, 1, Int>) {
        let ids = Tensor::from_data(
            TensorData::new(self.ids.clone(), [self.batch, self.context_length]),
            device,
        );
        let eot = Tensor::from_data(
            TensorData::new(self.eot_positions.clone(), [self.batch]),
            device,
        );
        (ids, eot)
    }
}

impl ClipTokenizer {
    /// The CLIP tokenizer shipped with this crate.
    pub fn bundled() -> Self {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(BUNDLED)
            .read_to_end(&mut json)
            .expect("bundled tokenizer is valid gzip");
        Self::from_bytes(&json, "bundled CLIP tokenizer").expect("bundled tokenizer is valid")
    }

    /// Loads a `tokenizer.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TokenizerError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| TokenizerError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses `tokenizer.json` bytes with CLIP's special tokens; `name` identifies them in
    /// errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self, TokenizerError> {
        Self::with_settings(bytes, name, &TokenizerSettings::default())
    }

    /// Parses `tokenizer.json` bytes with the special tokens and length limit of `settings`
    /// (CLIP's where it names none).
    pub fn with_settings(
        bytes: &[u8],
        name: &str,
        settings: &TokenizerSettings,
    ) -> Result<Self, TokenizerError> {
        let inner = Tokenizer::from_bytes(bytes).map_err(|e| TokenizerError::Invalid {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        let special = |key: &str, default: &str| {
            let token = settings.special(key, default);
            inner
                .token_to_id(&token)
                .ok_or(TokenizerError::MissingSpecial {
                    name: name.to_string(),
                    token,
                })
        };
        Ok(Self {
            bos: special("bos_token", "<|startoftext|>")?,
            eot: special("eos_token", "<|endoftext|>")?,
            pad: special("pad_token", "<|endoftext|>")?,
            unk: settings.special("unk_token", "<|endoftext|>"),
            model_max_length: settings.model_max_length,
            inner,
        })
    }

    /// The tokenizer of the HF folder `dir`: `tokenizer.json`, else `vocab.json` +
    /// `merges.txt`, each with `tokenizer_config.json`'s settings; `None` if the folder has
    /// neither form.
    pub fn from_folder(dir: &Path) -> Result<Option<Self>, TokenizerError> {
        let settings = TokenizerSettings::load(dir)?;
        let fast = dir.join("tokenizer.json");
        if fast.is_file() {
            let bytes = crate::tokenizer_folder::read(&fast)?;
            let name = fast.display().to_string();
            let mut tokenizer = Self::with_settings(&bytes, &name, &settings)?;
            tokenizer.add_configured_tokens(&settings, &name)?;
            return Ok(Some(tokenizer));
        }
        match clip_json_from_vocab(dir, &settings)? {
            Some(bytes) => {
                let name = format!("{} (vocab.json + merges.txt)", dir.display());
                Self::with_settings(&bytes, &name, &settings).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Adds `tokenizer_config.json`'s `added_tokens_decoder` entries that `tokenizer.json`
    /// lacks, as transformers does when it loads a fast tokenizer; an entry whose id the
    /// tokenizer would not give it is an error naming it.
    fn add_configured_tokens(
        &mut self,
        settings: &TokenizerSettings,
        name: &str,
    ) -> Result<(), TokenizerError> {
        for entry in settings.added_tokens() {
            let (Some(content), Some(id)) = (entry["content"].as_str(), entry["id"].as_u64())
            else {
                continue;
            };
            let present = self
                .inner
                .get_added_tokens_decoder()
                .get(&(id as u32))
                .is_some_and(|t| t.content == content);
            if present {
                continue;
            }
            let flag = |k: &str| entry[k].as_bool().unwrap_or(false);
            let token = AddedToken::from(content.to_string(), flag("special"))
                .single_word(flag("single_word"))
                .lstrip(flag("lstrip"))
                .rstrip(flag("rstrip"))
                .normalized(entry["normalized"].as_bool().unwrap_or(true));
            self.inner.add_special_tokens(&[token]);
            if self.inner.token_to_id(content) != Some(id as u32) {
                return Err(TokenizerError::Invalid {
                    name: name.to_string(),
                    reason: format!(
                        "tokenizer_config.json adds `{content}` as id {id}, which the \
                         vocabulary does not give it"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The most tokens a text keeps for a model of `context_length` positions: the smaller of
    /// that and `model_max_length`.
    pub fn max_tokens(&self, context_length: usize) -> usize {
        context_length.min(self.model_max_length.unwrap_or(usize::MAX))
    }

    /// How many tokens `text` has whole, start and end tokens included, before any truncation
    /// (to tell a caller that a text would be cut).
    pub fn count_tokens(&self, text: &str) -> Result<usize, TokenizerError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(TokenizerError::TooLong { len: text.len() });
        }
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        Ok(encoding.get_ids().len() + 2)
    }

    /// The most tokens a text keeps (`model_max_length`), if the tokenizer sets a limit.
    pub fn model_max_length(&self) -> Option<usize> {
        self.model_max_length
    }

    /// The start-of-text id.
    pub fn bos_id(&self) -> u32 {
        self.bos
    }

    /// The `tokenizer_config.json` that gives this tokenizer's special tokens and length limit
    /// (its own, capped at the model's `context_length`) back to transformers.
    pub fn config_json(&self, context_length: usize) -> serde_json::Value {
        let token = |id: u32| self.inner.id_to_token(id).unwrap_or_default();
        serde_json::json!({
            "tokenizer_class": "CLIPTokenizer",
            "bos_token": token(self.bos),
            "eos_token": token(self.eot),
            "unk_token": self.unk,
            "pad_token": token(self.pad),
            "model_max_length": self.max_tokens(context_length),
        })
    }

    /// The padding id (`pad_token`; the end-of-text id for OpenAI's CLIP).
    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    /// The tokenizer as `tokenizer.json` text (for exporting HF folders).
    pub fn to_json(&self) -> String {
        self.inner
            .to_string(false)
            .expect("a loaded tokenizer serializes")
    }

    /// Number of tokens in the vocabulary (special tokens included).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The end-of-text id, also used for padding.
    pub fn eot_id(&self) -> u32 {
        self.eot
    }

    /// Token ids of one text, with start and end tokens, truncated to `context_length` (or to
    /// the tokenizer's `model_max_length` where that is shorter).
    pub fn encode(&self, text: &str, context_length: usize) -> Result<Vec<u32>, TokenizerError> {
        let context_length = self.max_tokens(context_length);
        if context_length < 2 {
            return Err(TokenizerError::ContextTooShort(context_length));
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(TokenizerError::TooLong { len: text.len() });
        }
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        let content = encoding.get_ids();
        let keep = content.len().min(context_length - 2);
        let mut ids = Vec::with_capacity(keep + 2);
        ids.push(self.bos);
        ids.extend_from_slice(&content[..keep]);
        ids.push(self.eot);
        Ok(ids)
    }

    /// Tokenizes and pads a batch to `context_length` with the padding id.
    pub fn encode_batch<S: AsRef<str>>(
        &self,
        texts: &[S],
        context_length: usize,
    ) -> Result<TokenBatch, TokenizerError> {
        let mut ids = Vec::with_capacity(texts.len() * context_length);
        let mut eot_positions = Vec::with_capacity(texts.len());
        for text in texts {
            let row = self.encode(text.as_ref(), context_length)?;
            eot_positions.push(row.len() as i64 - 1);
            ids.extend(row.iter().map(|&id| id as i64));
            ids.extend(std::iter::repeat_n(
                self.pad as i64,
                context_length - row.len(),
            ));
        }
        Ok(TokenBatch {
            ids,
            batch: texts.len(),
            context_length,
            eot_positions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_pads_and_truncates() {
        let tok = ClipTokenizer::bundled();
        assert_eq!(tok.vocab_size(), 49408);
        let batch = tok.encode_batch(&["a photo of a cat", ""], 8).unwrap();
        assert_eq!(
            &batch.ids[..8],
            &[49406, 320, 1125, 539, 320, 2368, 49407, 49407]
        );
        assert_eq!(&batch.ids[8..10], &[49406, 49407]);
        assert_eq!(batch.eot_positions, vec![6, 1]);
        let long = tok.encode(&"cat ".repeat(50), 8).unwrap();
        assert_eq!(long.len(), 8);
        assert_eq!(long[7], 49407);
    }

    #[test]
    fn model_max_length_cuts_sooner_and_whole_counts_say_so() {
        let json = ClipTokenizer::bundled().to_json();
        let settings = TokenizerSettings {
            model_max_length: Some(5),
            raw: Default::default(),
        };
        let tok = ClipTokenizer::with_settings(json.as_bytes(), "t", &settings).unwrap();
        assert_eq!(tok.max_tokens(77), 5);
        assert_eq!(tok.max_tokens(3), 3);
        let ids = tok.encode("a photo of a cat", 77).unwrap();
        assert_eq!(ids, vec![49406, 320, 1125, 539, 49407]);
        assert_eq!(tok.count_tokens("a photo of a cat").unwrap(), 7);
        let batch = tok.encode_batch(&["a photo of a cat"], 8).unwrap();
        assert_eq!(batch.ids.len(), 8, "padded to the model's context");
        assert_eq!(batch.eot_positions, vec![4]);
    }

    #[test]
    fn rejects_bad_input_with_clear_errors() {
        let tok = ClipTokenizer::bundled();
        let err = tok.encode(&"x".repeat(MAX_TEXT_BYTES + 1), 77).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
        assert!(matches!(
            tok.encode("a", 1),
            Err(TokenizerError::ContextTooShort(1))
        ));
        let err = ClipTokenizer::from_bytes(b"{}", "t.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.json"), "{err}");
    }
}
