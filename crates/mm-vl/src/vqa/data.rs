//! Question-answer sets in memory: each image decoded once into normalized pixels, each
//! question tokenized once, answers mapped onto the model's answer vocabulary; and the two
//! figures that keep a VQA model honest, the question-only baseline and VQA's soft accuracy.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use mm_data::manifest::{Manifest, QuestionAnswer};
use mm_text::{ClipTokenizer, WordPieceTokenizer};
use mm_vision::decode::load_image;
use mm_vision::preprocess::{CLIP_MEAN, CLIP_STD};
use mm_vision::resample::resize_bicubic;

use super::VqaError;

/// One question about one image of a [`VqaSet`].
#[derive(Debug, Clone)]
pub struct VqaItem {
    /// Index into [`VqaSet::images`].
    pub image: usize,
    /// The question as written.
    pub question: String,
    /// Token ids, padded to the context length.
    pub tokens: Vec<u32>,
    /// Position of the end-of-text token.
    pub eot: usize,
    /// Reference answers as written.
    pub answers: Vec<String>,
    /// Answer type (`yes/no`, `color`, `shape`, ...; `other` when the record has none).
    pub answer_type: String,
}

/// Images and questions of one split, ready for batching.
#[derive(Debug, Clone)]
pub struct VqaSet {
    /// Normalized pixels of each image, `[3, size, size]` row-major.
    pub images: Vec<Vec<f32>>,
    /// The questions.
    pub items: Vec<VqaItem>,
    /// Image side length.
    pub size: usize,
    /// Tokens per question.
    pub context_length: usize,
}

/// The normalized `[3, size, size]` pixels of an RGB image (resized when it is not square at
/// `size`), with CLIP's mean and standard deviation.
pub fn normalize(img: &mm_vision::decode::RgbImage, size: usize) -> Vec<f32> {
    normalize_with(img, size, CLIP_MEAN, CLIP_STD)
}

/// [`normalize`] with another mean and standard deviation per channel.
pub fn normalize_with(
    img: &mm_vision::decode::RgbImage,
    size: usize,
    mean: [f32; 3],
    std: [f32; 3],
) -> Vec<f32> {
    let resized;
    let img = if img.width as usize != size || img.height as usize != size {
        resized = resize_bicubic(img, size as u32, size as u32);
        &resized
    } else {
        img
    };
    let plane = size * size;
    let mut out = vec![0.0; 3 * plane];
    for (i, px) in img.pixels.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] as f32 / 255.0 - mean[c]) / std[c];
        }
    }
    out
}

/// Turns a question into padded token ids and the position of its last real token.
pub type QuestionTokenizer<'a> = dyn Fn(&str) -> Result<(Vec<u32>, usize), VqaError> + 'a;

/// A question's token ids padded to `context_length`, and the position of its end-of-text
/// token; an empty question, or one longer than the model reads, is an error (it would be cut).
pub fn tokenize(
    tokenizer: &ClipTokenizer,
    question: &str,
    context_length: usize,
) -> Result<(Vec<u32>, usize), VqaError> {
    check_question(
        question,
        tokenizer.count_tokens(question)?,
        tokenizer.max_tokens(context_length),
    )?;
    let mut tokens = tokenizer.encode(question, context_length)?;
    let eot = tokens.len() - 1;
    tokens.resize(context_length, tokenizer.pad_id());
    Ok((tokens, eot))
}

/// [`tokenize`] for ViLT's WordPiece tokenizer: `[CLS] question [SEP]` padded to `max_text`,
/// and the position of `[SEP]`.
pub fn tokenize_wordpiece(
    tokenizer: &WordPieceTokenizer,
    question: &str,
    max_text: usize,
) -> Result<(Vec<u32>, usize), VqaError> {
    check_question(question, tokenizer.count_tokens(question)?, max_text)?;
    let (ids, real) = tokenizer.encode(question, max_text)?;
    Ok((ids, real - 1))
}

fn check_question(question: &str, tokens: usize, max: usize) -> Result<(), VqaError> {
    if question.trim().is_empty() {
        return Err(VqaError::Data("the question is empty".into()));
    }
    if tokens > max {
        return Err(VqaError::Data(format!(
            "the question is {tokens} tokens; the model reads at most {max}"
        )));
    }
    Ok(())
}

impl VqaSet {
    /// Reads a [`QuestionAnswer`] manifest for the two-tower model (CLIP tokenizer and
    /// normalization), decoding every image it names once.
    pub fn load(
        manifest: &Path,
        tokenizer: &ClipTokenizer,
        context_length: usize,
        size: usize,
    ) -> Result<Self, VqaError> {
        let m = Manifest::<QuestionAnswer>::read(manifest)?;
        let tokenize = |q: &str| tokenize(tokenizer, q, context_length);
        Self::from_records(&m, &tokenize, context_length, size, (CLIP_MEAN, CLIP_STD))
    }

    /// Builds the set from a read manifest with any tokenizer (`context_length` ids a
    /// question) and image normalization (`(mean, std)`).
    pub fn from_records(
        m: &Manifest<QuestionAnswer>,
        tokenizer: &QuestionTokenizer,
        context_length: usize,
        size: usize,
        (mean, std): ([f32; 3], [f32; 3]),
    ) -> Result<Self, VqaError> {
        if m.records.is_empty() {
            return Err(VqaError::Data(format!(
                "{}: no questions",
                m.path.display()
            )));
        }
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut images = Vec::new();
        let mut items = Vec::with_capacity(m.records.len());
        for r in &m.records {
            let image = match index.get(r.image.as_str()) {
                Some(&i) => i,
                None => {
                    let img = load_image(m.resolve(&r.image))?;
                    images.push(normalize_with(&img, size, mean, std));
                    index.insert(&r.image, images.len() - 1);
                    images.len() - 1
                }
            };
            let (tokens, eot) = tokenizer(&r.question)?;
            items.push(VqaItem {
                image,
                question: r.question.clone(),
                tokens,
                eot,
                answers: r.answers.clone(),
                answer_type: r.answer_type.clone().unwrap_or_else(|| "other".into()),
            });
        }
        Ok(VqaSet {
            images,
            items,
            size,
            context_length,
        })
    }
}

/// The answer vocabulary: every answer given in training, most frequent first (ties by name),
/// at most `max` of them.
pub fn answer_vocabulary(set: &VqaSet, max: usize) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for item in &set.items {
        for a in &item.answers {
            *counts.entry(a.as_str()).or_default() += 1;
        }
    }
    let mut answers: Vec<(&str, usize)> = counts.into_iter().collect();
    answers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    answers
        .into_iter()
        .take(max)
        .map(|(a, _)| a.to_string())
        .collect()
}

/// VQA's soft accuracy of `predicted` against the reference answers: `min(matches / 3, 1)`
/// when three or more references are given (VQA v2's ten annotators), else 1 for a match with
/// any of them.
pub fn soft_accuracy(predicted: &str, answers: &[String]) -> f64 {
    let matches = answers.iter().filter(|a| a.as_str() == predicted).count();
    if answers.len() >= 3 {
        (matches as f64 / 3.0).min(1.0)
    } else if matches > 0 {
        1.0
    } else {
        0.0
    }
}

/// The question-only baseline: for each training question its most common answer (the most
/// common answer overall for questions never seen in training).
#[derive(Debug, Clone)]
pub struct QuestionOnly {
    by_question: HashMap<String, String>,
    fallback: String,
}

impl QuestionOnly {
    /// Counts the answers of every training question.
    pub fn fit(train: &VqaSet) -> Self {
        let mut counts: HashMap<&str, BTreeMap<&str, usize>> = HashMap::new();
        let mut overall: BTreeMap<&str, usize> = BTreeMap::new();
        for item in &train.items {
            for a in &item.answers {
                *counts
                    .entry(item.question.as_str())
                    .or_default()
                    .entry(a.as_str())
                    .or_default() += 1;
                *overall.entry(a.as_str()).or_default() += 1;
            }
        }
        let top = |m: &BTreeMap<&str, usize>| {
            // Most frequent; ties go to the alphabetically first answer.
            m.iter()
                .fold(None::<(&str, usize)>, |best, (a, &n)| match best {
                    Some((_, bn)) if bn >= n => best,
                    _ => Some((a, n)),
                })
                .map(|(a, _)| a.to_string())
                .unwrap_or_default()
        };
        QuestionOnly {
            by_question: counts
                .iter()
                .map(|(q, m)| (q.to_string(), top(m)))
                .collect(),
            fallback: top(&overall),
        }
    }

    /// The baseline's answer to a question.
    pub fn answer(&self, question: &str) -> &str {
        self.by_question
            .get(question)
            .map(String::as_str)
            .unwrap_or(&self.fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(question: &str, answer: &str) -> VqaItem {
        VqaItem {
            image: 0,
            question: question.into(),
            tokens: vec![],
            eot: 0,
            answers: vec![answer.into()],
            answer_type: "other".into(),
        }
    }

    fn set(items: Vec<VqaItem>) -> VqaSet {
        VqaSet {
            images: vec![],
            items,
            size: 1,
            context_length: 1,
        }
    }

    #[test]
    fn soft_accuracy_counts_annotators() {
        let ten: Vec<String> = ["cat", "cat", "dog", "cat", "cat", "cat", "x", "x", "x", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(soft_accuracy("cat", &ten), 1.0);
        assert!((soft_accuracy("dog", &ten) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(soft_accuracy("bird", &ten), 0.0);
        assert_eq!(soft_accuracy("yes", &["yes".to_string()]), 1.0);
        assert_eq!(soft_accuracy("no", &["yes".to_string()]), 0.0);
    }

    #[test]
    fn question_only_answers_the_most_common_answer_per_question() {
        let train = set(vec![
            item("is it red?", "no"),
            item("is it red?", "no"),
            item("is it red?", "yes"),
            item("what shape?", "circle"),
        ]);
        let q = QuestionOnly::fit(&train);
        assert_eq!(q.answer("is it red?"), "no");
        assert_eq!(q.answer("what shape?"), "circle");
        assert_eq!(q.answer("never asked?"), "no");
        let vocab = answer_vocabulary(&train, 10);
        assert_eq!(vocab, vec!["no", "circle", "yes"]);
        assert_eq!(answer_vocabulary(&train, 1), vec!["no"]);
    }
}
