//! Tokenizers from HF folders in every form they come in: a `tokenizer.json` (fast tokenizer),
//! or only the slow tokenizer's vocabulary files (`vocab.json` + `merges.txt` for CLIP's BPE,
//! `vocab.txt` for BERT's WordPiece), with `tokenizer_config.json`'s special tokens,
//! lower-casing and `model_max_length`.
//!
//! A slow folder becomes the `tokenizer.json` transformers' converters would build from it
//! (`convert_slow_tokenizer.py` `CLIPConverter` and `BertConverter`), so the ids are those
//! `AutoTokenizer` gives in Python for the same folder.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::tokenizer::TokenizerError;

/// The settings of `tokenizer_config.json` that change tokenization.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenizerSettings {
    /// Longest input in tokens, specials included (`model_max_length`; absent or the
    /// "no limit" sentinel transformers writes give `None`).
    pub model_max_length: Option<usize>,
    /// The file's JSON object (special tokens, casing flags), empty without a file.
    pub raw: Map<String, Value>,
}

impl TokenizerSettings {
    /// Reads `tokenizer_config.json` in `dir`, or the defaults where there is none.
    pub fn load(dir: &Path) -> Result<Self, TokenizerError> {
        let path = dir.join("tokenizer_config.json");
        if !path.is_file() {
            return Ok(Self::default());
        }
        let value: Value = serde_json::from_slice(&read(&path)?).map_err(|e| invalid(&path, e))?;
        let Value::Object(raw) = value else {
            return Err(invalid(&path, "not a JSON object"));
        };
        // transformers writes int(1e30) when a tokenizer sets no limit.
        let model_max_length = raw
            .get("model_max_length")
            .and_then(Value::as_f64)
            .filter(|n| (1.0..1e12).contains(n))
            .map(|n| n as usize);
        Ok(Self {
            model_max_length,
            raw,
        })
    }

    /// The special token `key` (`bos_token`, `pad_token`...), written as a string or as an
    /// `AddedToken` object, else `default`.
    pub fn special(&self, key: &str, default: &str) -> String {
        match self.raw.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(o)) => o
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_string(),
            _ => default.to_string(),
        }
    }

    /// The `added_tokens_decoder` entries (tokens transformers adds on top of the vocabulary,
    /// such as a pad token `!` matched whole), in `tokenizer.json`'s `added_tokens` form.
    pub fn added_tokens(&self) -> Vec<Value> {
        let Some(Value::Object(decoder)) = self.raw.get("added_tokens_decoder") else {
            return Vec::new();
        };
        let mut out: Vec<Value> = decoder
            .iter()
            .filter_map(|(id, entry)| {
                let id: u64 = id.parse().ok()?;
                let content = entry.get("content")?.as_str()?;
                let flag = |k: &str, d: bool| entry.get(k).and_then(Value::as_bool).unwrap_or(d);
                Some(json!({"id": id, "content": content,
                    "single_word": flag("single_word", false), "lstrip": flag("lstrip", false),
                    "rstrip": flag("rstrip", false), "normalized": flag("normalized", true),
                    "special": flag("special", false)}))
            })
            .collect();
        out.sort_by_key(|t| t["id"].as_u64());
        out
    }

    /// A boolean setting, else `default`.
    pub fn flag(&self, key: &str, default: bool) -> bool {
        self.raw
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    }
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TokenizerError> {
    std::fs::read(path).map_err(|source| TokenizerError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn invalid(path: &Path, reason: impl ToString) -> TokenizerError {
    TokenizerError::Invalid {
        name: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn added_token(id: u64, content: &str, normalized: bool) -> Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false,
        "rstrip": false, "normalized": normalized, "special": true})
}

/// The added-token entries for `tokens`, each looked up in `vocab` (a token the vocabulary lacks
/// is an error naming it), with the settings' own `added_tokens_decoder` entries taking
/// precedence, as transformers builds them.
fn specials(
    vocab: &Map<String, Value>,
    tokens: &[String],
    normalized: bool,
    settings: &TokenizerSettings,
    path: &Path,
) -> Result<Vec<Value>, TokenizerError> {
    let mut out: Vec<Value> = settings.added_tokens();
    for token in tokens {
        let id = vocab.get(token).and_then(Value::as_u64).ok_or_else(|| {
            invalid(
                path,
                format!("special token `{token}` is not in the vocabulary"),
            )
        })?;
        if !out.iter().any(|t| t["content"] == json!(token)) {
            out.push(added_token(id, token, normalized));
        }
    }
    out.sort_by_key(|t| t["id"].as_u64());
    Ok(out)
}

/// The `tokenizer.json` of CLIP's BPE built from `vocab.json` + `merges.txt` in `dir`, as
/// transformers `CLIPTokenizer` reads them (the merges file's first line skipped, at most
/// 48,894 merges) and `CLIPConverter` converts them; `None` if the folder lacks either file.
pub fn clip_json_from_vocab(
    dir: &Path,
    settings: &TokenizerSettings,
) -> Result<Option<Vec<u8>>, TokenizerError> {
    let (vocab_path, merges_path) = (dir.join("vocab.json"), dir.join("merges.txt"));
    if !vocab_path.is_file() || !merges_path.is_file() {
        return Ok(None);
    }
    let vocab: Map<String, Value> =
        serde_json::from_slice(&read(&vocab_path)?).map_err(|e| invalid(&vocab_path, e))?;
    let merges_text =
        String::from_utf8(read(&merges_path)?).map_err(|e| invalid(&merges_path, e))?;
    // transformers `CLIPTokenizer.__init__`: `read().strip().split("\n")[1 : 49152 - 256 - 2 + 1]`.
    let merges: Vec<Value> = merges_text
        .trim()
        .split('\n')
        .skip(1)
        .take(49152 - 256 - 2)
        .map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                [a, b] => Ok(json!([a, b])),
                _ => Err(invalid(
                    &merges_path,
                    format!("merge line `{line}` is not two symbols"),
                )),
            }
        })
        .collect::<Result<_, _>>()?;
    let unk = settings.special("unk_token", "<|endoftext|>");
    let bos = settings.special("bos_token", "<|startoftext|>");
    let eos = settings.special("eos_token", "<|endoftext|>");
    let pad = settings.special("pad_token", "<|endoftext|>");
    let tokens = [bos.clone(), eos.clone(), unk.clone(), pad];
    let added = specials(&vocab, &tokens, true, settings, &vocab_path)?;
    let id = |t: &str| vocab[t].clone();
    // transformers `convert_slow_tokenizer.py` `CLIPConverter.converted`.
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex":
                "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"},
             "behavior": "Removed", "invert": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]},
        "post_processor": {"type": "RobertaProcessing", "sep": [eos, id(&eos)],
            "cls": [bos, id(&bos)], "trim_offsets": false, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": unk,
            "continuing_subword_prefix": "", "end_of_word_suffix": "</w>", "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges}
    });
    Ok(Some(serde_json::to_vec(&tokenizer).expect("json")))
}

/// The `tokenizer.json` of a BERT WordPiece tokenizer built from `vocab.txt` in `dir`, as
/// transformers `BertTokenizer` reads it (one token a line, ids by line) and `BertConverter`
/// converts it, with `tokenizer_config.json`'s `do_lower_case`, `strip_accents`,
/// `tokenize_chinese_chars` and special tokens; `None` without `vocab.txt`.
pub fn bert_json_from_vocab(
    dir: &Path,
    settings: &TokenizerSettings,
) -> Result<Option<Vec<u8>>, TokenizerError> {
    let vocab_path = dir.join("vocab.txt");
    if !vocab_path.is_file() {
        return Ok(None);
    }
    let text = String::from_utf8(read(&vocab_path)?).map_err(|e| invalid(&vocab_path, e))?;
    bert_json_from_vocab_text(&text, settings, &vocab_path).map(Some)
}

/// [`bert_json_from_vocab`] of the text of a `vocab.txt`; `vocab_path` names it in errors.
pub fn bert_json_from_vocab_text(
    text: &str,
    settings: &TokenizerSettings,
    vocab_path: &Path,
) -> Result<Vec<u8>, TokenizerError> {
    let mut vocab = Map::new();
    // transformers `load_vocab`: each line, its trailing newline removed, is the next id (a
    // repeated token keeps its last).
    for (i, token) in text.lines().enumerate() {
        vocab.insert(token.to_string(), json!(i));
    }
    let names = [
        "unk_token",
        "sep_token",
        "pad_token",
        "cls_token",
        "mask_token",
    ];
    let defaults = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"];
    let tokens: Vec<String> = names
        .iter()
        .zip(defaults)
        .map(|(k, d)| settings.special(k, d))
        .collect();
    let added = specials(&vocab, &tokens, false, settings, vocab_path)?;
    let (unk, sep, cls) = (&tokens[0], &tokens[1], &tokens[3]);
    let lowercase = settings.flag("do_lower_case", true);
    let strip_accents = settings
        .raw
        .get("strip_accents")
        .cloned()
        .unwrap_or(Value::Null);
    let chinese = settings.flag("tokenize_chinese_chars", true);
    let special = |t: &str, type_id: u32| json!({"SpecialToken": {"id": t, "type_id": type_id}});
    let seq = |s: &str, type_id: u32| json!({"Sequence": {"id": s, "type_id": type_id}});
    // transformers `convert_slow_tokenizer.py` `BertConverter.converted`.
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true,
            "handle_chinese_chars": chinese, "strip_accents": strip_accents, "lowercase": lowercase},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [special(cls, 0), seq("A", 0), special(sep, 0)],
            "pair": [special(cls, 0), seq("A", 0), special(sep, 0), seq("B", 1), special(sep, 1)],
            "special_tokens": {
                cls.as_str(): {"id": cls, "ids": [vocab[cls.as_str()]], "tokens": [cls]},
                sep.as_str(): {"id": sep, "ids": [vocab[sep.as_str()]], "tokens": [sep]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": unk, "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab}
    });
    Ok(serde_json::to_vec(&tokenizer).expect("json"))
}
