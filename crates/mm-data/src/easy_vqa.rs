//! easy-VQA (PyPI `easy-vqa` 1.0, MIT): 4,000 train and 1,000 test 64x64 images of one
//! coloured shape each, with about 38,600 / 9,700 questions over 13 answers.
//! [`prepare_easy_vqa`] fetches the wheel with `pip download`, unpacks its images and writes:
//!
//! - `train.jsonl` / `test.jsonl`: [`QuestionAnswer`] records with the answer type
//!   (`yes/no`, `color`, `shape`);
//! - `captions.jsonl`: one [`ImageCaption`] per image, "a red circle", read off the image's own
//!   answers (what the ITM/MLM pre-training and the captioner use); `label` is the caption too.
//!   About 9% of the images are asked too little to tell both; they get no caption.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::fetch::{FetchError, PipPackage, extract_zip_prefix, pip_download};
use crate::manifest::{ImageCaption, Manifest, ManifestError, QuestionAnswer};

/// The pinned wheel.
pub const EASY_VQA: PipPackage = PipPackage {
    name: "easy-vqa",
    version: "1.0",
    file: "easy_vqa-1.0-py3-none-any.whl",
    sha256: "fcb51b309b78c7b00f97b64cdbcbcf5c105f94da1b39c0796cee5a787c4f650f",
};

/// The colours easy-VQA draws.
pub const COLORS: [&str; 8] = [
    "red", "green", "blue", "black", "gray", "teal", "brown", "yellow",
];

/// The shapes easy-VQA draws.
pub const SHAPES: [&str; 3] = ["circle", "rectangle", "triangle"];

/// Why easy-VQA could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum EasyVqaError {
    /// Fetching or unpacking failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A manifest could not be written.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A file of the package could not be read or is not what easy-VQA ships.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// What [`prepare_easy_vqa`] wrote.
#[derive(Debug, Clone)]
pub struct EasyVqaData {
    /// Training questions.
    pub train: PathBuf,
    /// Test questions.
    pub test: PathBuf,
    /// One caption per image, both splits.
    pub captions: PathBuf,
    /// Questions per split (train, test).
    pub questions: (usize, usize),
    /// Images per split (train, test).
    pub images: (usize, usize),
    /// Images left out of `captions` because their questions do not tell both their colour
    /// and their shape.
    pub uncaptioned: usize,
}

/// The answer type of an easy-VQA answer: `yes/no`, `color` or `shape` (`other` otherwise).
pub fn answer_type(answer: &str) -> &'static str {
    if answer == "yes" || answer == "no" {
        "yes/no"
    } else if COLORS.contains(&answer) {
        "color"
    } else if SHAPES.contains(&answer) {
        "shape"
    } else {
        "other"
    }
}

/// Fetches the wheel into `cache`, unpacks the data under `dest` and writes the manifests.
pub fn prepare_easy_vqa(cache: &Path, dest: &Path) -> Result<EasyVqaData, EasyVqaError> {
    let wheel = pip_download(&EASY_VQA, cache)?;
    if !dest.join("train/questions.json").is_file() || !dest.join("test/images").is_dir() {
        extract_zip_prefix(&wheel, "easy_vqa/data", dest)?;
    }
    let mut captions = Vec::new();
    let mut counts = Vec::new();
    let mut out = Vec::new();
    let mut uncaptioned = 0;
    for split in ["train", "test"] {
        let questions = read_questions(&dest.join(split).join("questions.json"))?;
        let mut records = Vec::with_capacity(questions.len());
        let mut per_image: BTreeMap<u64, Vec<(String, String)>> = BTreeMap::new();
        for (question, answer, image) in questions {
            per_image
                .entry(image)
                .or_default()
                .push((question.clone(), answer.clone()));
            records.push(QuestionAnswer {
                image: format!("{split}/images/{image}.png"),
                question,
                answer_type: Some(answer_type(&answer).into()),
                answers: vec![answer],
                split: Some(split.into()),
            });
        }
        for (image, qa) in &per_image {
            let Some(caption) = caption_from_answers(qa) else {
                uncaptioned += 1;
                continue;
            };
            captions.push(ImageCaption {
                image: format!("{split}/images/{image}.png"),
                captions: vec![caption.clone()],
                label: Some(caption),
                split: Some(split.into()),
            });
        }
        let path = dest.join(format!("{split}.jsonl"));
        Manifest::write(&path, &records)?;
        counts.push((records.len(), per_image.len()));
        out.push(path);
    }
    let captions_path = dest.join("captions.jsonl");
    Manifest::write(&captions_path, &captions)?;
    Ok(EasyVqaData {
        train: out[0].clone(),
        test: out[1].clone(),
        captions: captions_path,
        questions: (counts[0].0, counts[1].0),
        images: (counts[0].1, counts[1].1),
        uncaptioned,
    })
}

/// `questions.json`: a list of `[question, answer, image id]`.
fn read_questions(path: &Path) -> Result<Vec<(String, String, u64)>, EasyVqaError> {
    let invalid = |reason: String| EasyVqaError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| invalid(format!("not easy-VQA questions: {e}")))
}

/// "a {colour} {shape}", read off one image's questions and answers, or `None` when they
/// do not tell both: a colour or shape answer names it; a question naming a colour or shape
/// and asking for the other names both; a yes/no answer to "is there a {colour} shape?"
/// (flipped by "not"/"no") names it or rules it out, and when all colours (shapes) but one are
/// ruled out, the one left is it.
pub fn caption_from_answers(qa: &[(String, String)]) -> Option<String> {
    let mut color = None;
    let mut shape = None;
    let mut not_colors = Vec::new();
    let mut not_shapes = Vec::new();
    for (question, answer) in qa {
        let words: Vec<&str> = question.trim_end_matches('?').split_whitespace().collect();
        let named_color = words.iter().find(|w| COLORS.contains(w)).copied();
        let named_shape = words.iter().find(|w| SHAPES.contains(w)).copied();
        match answer_type(answer) {
            "color" => {
                color = Some(answer.as_str());
                shape = shape.or(named_shape);
            }
            "shape" => {
                shape = Some(answer.as_str());
                color = color.or(named_color);
            }
            "yes/no" => {
                let negated = words.iter().any(|w| *w == "not" || *w == "no");
                if (answer == "yes") != negated {
                    color = color.or(named_color);
                    shape = shape.or(named_shape);
                } else {
                    not_colors.extend(named_color);
                    not_shapes.extend(named_shape);
                }
            }
            _ => {}
        }
    }
    let only_one_left = |all: &[&'static str], ruled_out: &[&str]| {
        let left: Vec<&'static str> = all
            .iter()
            .copied()
            .filter(|x| !ruled_out.contains(x))
            .collect();
        (left.len() == 1).then(|| left[0])
    };
    let color = color.or_else(|| only_one_left(&COLORS, &not_colors))?;
    let shape = shape.or_else(|| only_one_left(&SHAPES, &not_shapes))?;
    Some(format!("a {color} {shape}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qa(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(q, a)| (q.to_string(), a.to_string()))
            .collect()
    }

    #[test]
    fn answer_types_follow_the_answer() {
        assert_eq!(answer_type("yes"), "yes/no");
        assert_eq!(answer_type("teal"), "color");
        assert_eq!(answer_type("triangle"), "shape");
        assert_eq!(answer_type("seven"), "other");
    }

    #[test]
    fn captions_come_from_wh_answers_and_named_words() {
        let c = caption_from_answers(&qa(&[("what is the blue shape?", "rectangle")]));
        assert_eq!(c.as_deref(), Some("a blue rectangle"));
        let c = caption_from_answers(&qa(&[
            ("what color is the shape?", "red"),
            ("what shape is present?", "circle"),
        ]));
        assert_eq!(c.as_deref(), Some("a red circle"));
    }

    #[test]
    fn negated_yes_no_answers_are_flipped() {
        // "is there not a green shape?" -> "no" means there is a green shape.
        let c = caption_from_answers(&qa(&[
            ("is there not a green shape?", "no"),
            ("is there a triangle?", "yes"),
            ("is there a circle?", "no"),
        ]));
        assert_eq!(c.as_deref(), Some("a green triangle"));
        // "no" to a positive question names nothing...
        assert_eq!(
            caption_from_answers(&qa(&[
                ("is there a red shape?", "no"),
                ("is there a circle?", "yes")
            ])),
            None
        );
        // ...unless every other colour is ruled out too.
        let mut pairs: Vec<(String, String)> = COLORS[1..]
            .iter()
            .map(|c| (format!("is there a {c} shape?"), "no".to_string()))
            .collect();
        pairs.push(("is no circle present?".into(), "no".into()));
        assert_eq!(
            caption_from_answers(&pairs).as_deref(),
            Some("a red circle")
        );
    }
}
