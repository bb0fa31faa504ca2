//! The record of each task's manifest. Paths are relative to the manifest's folder; `split`
//! is free-form (`train`, `test`, ...). Users write these files for their own data, so each
//! type's fields are its documented format.

use serde::{Deserialize, Serialize};

use super::Record;

/// `Err` naming `field` when `value` is blank.
fn filled(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err(format!("`{field}` is empty"))
    } else {
        Ok(())
    }
}

/// An image with captions (CLIP training, retrieval, captioning):
///
/// ```json
/// {"image": "img/1f600.png", "captions": ["grinning face", "grinning"], "label": "face-smiling", "split": "train"}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageCaption {
    /// Image path.
    pub image: String,
    /// Captions describing the image; the first is the primary one. At least one.
    pub captions: Vec<String>,
    /// Class label, when the dataset has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Split name, when the dataset has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

impl Record for ImageCaption {
    const KIND: &'static str = "image-caption";

    fn check(&self) -> Result<(), String> {
        filled("image", &self.image)?;
        if self.captions.is_empty() {
            return Err("`captions` is empty".into());
        }
        Ok(())
    }
}

/// A labelled sound clip (audio classification):
///
/// ```json
/// {"audio": "samples/bd_boom.flac", "label": "bd", "split": "train"}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioLabel {
    /// Audio file path (WAV, FLAC, ...).
    pub audio: String,
    /// Class.
    pub label: String,
    /// Split name.
    pub split: String,
}

impl Record for AudioLabel {
    const KIND: &'static str = "audio-label";

    fn check(&self) -> Result<(), String> {
        filled("audio", &self.audio)?;
        filled("label", &self.label)
    }
}

/// A clip of a video file, optionally labelled (video classification, audio-visual models):
///
/// ```json
/// {"video": "film.mp4", "start": 12.5, "end": 14.5, "label": "forward", "split": "train"}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoClip {
    /// Video file path.
    pub video: String,
    /// Clip start in seconds (the file's start when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    /// Clip end in seconds (the file's end when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    /// Class label, when the dataset has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Split name, when the dataset has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// The clip's sound as a separate file (e.g. a WAV beside a Y4M, which has no audio);
    /// absent: the video file's own audio stream, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<String>,
}

impl Record for VideoClip {
    const KIND: &'static str = "video clip";

    fn check(&self) -> Result<(), String> {
        filled("video", &self.video)?;
        for (name, t) in [("start", self.start), ("end", self.end)] {
            if t.is_some_and(|t| !t.is_finite() || t < 0.0) {
                return Err(format!("`{name}` must be a time >= 0 in seconds"));
            }
        }
        if let (Some(s), Some(e)) = (self.start, self.end)
            && e <= s
        {
            return Err(format!("`end` ({e}) is not after `start` ({s})"));
        }
        Ok(())
    }
}

/// A question about an image with one or more reference answers (VQA; with several answers,
/// VQA's soft accuracy applies):
///
/// ```json
/// {"image": "img/12.png", "question": "What shape is in the image?", "answers": ["circle"], "answer_type": "shape", "split": "test"}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionAnswer {
    /// Image path.
    pub image: String,
    /// The question.
    pub question: String,
    /// Reference answers (at least one).
    pub answers: Vec<String>,
    /// Answer type (`yes/no`, `color`, ...), when the dataset has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_type: Option<String>,
    /// Split name, when the dataset has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

impl Record for QuestionAnswer {
    const KIND: &'static str = "question-answer";

    fn check(&self) -> Result<(), String> {
        filled("image", &self.image)?;
        filled("question", &self.question)?;
        if self.answers.is_empty() {
            return Err("`answers` is empty".into());
        }
        Ok(())
    }
}

/// An image with a mask image of the same size (localization ground truth):
///
/// ```json
/// {"image": "frames/3.png", "mask": "masks/3.png", "label": "drum", "split": "test", "audio": "drum.ogg"}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageMask {
    /// Image path.
    pub image: String,
    /// Mask path (non-zero pixels are the object).
    pub mask: String,
    /// What the mask covers, when the dataset says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Split name, when the dataset has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// The sound the masked object makes (sound-source localization), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<String>,
}

impl Record for ImageMask {
    const KIND: &'static str = "image-mask";

    fn check(&self) -> Result<(), String> {
        filled("image", &self.image)?;
        filled("mask", &self.mask)
    }
}

/// An image with the sound it makes (audio-visual correspondence, sound-source localization):
///
/// ```json
/// {"image": "stamps/frog.png", "audio": "stamps/frog.ogg", "caption": "A frog.", "label": "animals", "split": "train"}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSound {
    /// Image path (with an alpha channel where a mask is needed).
    pub image: String,
    /// Sound path (WAV, FLAC, Ogg Vorbis).
    pub audio: String,
    /// What the image shows, when the dataset says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Category, when the dataset has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Split name, when the dataset has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

impl Record for ImageSound {
    const KIND: &'static str = "image-sound";

    fn check(&self) -> Result<(), String> {
        filled("image", &self.image)?;
        filled("audio", &self.audio)
    }
}
