//! Checking request parts before any model work: images (size before decoding), texts,
//! labels, templates and `k`.

use std::io::Cursor;

use image::ImageReader;
use mm_text::ClipTokenizer;
use mm_vision::{AlphaMode, RgbImage, decode::decode_image_with};

use crate::config::Limits;
use crate::error::ApiError;

/// Decodes an uploaded image with the model's `alpha` handling, refusing more than
/// `limits.max_image_pixels` before decoding.
pub fn decode_upload(
    bytes: &[u8],
    name: &str,
    alpha: AlphaMode,
    limits: &Limits,
) -> Result<RgbImage, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::unprocessable(
            "bad_image",
            format!("image `{name}` is empty"),
        ));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ApiError::unprocessable("bad_image", format!("image `{name}`: {e}")))?;
    let (w, h) = reader.into_dimensions().map_err(|e| {
        ApiError::unprocessable(
            "bad_image",
            format!("image `{name}` cannot be decoded: {e}"),
        )
    })?;
    let pixels = w as u64 * h as u64;
    if pixels > limits.max_image_pixels {
        return Err(ApiError::too_large(
            "image_too_large",
            format!(
                "image `{name}` is {w} x {h} = {pixels} pixels; the limit is {}",
                limits.max_image_pixels
            ),
        ));
    }
    decode_image_with(bytes, name, alpha)
        .map_err(|e| ApiError::unprocessable("bad_image", e.to_string()))
}

/// A text the model can read whole: not blank, at most `max_text_bytes`, and within the
/// model's context (CLIP would silently cut a longer one).
pub fn check_text(
    text: &str,
    what: &str,
    limits: &Limits,
    tokenizer: &ClipTokenizer,
    context_length: usize,
) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::unprocessable(
            "empty_text",
            format!("{what} is empty"),
        ));
    }
    if text.len() > limits.max_text_bytes {
        return Err(ApiError::too_large(
            "text_too_long",
            format!(
                "{what} is {} bytes; the limit is {}",
                text.len(),
                limits.max_text_bytes
            ),
        ));
    }
    let tokens = tokenizer
        .count_tokens(text)
        .map_err(|e| ApiError::unprocessable("bad_text", format!("{what}: {e}")))?;
    // The tokenizer's own `model_max_length` may cut sooner than the model's positions.
    let limit = tokenizer.max_tokens(context_length);
    if tokens > limit {
        return Err(ApiError::too_large(
            "text_too_long",
            format!("{what} is {tokens} tokens; the model reads at most {limit}"),
        ));
    }
    Ok(text.to_string())
}

/// `k` within `1..=max_k` (10 when absent).
pub fn check_k(k: Option<i64>, limits: &Limits) -> Result<usize, ApiError> {
    match k {
        None => Ok(10),
        Some(k) if k >= 1 && k as u64 <= limits.max_k as u64 => Ok(k as usize),
        Some(k) => Err(ApiError::unprocessable(
            "bad_k",
            format!("k must be between 1 and {}, got {k}", limits.max_k),
        )),
    }
}

/// Comma-separated labels: trimmed, none empty, no duplicates, at most `max_labels`.
pub fn parse_labels(field: &str, limits: &Limits) -> Result<Vec<String>, ApiError> {
    let labels: Vec<String> = field.split(',').map(|l| l.trim().to_string()).collect();
    if labels.iter().all(String::is_empty) {
        return Err(ApiError::unprocessable("no_labels", "`labels` is empty"));
    }
    if labels.len() > limits.max_labels {
        return Err(ApiError::too_large(
            "too_many_labels",
            format!(
                "{} labels; the limit is {}",
                labels.len(),
                limits.max_labels
            ),
        ));
    }
    if let Some(i) = labels.iter().position(String::is_empty) {
        return Err(ApiError::unprocessable(
            "empty_label",
            format!("label {} of `labels` is empty", i + 1),
        ));
    }
    for (i, l) in labels.iter().enumerate() {
        if labels[..i].contains(l) {
            return Err(ApiError::unprocessable(
                "duplicate_label",
                format!("label `{l}` appears twice"),
            ));
        }
    }
    Ok(labels)
}

/// Prompt templates, one per line, each with one `{}` for the label; the single
/// `a photo of a {}.` when absent.
pub fn parse_templates(field: Option<&str>, limits: &Limits) -> Result<Vec<String>, ApiError> {
    let Some(field) = field else {
        return Ok(vec!["a photo of a {}.".to_string()]);
    };
    let templates: Vec<String> = field
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if templates.is_empty() {
        return Err(ApiError::unprocessable(
            "no_templates",
            "`templates` is empty",
        ));
    }
    if templates.len() > limits.max_templates {
        return Err(ApiError::too_large(
            "too_many_templates",
            format!(
                "{} templates; the limit is {}",
                templates.len(),
                limits.max_templates
            ),
        ));
    }
    if let Some(t) = templates.iter().find(|t| t.matches("{}").count() != 1) {
        return Err(ApiError::unprocessable(
            "bad_template",
            format!("template `{t}` must contain `{{}}` exactly once"),
        ));
    }
    Ok(templates)
}
