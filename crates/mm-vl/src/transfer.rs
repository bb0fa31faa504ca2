//! A zero-shot transfer benchmark: images from a source the model never trained on, classes
//! named in words the model did see.
//!
//! The test images are the Tux Paint stamps (photos and clip art; `mm_data::stamps`). Each
//! stamp's caption names its object ("A ripe, red tomato!", "A glass of water."); the label is
//! the caption's head noun, kept only when that word occurs in the training captions, so every
//! class is nameable to the model. The stamp's folder gives a broader category, mapped to the
//! emoji subcategory word that covers it ([`STAMP_CATEGORIES`]).

use std::collections::BTreeSet;
use std::path::PathBuf;

use mm_data::manifest::{ImageCaption, Manifest};

/// Prompt templates for the stamps (photos and clip art): the first, OpenAI's default ImageNet
/// prompt, is the single-prompt baseline.
pub const STAMP_TEMPLATES: &[&str] = &[
    "a photo of a {}.",
    "a drawing of a {}.",
    "clip art of a {}.",
    "a cartoon {}.",
    "an emoji of a {}.",
    "a picture of a {}.",
    "an icon of a {}.",
    "a {}.",
];

/// The words of a set of training captions (lower case, letters only).
#[derive(Debug, Clone, Default)]
pub struct Vocabulary(BTreeSet<String>);

impl Vocabulary {
    /// Every word of `captions`.
    pub fn from_captions<'a>(captions: impl IntoIterator<Item = &'a str>) -> Self {
        Self(captions.into_iter().flat_map(words).collect())
    }

    /// Every caption of every record of a manifest.
    pub fn from_manifest(manifest: &Manifest<ImageCaption>) -> Self {
        Self::from_captions(
            manifest
                .records
                .iter()
                .flat_map(|r| r.captions.iter().map(String::as_str)),
        )
    }

    /// Whether `word` occurs in the captions.
    pub fn contains(&self, word: &str) -> bool {
        self.0.contains(word)
    }

    /// Whether every word of `phrase` occurs in the captions.
    pub fn covers(&self, phrase: &str) -> bool {
        let w = words(phrase);
        !w.is_empty() && w.iter().all(|w| self.contains(w))
    }

    /// Number of distinct words.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no caption had a word.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Lower-cased runs of letters.
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Words that end a noun phrase: what follows them qualifies the object.
const PHRASE_ENDS: &[&str] = &[
    "with", "in", "on", "at", "from", "for", "that", "who", "which", "is", "are", "being",
    "playing", "lets", "gets", "carries", "means", "to", "like",
];

/// Leading words that are not part of the object's name.
const LEADING: &[&str] = &["a", "an", "the", "some", "two", "another"];

/// Head words that name no object (a quantity, a part, an exclamation).
const NOT_OBJECTS: &[&str] = &[
    "one", "you", "down", "part", "yum", "hatched", "entry", "dancing", "brain", "head", "root",
    "slice", "wings", "baby", "boom", "light", "couple", "pair", "kind", "piece", "way",
];

/// The object a caption names, as a word of `vocabulary`, or `None`.
///
/// The caption's first clause (up to `.;:!?` or a dash, parentheses dropped), cut before a
/// word that starts a qualifier (`with`, `in`, `that`, ...), without its article. Its last
/// word is the head noun ("a ripe, red tomato" -> "tomato"); in "X of Y" the object is Y when
/// the vocabulary has it, else X ("a head of lettuce": "lettuce" is not a training word and
/// "head" names no object, so no label). The head must have three letters or more, occur in the vocabulary, and not be a
/// word that names no object.
pub fn object_label(caption: &str, vocabulary: &Vocabulary) -> Option<String> {
    let mut text = String::new();
    let mut depth = 0usize;
    for c in caption.to_lowercase().chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '"' | '\'' | '“' | '”' | '‘' | '’' => {}
            _ if depth == 0 => text.push(c),
            _ => {}
        }
    }
    let clause = text
        .split(['.', ';', ':', '!', '?', '—', '–'])
        .find(|s| !s.trim().is_empty())?;
    let mut phrase: Vec<String> = words(clause)
        .into_iter()
        .take_while(|w| !PHRASE_ENDS.contains(&w.as_str()))
        .collect();
    while phrase
        .first()
        .is_some_and(|w| LEADING.contains(&w.as_str()))
    {
        phrase.remove(0);
    }
    let parts: Vec<&[String]> = phrase.split(|w| w == "of").collect();
    parts.iter().rev().find_map(|part| {
        let head = part.last()?;
        (head.chars().count() >= 3
            && vocabulary.contains(head)
            && !NOT_OBJECTS.contains(&head.as_str()))
        .then(|| head.clone())
    })
}

/// Stamp folders and the emoji subcategory word that covers each; folders not listed
/// (`symbols`: letters and road signs; `military`) have none and take no category.
pub const STAMP_CATEGORIES: &[(&str, &str)] = &[
    ("animals", "animal"),
    ("clothes", "clothing"),
    ("food", "food"),
    ("hobbies", "musical instrument"),
    ("household", "household"),
    ("medical", "medical"),
    ("naturalforces", "weather"),
    ("people", "person"),
    ("plants", "plant"),
    ("seasonal", "event"),
    ("space", "sky"),
    ("sports", "sport"),
    ("town", "place"),
    ("vehicles", "transport"),
];

/// The stamp folder that holds letters, numbers and road signs: not objects.
pub const SYMBOLS_FOLDER: &str = "symbols";

/// One test image of the benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferItem {
    /// The image file.
    pub image: PathBuf,
    /// The stamp's caption.
    pub caption: String,
    /// The object class (a word of the training vocabulary).
    pub label: String,
    /// The broader category, when the folder maps to one the vocabulary covers.
    pub category: Option<String>,
}

/// The benchmark's items from a stamps manifest (`label` = the stamp's folder): every stamp
/// outside [`SYMBOLS_FOLDER`] whose caption names an object of `vocabulary`.
pub fn stamp_items(stamps: &Manifest<ImageCaption>, vocabulary: &Vocabulary) -> Vec<TransferItem> {
    stamps
        .records
        .iter()
        .filter(|r| r.label.as_deref() != Some(SYMBOLS_FOLDER))
        .filter_map(|r| {
            let caption = r.captions.first()?;
            let label = object_label(caption, vocabulary)?;
            let category = r.label.as_deref().and_then(|folder| {
                STAMP_CATEGORIES
                    .iter()
                    .find(|(f, _)| *f == folder)
                    .map(|(_, word)| word.to_string())
                    .filter(|word| vocabulary.covers(word))
            });
            Some(TransferItem {
                image: stamps.image_path(r),
                caption: caption.clone(),
                label,
                category,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocabulary {
        Vocabulary::from_captions([
            "tomato",
            "glass of milk",
            "water wave",
            "red apple",
            "flower",
            "frog",
            "dog face",
            "baby chick",
            "lion",
            "animal mammal",
            "food fruit",
        ])
    }

    #[test]
    fn the_head_noun_of_the_first_clause_is_the_label() {
        let v = vocab();
        let label = |c| object_label(c, &v);
        assert_eq!(label("A ripe, red tomato!").as_deref(), Some("tomato"));
        assert_eq!(label("A tomato.").as_deref(), Some("tomato"));
        assert_eq!(label("An apple (a red one).").as_deref(), Some("apple"));
        assert_eq!(label("A frog sitting on a lily pad."), None); // "sitting" is the head
        assert_eq!(label("A lion with a mane.").as_deref(), Some("lion"));
        assert_eq!(label("A red and white flower.").as_deref(), Some("flower"));
        assert_eq!(label("“Dog”.").as_deref(), Some("dog"));
        assert_eq!(label("Mars—the red planet."), None);
        assert_eq!(label("A glass of water.").as_deref(), Some("water"));
        assert_eq!(label("A glass of xanthia.").as_deref(), Some("glass"));
        assert_eq!(label("The baby of a frog.").as_deref(), Some("frog"));
        assert_eq!(label("A baby."), None);
        assert_eq!(label("A xanthia."), None);
        assert_eq!(label(""), None);
    }

    #[test]
    fn categories_need_their_words_in_the_vocabulary() {
        let v = vocab();
        assert!(v.covers("animal") && v.covers("food"));
        assert!(!v.covers("musical instrument") && !v.covers(""));
        let text = r#"{"image": "animals/frog.png", "captions": ["A frog."], "label": "animals"}
{"image": "food/tomato.png", "captions": ["A tomato."], "label": "food"}
{"image": "hobbies/dog.png", "captions": ["A dog."], "label": "hobbies"}
{"image": "symbols/a.png", "captions": ["A frog."], "label": "symbols"}
{"image": "animals/x.png", "captions": ["A xanthia."], "label": "animals"}"#;
        let manifest = Manifest::parse(text, std::path::Path::new("/data/stamps.jsonl")).unwrap();
        let items = stamp_items(&manifest, &v);
        let got: Vec<(&str, Option<&str>)> = items
            .iter()
            .map(|i| (i.label.as_str(), i.category.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("frog", Some("animal")),
                ("tomato", Some("food")),
                ("dog", None)
            ]
        );
        assert_eq!(items[0].image, PathBuf::from("/data/animals/frog.png"));
    }
}
