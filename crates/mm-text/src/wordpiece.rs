//! BERT's WordPiece tokenizer as ViLT uses it: `[CLS] text [SEP]`, lower-cased, padded with
//! `[PAD]`, with the `[MASK]` token that masked language modelling needs.
//!
//! [`WordPieceTokenizer::from_folder`] reads an HF folder's `tokenizer.json` (or `vocab.txt`
//! with `tokenizer_config.json`, converted as transformers' `BertConverter` does).
//! [`WordPieceTokenizer::from_words`] builds one whose vocabulary is the special tokens plus
//! every word of a corpus (BERT's lower-casing and punctuation split), for models trained here
//! on a small domain; [`WordPieceTokenizer::save`] writes it as `vocab.txt` +
//! `tokenizer_config.json`, which transformers' `BertTokenizer(Fast)` reads.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::json;
use tokenizers::Tokenizer;

use crate::tokenizer::{MAX_TEXT_BYTES, TokenizerError};
use crate::tokenizer_folder::{TokenizerSettings, bert_json_from_vocab, bert_json_from_vocab_text};

/// The special tokens, in the order [`WordPieceTokenizer::from_words`] numbers them.
pub const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// A WordPiece tokenizer with its special ids.
#[derive(Debug, Clone)]
pub struct WordPieceTokenizer {
    inner: Tokenizer,
    vocab: Vec<String>,
    /// `[PAD]`.
    pub pad: u32,
    /// `[CLS]`.
    pub cls: u32,
    /// `[SEP]`.
    pub sep: u32,
    /// `[MASK]`.
    pub mask: u32,
}

fn invalid(name: &str, reason: impl ToString) -> TokenizerError {
    TokenizerError::Invalid {
        name: name.into(),
        reason: reason.to_string(),
    }
}

/// BERT's basic split: lower-cased, on whitespace, each punctuation mark its own word.
pub fn basic_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for chunk in text.to_lowercase().split_whitespace() {
        let mut word = String::new();
        for ch in chunk.chars() {
            if ch.is_ascii_punctuation() || (!ch.is_alphanumeric() && !ch.is_whitespace()) {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                words.push(ch.to_string());
            } else {
                word.push(ch);
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
    }
    words
}

impl WordPieceTokenizer {
    fn from_tokenizer(inner: Tokenizer, name: &str) -> Result<Self, TokenizerError> {
        let mut vocab: Vec<(String, u32)> = inner.get_vocab(true).into_iter().collect();
        vocab.sort_by_key(|(_, id)| *id);
        let id = |token: &str| {
            inner
                .token_to_id(token)
                .ok_or_else(|| TokenizerError::MissingSpecial {
                    name: name.into(),
                    token: token.into(),
                })
        };
        Ok(WordPieceTokenizer {
            pad: id("[PAD]")?,
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            mask: id("[MASK]")?,
            vocab: vocab.into_iter().map(|(t, _)| t).collect(),
            inner,
        })
    }

    /// The tokenizer of an HF folder: `tokenizer.json`, else `vocab.txt`.
    pub fn from_folder(dir: &Path) -> Result<Self, TokenizerError> {
        let fast = dir.join("tokenizer.json");
        let name = dir.display().to_string();
        let inner = if fast.is_file() {
            Tokenizer::from_file(&fast).map_err(|e| invalid(&name, e))?
        } else {
            let settings = TokenizerSettings::load(dir)?;
            let bytes = bert_json_from_vocab(dir, &settings)?.ok_or_else(|| {
                invalid(
                    &name,
                    "no tokenizer: looked for tokenizer.json and vocab.txt",
                )
            })?;
            Tokenizer::from_bytes(&bytes).map_err(|e| invalid(&name, e))?
        };
        Self::from_tokenizer(inner, &name)
    }

    /// A tokenizer whose vocabulary is [`SPECIALS`] then every word of `texts` (sorted).
    pub fn from_words<S: AsRef<str>>(texts: &[S]) -> Result<Self, TokenizerError> {
        let words: BTreeSet<String> = texts.iter().flat_map(|t| basic_words(t.as_ref())).collect();
        let vocab: Vec<String> = SPECIALS
            .iter()
            .map(|s| s.to_string())
            .chain(
                words
                    .into_iter()
                    .filter(|w| !SPECIALS.contains(&w.as_str())),
            )
            .collect();
        Self::from_vocab(&vocab)
    }

    /// A tokenizer with exactly `vocab` (one token per id; the specials among them).
    pub fn from_vocab(vocab: &[String]) -> Result<Self, TokenizerError> {
        let text = vocab.join("\n") + "\n";
        let bytes = bert_json_from_vocab_text(
            &text,
            &TokenizerSettings::default(),
            Path::new("vocab.txt"),
        )?;
        let inner = Tokenizer::from_bytes(&bytes).map_err(|e| invalid("vocabulary", e))?;
        Self::from_tokenizer(inner, "vocabulary")
    }

    /// Writes `vocab.txt` and `tokenizer_config.json` into `dir`.
    pub fn save(&self, dir: &Path, model_max_length: usize) -> Result<(), TokenizerError> {
        let io = |path: &Path, source| TokenizerError::Io {
            path: path.into(),
            source,
        };
        let vocab = dir.join("vocab.txt");
        mm_data::fs::atomic_write(&vocab, (self.vocab.join("\n") + "\n").as_bytes())
            .map_err(|e| io(&vocab, e))?;
        let config = json!({
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": true,
            "model_max_length": model_max_length,
            "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
            "cls_token": "[CLS]", "mask_token": "[MASK]",
        });
        let path = dir.join("tokenizer_config.json");
        mm_data::fs::atomic_write(&path, &serde_json::to_vec_pretty(&config).expect("json"))
            .map_err(|e| io(&path, e))
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The token of an id (`None` out of range).
    pub fn token(&self, id: u32) -> Option<&str> {
        self.vocab.get(id as usize).map(String::as_str)
    }

    /// The text of `ids` as BERT decodes it: special tokens dropped, `##` pieces joined to
    /// the word before, spaces before punctuation cleaned up.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.vocab.len()) {
            return Err(TokenizerError::Encode(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.vocab.len()
            )));
        }
        self.inner
            .decode(ids, true)
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    /// Tokens of `text` with `[CLS]` and `[SEP]`, uncut.
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

    /// `[CLS] text [SEP]` ids, cut to `max_len` (keeping `[SEP]` last) and padded with
    /// `[PAD]` to `max_len`, and how many are real (the attention mask's ones).
    pub fn encode(&self, text: &str, max_len: usize) -> Result<(Vec<u32>, usize), TokenizerError> {
        if max_len < 2 {
            return Err(TokenizerError::ContextTooShort(max_len));
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(TokenizerError::TooLong { len: text.len() });
        }
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        let content = encoding.get_ids();
        let keep = content.len().min(max_len - 2);
        let mut ids = Vec::with_capacity(max_len);
        ids.push(self.cls);
        ids.extend_from_slice(&content[..keep]);
        ids.push(self.sep);
        let real = ids.len();
        ids.resize(max_len, self.pad);
        Ok((ids, real))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_of_a_corpus_become_whole_tokens() {
        let t =
            WordPieceTokenizer::from_words(&["What color is the shape?", "a red circle"]).unwrap();
        // 5 specials + a, circle, color, is, red, shape, the, what, "?"
        assert_eq!(t.vocab_size(), 14);
        let (ids, real) = t.encode("What is the RED shape?", 10).unwrap();
        assert_eq!(real, 8);
        let tokens: Vec<&str> = ids.iter().map(|&i| t.token(i).unwrap()).collect();
        assert_eq!(
            tokens,
            [
                "[CLS]", "what", "is", "the", "red", "shape", "?", "[SEP]", "[PAD]", "[PAD]"
            ]
        );
        // Unknown words are [UNK]; long texts keep [SEP] last.
        let (ids, real) = t.encode("a purple hexagon is the shape", 5).unwrap();
        assert_eq!(real, 5);
        let tokens: Vec<&str> = ids.iter().map(|&i| t.token(i).unwrap()).collect();
        assert_eq!(tokens, ["[CLS]", "a", "[UNK]", "[UNK]", "[SEP]"]);
        // As transformers with skip_special_tokens: [UNK] is special too.
        assert_eq!(t.decode(&ids).unwrap(), "a");
        let (ids, _) = t.encode("what is the shape?", 8).unwrap();
        assert_eq!(t.decode(&ids).unwrap(), "what is the shape?");
        assert!(t.decode(&[999]).is_err());
        assert!(t.encode("x", 1).is_err());
    }

    #[test]
    fn a_saved_vocabulary_loads_back() {
        let t = WordPieceTokenizer::from_words(&["a blue triangle"]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        t.save(dir.path(), 16).unwrap();
        let back = WordPieceTokenizer::from_folder(dir.path()).unwrap();
        assert_eq!(back.vocab, t.vocab);
        assert_eq!(
            back.encode("a blue triangle", 8).unwrap(),
            t.encode("a blue triangle", 8).unwrap()
        );
        assert_eq!(back.mask, 4);
    }
}
