//! Any VQA model folder behind one face: the two-tower model of `train vqa` (`model.mpk`), or
//! a ViLT folder with a question-answering head (`train vilt`'s, or transformers'
//! `ViltForQuestionAnswering`), each with its own tokenizer and image normalization.

use std::path::Path;

use burn::tensor::backend::Backend;
use mm_data::manifest::{Manifest, QuestionAnswer};
use mm_text::{ClipTokenizer, WordPieceTokenizer};
use mm_vision::RgbImage;
use mm_vision::preprocess::{CLIP_MEAN, CLIP_STD};
use serde_json::Value;

use super::VqaError;
use super::data::{QuestionOnly, VqaSet, normalize_with, tokenize, tokenize_wordpiece};
use super::eval::{
    ScoredAnswer, VqaReport, evaluate_vqa, load_vqa, one_question, top_answers_batch,
};
use super::model::VqaModel;
use super::train::VqaTrainConfig;
use crate::vilt::train::VILT_MEAN_STD;
use crate::vilt::{Vilt, load_hf_vilt};

/// A loaded VQA model of either kind.
#[derive(Debug)]
pub enum AnyVqa<B: Backend> {
    /// The two-tower model.
    TwoTower {
        /// The model.
        model: Box<VqaModel<B>>,
        /// Its run settings (sizes, answers).
        config: Box<VqaTrainConfig>,
        /// The CLIP tokenizer it reads questions with (parsed once).
        tokenizer: Box<ClipTokenizer>,
    },
    /// A ViLT with a question-answering head.
    Vilt {
        /// The model.
        model: Box<Vilt<B>>,
        /// Its answers in logit order.
        answers: Vec<String>,
        /// Its WordPiece tokenizer.
        tokenizer: Box<WordPieceTokenizer>,
        /// Question length in tokens.
        max_text: usize,
        /// Image side length.
        size: usize,
        /// Image normalization (mean, std).
        mean_std: ([f32; 3], [f32; 3]),
    },
}

fn model_error(e: impl std::fmt::Display) -> VqaError {
    VqaError::Model(e.to_string())
}

/// `image_mean` / `image_std` of a folder's `preprocessor_config.json` (ViLT's 0.5 where
/// absent).
fn vilt_normalization(dir: &Path) -> Result<([f32; 3], [f32; 3]), VqaError> {
    let path = dir.join("preprocessor_config.json");
    if !path.is_file() {
        return Ok(VILT_MEAN_STD);
    }
    let text = std::fs::read_to_string(&path).map_err(model_error)?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| VqaError::Model(format!("{}: {e}", path.display())))?;
    let three = |key: &str, default: [f32; 3]| -> Result<[f32; 3], VqaError> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => Ok([n.as_f64().unwrap_or(0.5) as f32; 3]),
            Some(x) => serde_json::from_value(x.clone()).map_err(|e| {
                VqaError::Model(format!("{}: `{key}` is not 3 numbers: {e}", path.display()))
            }),
        }
    };
    Ok((
        three("image_mean", VILT_MEAN_STD.0)?,
        three("image_std", VILT_MEAN_STD.1)?,
    ))
}

impl<B: Backend> AnyVqa<B> {
    /// Loads a folder: ours two-tower when it has `model.mpk`, else a ViLT folder.
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self, VqaError> {
        if !dir.join("config.json").is_file() {
            return Err(VqaError::Model(format!(
                "{}: no config.json; not a model folder",
                dir.display()
            )));
        }
        if dir.join("model.mpk").is_file() {
            let (model, config) = load_vqa::<B>(dir, device).map_err(model_error)?;
            return Ok(AnyVqa::TwoTower {
                model: Box::new(model),
                config: Box::new(config),
                tokenizer: Box::new(ClipTokenizer::bundled()),
            });
        }
        let loaded = load_hf_vilt::<B>(dir, device).map_err(model_error)?;
        if loaded.model.vqa.is_none() {
            return Err(VqaError::Model(format!(
                "{}: this ViLT has no question-answering head (a ViltForQuestionAnswering folder has `classifier.*` weights)",
                dir.display()
            )));
        }
        let tokenizer = WordPieceTokenizer::from_folder(dir)?;
        Ok(AnyVqa::Vilt {
            answers: loaded.answers,
            max_text: loaded.config.max_position_embeddings,
            size: loaded.config.image_size,
            model: Box::new(loaded.model),
            tokenizer: Box::new(tokenizer),
            mean_std: vilt_normalization(dir)?,
        })
    }

    /// `two-tower` or `vilt`.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyVqa::TwoTower { .. } => "two-tower",
            AnyVqa::Vilt { .. } => "vilt",
        }
    }

    /// The answers, in logit order.
    pub fn answers(&self) -> &[String] {
        match self {
            AnyVqa::TwoTower { config, .. } => &config.model.answers,
            AnyVqa::Vilt { answers, .. } => answers,
        }
    }

    /// Image size, question length, normalization, and the question tokenizer of this model.
    fn inputs(&self) -> (usize, usize, ([f32; 3], [f32; 3])) {
        match self {
            AnyVqa::TwoTower { config, .. } => (
                config.model.vision.image_size,
                config.model.text.max_position_embeddings,
                (CLIP_MEAN, CLIP_STD),
            ),
            AnyVqa::Vilt {
                size,
                max_text,
                mean_std,
                ..
            } => (*size, *max_text, *mean_std),
        }
    }

    /// A question's tokens for this model and the position of its last real one; an empty
    /// question, or one longer than the model reads, is an error.
    pub fn tokenize(&self, question: &str) -> Result<(Vec<u32>, usize), VqaError> {
        match self {
            AnyVqa::TwoTower {
                config, tokenizer, ..
            } => tokenize(
                tokenizer,
                question,
                config.model.text.max_position_embeddings,
            ),
            AnyVqa::Vilt {
                tokenizer,
                max_text,
                ..
            } => tokenize_wordpiece(tokenizer, question, *max_text),
        }
    }

    /// Reads a question-answer manifest as this model sees it.
    pub fn load_questions(&self, manifest: &Path) -> Result<VqaSet, VqaError> {
        let m = Manifest::<QuestionAnswer>::read(manifest)?;
        let (size, context, mean_std) = self.inputs();
        VqaSet::from_records(&m, &|q| self.tokenize(q), context, size, mean_std)
    }

    /// The `top` most probable answers to `question` about `image`.
    pub fn ask(
        &self,
        image: &RgbImage,
        question: &str,
        top: usize,
        device: &B::Device,
    ) -> Result<Vec<ScoredAnswer>, VqaError> {
        self.ask_batch(&[(image, question)], top, device)
            .pop()
            .unwrap_or_else(|| Err(VqaError::Data("no question".into())))
    }

    /// The `top` answers to each (image, question) pair, in one forward pass; a question that
    /// cannot be tokenized is that pair's error.
    pub fn ask_batch(
        &self,
        pairs: &[(&RgbImage, &str)],
        top: usize,
        device: &B::Device,
    ) -> Vec<Result<Vec<ScoredAnswer>, VqaError>> {
        let (size, context, (mean, std)) = self.inputs();
        let mut set = VqaSet {
            images: Vec::new(),
            items: Vec::new(),
            size,
            context_length: context,
        };
        let mut out: Vec<Result<Vec<ScoredAnswer>, VqaError>> = Vec::with_capacity(pairs.len());
        let mut rows = Vec::new();
        for (k, (image, question)) in pairs.iter().enumerate() {
            match self.tokenize(question) {
                Ok(tokens) => {
                    let one = one_question(
                        normalize_with(image, size, mean, std),
                        size,
                        question,
                        tokens,
                    );
                    let mut item = one.items.into_iter().next().expect("one item");
                    item.image = set.images.len();
                    set.images.extend(one.images);
                    set.items.push(item);
                    rows.push(k);
                    out.push(Ok(Vec::new()));
                }
                Err(e) => out.push(Err(e)),
            }
        }
        if set.items.is_empty() {
            return out;
        }
        let answered = match self {
            AnyVqa::TwoTower { model, .. } => {
                top_answers_batch(&**model, self.answers(), &set, top, device)
            }
            AnyVqa::Vilt { model, .. } => {
                top_answers_batch(&**model, self.answers(), &set, top, device)
            }
        };
        for (k, answers) in rows.into_iter().zip(answered) {
            out[k] = Ok(answers);
        }
        out
    }

    /// Scores the model on `test` beside the question-only `baseline`.
    pub fn evaluate(
        &self,
        baseline: &QuestionOnly,
        test: &VqaSet,
        device: &B::Device,
    ) -> VqaReport {
        match self {
            AnyVqa::TwoTower { model, .. } => {
                evaluate_vqa(&**model, self.answers(), baseline, test, device)
            }
            AnyVqa::Vilt { model, .. } => {
                evaluate_vqa(&**model, self.answers(), baseline, test, device)
            }
        }
    }
}
