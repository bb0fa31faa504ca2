//! The emoji image-caption dataset, from the npm packages `emoji-datasource-google` (training
//! set) and `emoji-datasource-twitter` (test set: the same emoji, drawn in a style the model
//! never saw).
//!
//! Each emoji with a 64 px image in both styles becomes one record: its lower-cased name and
//! its short names (with `_` and `-` read as spaces) are the captions, its subcategory the
//! label. Skin-tone variants are left out: they would be near-duplicates with different names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mm_data::fetch::{FetchError, NpmPackage, extract_tgz, npm_pack};
use mm_data::manifest::{ImageCaption, Manifest};
use serde::Deserialize;

/// The Google-style emoji images, pinned.
pub const EMOJI_GOOGLE: NpmPackage = NpmPackage {
    name: "emoji-datasource-google",
    version: "16.0.0",
    sha256: "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438",
};

/// The Twitter-style (Twemoji) emoji images, pinned.
pub const EMOJI_TWITTER: NpmPackage = NpmPackage {
    name: "emoji-datasource-twitter",
    version: "16.0.0",
    sha256: "f64a530c63bca463bd8317fdc4615ce63a53a0c65018e4ce2d848aaba7a28877",
};

/// Prompt templates for zero-shot classification of emoji subcategories; the first is the
/// single-prompt baseline.
pub const EMOJI_TEMPLATES: &[&str] = &[
    "an emoji of {}.",
    "{}",
    "a {} emoji.",
    "an icon of {}.",
    "a picture of {}.",
    "a drawing of {}.",
    "a cartoon of {}.",
    "a small image of {}.",
];

/// Templates wrapped around an emoji's name when its captions are enriched
/// ([`enrich_emoji_captions`]), as CLIP's web captions wrap names in sentences.
pub const EMOJI_CAPTION_TEMPLATES: &[&str] =
    &["an emoji of a {}.", "a {} emoji.", "a drawing of a {}."];

/// Enriched captions of an emoji record: its own captions, then its first caption (the name)
/// in each of [`EMOJI_CAPTION_TEMPLATES`], then `"{subcategory} emoji: {name}."` (its label's
/// words name its kind: "animal mammal emoji: dog face."). The first caption stays first, so
/// retrieval evaluation is unchanged.
pub fn enrich_emoji_captions(record: &ImageCaption) -> ImageCaption {
    let mut out = record.clone();
    let Some(name) = record.captions.first() else {
        return out;
    };
    for template in EMOJI_CAPTION_TEMPLATES {
        out.captions.push(template.replace("{}", name));
    }
    if let Some(kind) = &record.label {
        out.captions.push(format!("{kind} emoji: {name}."));
    }
    out
}

/// Why the dataset could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// Fetching or unpacking failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// `emoji.json` is missing or malformed.
    #[error("{path}: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Writing a manifest failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
struct EmojiEntry {
    name: Option<String>,
    image: String,
    #[serde(default)]
    short_names: Vec<String>,
    subcategory: String,
    #[serde(default)]
    has_img_google: bool,
    #[serde(default)]
    has_img_twitter: bool,
}

/// Paths of the prepared emoji manifests.
#[derive(Debug, Clone)]
pub struct EmojiManifests {
    /// Google style, split `train`.
    pub google: PathBuf,
    /// Twitter style, split `test`.
    pub twitter: PathBuf,
    /// Records in each.
    pub records: usize,
}

/// Turns a label or short name into words: `face-smiling` -> `face smiling`.
pub fn words(s: &str) -> String {
    s.replace(['_', '-'], " ").to_lowercase()
}

/// Captions of one emoji: its name, then its short names, without repeats.
fn captions(entry: &EmojiEntry) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    let name = entry.name.as_deref().map(str::to_lowercase);
    for c in name
        .into_iter()
        .chain(entry.short_names.iter().map(|s| words(s)))
    {
        if !c.trim().is_empty() && seen.insert(c.clone()) {
            out.push(c);
        }
    }
    out
}

/// Builds the two manifests' records from `emoji.json` text.
pub fn emoji_records(
    metadata: &str,
    path: &Path,
) -> Result<(Vec<ImageCaption>, Vec<ImageCaption>), DatasetError> {
    let entries: Vec<EmojiEntry> =
        serde_json::from_str(metadata).map_err(|e| DatasetError::Metadata {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let (mut google, mut twitter) = (Vec::new(), Vec::new());
    for e in entries
        .iter()
        .filter(|e| e.has_img_google && e.has_img_twitter)
    {
        let caps = captions(e);
        if caps.is_empty() {
            continue;
        }
        let record = |style: &str, split: &str| ImageCaption {
            image: format!("img/{style}/64/{}", e.image),
            captions: caps.clone(),
            label: Some(words(&e.subcategory)),
            split: Some(split.to_string()),
        };
        google.push(record("google", "train"));
        twitter.push(record("twitter", "test"));
    }
    Ok((google, twitter))
}

/// Fetches both packages into `cache`, unpacks the 64 px images into `dest`, and writes
/// `dest/google.jsonl` and `dest/twitter.jsonl`.
pub fn prepare_emoji(cache: &Path, dest: &Path) -> Result<EmojiManifests, DatasetError> {
    let unpack = dest.join("unpacked");
    for (pkg, style) in [(EMOJI_GOOGLE, "google"), (EMOJI_TWITTER, "twitter")] {
        let tgz = npm_pack(&pkg, cache)?;
        let prefix = format!("package/img/{style}/64/");
        extract_tgz(&tgz, &unpack, |p| {
            p.starts_with(&prefix) || p == "package/emoji.json"
        })?;
    }
    let meta_path = unpack.join("package/emoji.json");
    let metadata = std::fs::read_to_string(&meta_path).map_err(|e| DatasetError::Metadata {
        path: meta_path.clone(),
        reason: e.to_string(),
    })?;
    let (google, twitter) = emoji_records(&metadata, &meta_path)?;
    let write = |name: &str, records: &[ImageCaption]| -> Result<PathBuf, DatasetError> {
        let path = dest.join(name);
        // Paths in the manifest are relative to its folder: point them into `unpacked/package`.
        let rebased: Vec<ImageCaption> = records
            .iter()
            .map(|r| ImageCaption {
                image: format!("unpacked/package/{}", r.image),
                ..r.clone()
            })
            .collect();
        mm_data::fs::atomic_write(&path, Manifest::to_jsonl(&rebased).as_bytes()).map_err(
            |source| DatasetError::Io {
                path: path.clone(),
                source,
            },
        )?;
        Ok(path)
    };
    Ok(EmojiManifests {
        google: write("google.jsonl", &google)?,
        twitter: write("twitter.jsonl", &twitter)?,
        records: google.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_use_names_short_names_and_subcategories() {
        let meta = r#"[
          {"name": "GRINNING FACE", "image": "1f600.png", "short_names": ["grinning"],
           "subcategory": "face-smiling", "has_img_google": true, "has_img_twitter": true},
          {"name": "Egypt Flag", "image": "1f1ea-1f1ec.png", "short_names": ["flag-eg", "egypt flag"],
           "subcategory": "country-flag", "has_img_google": true, "has_img_twitter": true},
          {"name": "ONLY GOOGLE", "image": "x.png", "short_names": [], "subcategory": "x",
           "has_img_google": true, "has_img_twitter": false}
        ]"#;
        let (google, twitter) = emoji_records(meta, Path::new("emoji.json")).unwrap();
        assert_eq!(google.len(), 2);
        assert_eq!(twitter.len(), 2);
        assert_eq!(google[0].captions, vec!["grinning face", "grinning"]);
        assert_eq!(google[1].captions, vec!["egypt flag", "flag eg"]);
        assert_eq!(google[0].label.as_deref(), Some("face smiling"));
        assert_eq!(google[0].image, "img/google/64/1f600.png");
        assert_eq!(twitter[0].image, "img/twitter/64/1f600.png");
        assert_eq!(twitter[0].split.as_deref(), Some("test"));
    }

    #[test]
    fn enrichment_wraps_the_name_and_names_the_kind() {
        let record = ImageCaption {
            image: "dog.png".into(),
            captions: vec!["dog face".into(), "dog".into()],
            label: Some("animal mammal".into()),
            split: None,
        };
        let enriched = enrich_emoji_captions(&record);
        assert_eq!(
            enriched.captions,
            [
                "dog face",
                "dog",
                "an emoji of a dog face.",
                "a dog face emoji.",
                "a drawing of a dog face.",
                "animal mammal emoji: dog face."
            ]
        );
        assert_eq!(enriched.image, record.image);
    }

    #[test]
    fn malformed_metadata_is_an_error() {
        let err = emoji_records("{", Path::new("emoji.json"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("emoji.json:"), "{err}");
    }
}
