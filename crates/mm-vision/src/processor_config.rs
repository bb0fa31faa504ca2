//! Reading a [`ClipImageProcessor`] from the files HF folders carry, in every form they come
//! in, with transformers' own defaulting rules.
//!
//! - `preprocessor_config.json` (the image processor's settings at the top level) or, where a
//!   folder has none, `processor_config.json` (the newer nested form, settings under
//!   `"image_processor"`), the order transformers `ImageProcessingMixin.get_image_processor_dict`
//!   tries them in.
//! - Sizes as transformers `image_processing_utils.py` `get_size_dict` reads them: a bare
//!   integer `size` is the *shortest edge* (CLIP's `default_to_square=False`), a bare integer
//!   `crop_size` a square; a `[height, width]` list; the dict forms `{"shortest_edge"}` and
//!   `{"height", "width"}`.
//! - Absent or `null` fields take `CLIPImageProcessor.__init__`'s defaults (shortest edge 224,
//!   crop 224 x 224, bicubic, every step on, OpenAI's mean and std).
//!
//! Anything else (an unknown resample number, a size form CLIP's resize does not take, an
//! option we do not implement, another processor class) is an error that names it, never a
//! silent default.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::preprocess::{CLIP_MEAN, CLIP_STD, ClipImageProcessor, CropSize, SizeSpec};
use crate::resample::Filter;

/// The file transformers reads image-processor settings from first.
pub const PREPROCESSOR_CONFIG: &str = "preprocessor_config.json";
/// The newer, nested processor file, read where the first is absent.
pub const PROCESSOR_CONFIG: &str = "processor_config.json";

/// Keys that describe the file rather than the processing; read past.
const METADATA_KEYS: &[&str] = &[
    "image_processor_type",
    "feature_extractor_type",
    "processor_class",
    "_processor_class",
];

/// Processor classes whose settings mean what `CLIPImageProcessor`'s do. The fast class
/// resizes with torchvision instead of Pillow (within a few 1/255 per pixel); we follow Pillow.
const CLIP_PROCESSOR_TYPES: &[&str] = &[
    "CLIPImageProcessor",
    "CLIPImageProcessorFast",
    "CLIPFeatureExtractor",
];

/// Keys the fast processor saves with values that change nothing here.
const INERT_KEYS: &[(&str, &[&str])] = &[
    ("data_format", &["channels_first"]),
    ("input_data_format", &[]),
    ("return_tensors", &[]),
    ("device", &[]),
    ("disable_grouping", &[]),
];

/// Why preprocessing settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON, or holds settings we cannot honour.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A setting that cannot be honoured, with what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSetting(pub String);

/// Reads the preprocessing settings of the HF folder `dir`: `preprocessor_config.json`, else
/// `processor_config.json`, else `None` (the caller falls back to the model's image size).
/// Returns the settings and the file they came from.
pub fn load_processor_config(
    dir: &Path,
) -> Result<Option<(ClipImageProcessor, PathBuf)>, ProcessorConfigError> {
    for name in [PREPROCESSOR_CONFIG, PROCESSOR_CONFIG] {
        let path = dir.join(name);
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ProcessorConfigError::Io {
            path: path.clone(),
            source,
        })?;
        let invalid = |reason: String| ProcessorConfigError::Invalid {
            path: path.clone(),
            reason,
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        // transformers `get_image_processor_dict`: `dict.get("image_processor", dict)`.
        let settings = value.get("image_processor").unwrap_or(&value);
        let processor = processor_from_hf(settings).map_err(|e| invalid(e.0))?;
        return Ok(Some((processor, path)));
    }
    Ok(None)
}

/// Reads `CLIPImageProcessor` settings from their JSON object (transformers
/// `CLIPImageProcessor.__init__` defaults for absent fields); the error says what is wrong.
pub fn processor_from_hf(value: &Value) -> Result<ClipImageProcessor, InvalidSetting> {
    settings_from_hf(value).map_err(InvalidSetting)
}

fn settings_from_hf(value: &Value) -> Result<ClipImageProcessor, String> {
    let obj = value
        .as_object()
        .ok_or_else(|| format!("expected a JSON object of settings, found {value}"))?;
    check_keys(obj)?;
    let field = |key: &str| obj.get(key).filter(|v| !v.is_null());
    let flag = |key: &str| match field(key) {
        None => Ok(true),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| format!("`{key}` is {v}, not true or false")),
    };
    let size = match field("size") {
        None => SizeSpec::ShortestEdge { shortest_edge: 224 },
        Some(v) => size_spec(v)?,
    };
    let crop_size = match field("crop_size") {
        None => CropSize {
            height: 224,
            width: 224,
        },
        Some(v) => crop_spec(v)?,
    };
    let resample = match field("resample") {
        None => Filter::Bicubic,
        Some(v) => v.as_u64().and_then(Filter::from_pillow).ok_or_else(|| {
            format!(
                "unknown resample mode {v} (Pillow's are 0 nearest, 1 lanczos, 2 bilinear, \
                 3 bicubic, 4 box, 5 hamming)"
            )
        })?,
    };
    let rescale_factor = match field("rescale_factor") {
        None => 1.0 / 255.0,
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("`rescale_factor` is {v}, not a number"))?,
    };
    Ok(ClipImageProcessor {
        do_resize: flag("do_resize")?,
        size,
        resample,
        do_center_crop: flag("do_center_crop")?,
        crop_size,
        do_rescale: flag("do_rescale")?,
        rescale_factor,
        do_normalize: flag("do_normalize")?,
        image_mean: channels(field("image_mean"), "image_mean", CLIP_MEAN)?,
        image_std: channels(field("image_std"), "image_std", CLIP_STD)?,
        do_convert_rgb: flag("do_convert_rgb")?,
    })
}

/// Refuses other processor classes and options we do not implement, by name.
fn check_keys(obj: &Map<String, Value>) -> Result<(), String> {
    for key in ["image_processor_type", "feature_extractor_type"] {
        if let Some(kind) = obj.get(key).and_then(Value::as_str)
            && !CLIP_PROCESSOR_TYPES.contains(&kind)
        {
            return Err(format!(
                "{key} is `{kind}`; only CLIP's image processor ({}) is supported",
                CLIP_PROCESSOR_TYPES.join(", ")
            ));
        }
    }
    if obj.get("use_square_size").and_then(Value::as_bool) == Some(true) {
        return Err("option `use_square_size` (Kosmos-2's square resize) is not supported".into());
    }
    // The fast processor saves the rule it reads bare sizes by; CLIP's is `false`.
    if obj.get("default_to_square").and_then(Value::as_bool) == Some(true) {
        return Err(
            "option `default_to_square: true` is not CLIP's rule and is not supported".into(),
        );
    }
    const HANDLED: &[&str] = &[
        "do_resize",
        "size",
        "resample",
        "do_center_crop",
        "crop_size",
        "do_rescale",
        "rescale_factor",
        "do_normalize",
        "image_mean",
        "image_std",
        "do_convert_rgb",
        "default_to_square",
        "use_square_size",
    ];
    for (key, value) in obj {
        if HANDLED.contains(&key.as_str()) || METADATA_KEYS.contains(&key.as_str()) {
            continue;
        }
        let inert = INERT_KEYS.iter().any(|(k, allowed)| {
            k == key && (value.is_null() || value.as_str().is_some_and(|s| allowed.contains(&s)))
        });
        if !inert {
            return Err(format!(
                "option `{key}` ({value}) is not supported by CLIP's image preprocessing here"
            ));
        }
    }
    Ok(())
}

fn side(v: &Value, what: &str) -> Result<u32, String> {
    v.as_u64()
        .filter(|&n| n > 0 && n <= u32::MAX as u64)
        .map(|n| n as u32)
        .ok_or_else(|| format!("{what} is {v}, not a positive whole number of pixels"))
}

/// `size` as `get_size_dict(size, default_to_square=False)` reads it.
fn size_spec(v: &Value) -> Result<SizeSpec, String> {
    if v.is_u64() {
        let s = side(v, "`size`")?;
        return Ok(SizeSpec::ShortestEdge { shortest_edge: s });
    }
    if let Some(CropSize { height, width }) = pair(v, "`size`")? {
        return Ok(SizeSpec::HeightWidth { height, width });
    }
    let obj = v
        .as_object()
        .ok_or_else(|| format!("`size` is {v}, not a number, [height, width] or a dict"))?;
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    match keys.as_slice() {
        ["shortest_edge"] => Ok(SizeSpec::ShortestEdge {
            shortest_edge: side(&obj["shortest_edge"], "`size.shortest_edge`")?,
        }),
        ["height", "width"] => Ok(SizeSpec::HeightWidth {
            height: side(&obj["height"], "`size.height`")?,
            width: side(&obj["width"], "`size.width`")?,
        }),
        _ => Err(format!(
            "`size` with keys {keys:?} is not supported (CLIP resizes to {{\"shortest_edge\"}} \
             or {{\"height\", \"width\"}})"
        )),
    }
}

/// `crop_size` as `get_size_dict(crop_size, default_to_square=True)` reads it.
fn crop_spec(v: &Value) -> Result<CropSize, String> {
    if v.is_u64() {
        let s = side(v, "`crop_size`")?;
        return Ok(CropSize {
            height: s,
            width: s,
        });
    }
    if let Some(crop) = pair(v, "`crop_size`")? {
        return Ok(crop);
    }
    let obj = v.as_object().filter(|o| o.len() == 2).ok_or_else(|| {
        format!("`crop_size` is {v}, not a number, [height, width] or {{\"height\", \"width\"}}")
    })?;
    match (obj.get("height"), obj.get("width")) {
        (Some(h), Some(w)) => Ok(CropSize {
            height: side(h, "`crop_size.height`")?,
            width: side(w, "`crop_size.width`")?,
        }),
        _ => Err(format!(
            "`crop_size` is {v}; a center crop needs {{\"height\", \"width\"}}"
        )),
    }
}

/// A `[height, width]` list, if `v` is a list.
fn pair(v: &Value, what: &str) -> Result<Option<CropSize>, String> {
    let Some(items) = v.as_array() else {
        return Ok(None);
    };
    match items.as_slice() {
        [h, w] => Ok(Some(CropSize {
            height: side(h, what)?,
            width: side(w, what)?,
        })),
        _ => Err(format!("{what} is {v}; a list must be [height, width]")),
    }
}

/// A per-channel statistic: three numbers, or one for all channels.
fn channels(v: Option<&Value>, key: &str, default: [f32; 3]) -> Result<[f32; 3], String> {
    let Some(v) = v else {
        return Ok(default);
    };
    if let Some(x) = v.as_f64() {
        return Ok([x as f32; 3]);
    }
    let values: Option<Vec<f32>> = v
        .as_array()
        .map(|a| a.iter().map(|x| x.as_f64().map(|x| x as f32)).collect())
        .unwrap_or(None);
    match values.as_deref() {
        Some(&[r, g, b]) => Ok([r, g, b]),
        _ => Err(format!(
            "`{key}` is {v}; it needs one number per RGB channel (or one for all)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bare_integer_size_is_the_shortest_edge_and_a_bare_crop_a_square() {
        // openai/clip-vit-base-patch32's own file.
        let p = processor_from_hf(&json!({"crop_size": 224, "do_center_crop": true,
            "do_normalize": true, "do_resize": true, "feature_extractor_type": "CLIPFeatureExtractor",
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}))
        .unwrap();
        assert_eq!(p, ClipImageProcessor::clip(224));
        let listed = processor_from_hf(&json!({"size": [5, 9], "crop_size": [3, 4]})).unwrap();
        assert_eq!(
            (listed.size, listed.crop_size),
            (
                SizeSpec::HeightWidth {
                    height: 5,
                    width: 9
                },
                CropSize {
                    height: 3,
                    width: 4
                }
            )
        );
    }

    #[test]
    fn absent_fields_take_transformers_defaults() {
        assert_eq!(
            processor_from_hf(&json!({})).unwrap(),
            ClipImageProcessor::clip(224)
        );
        let gray = processor_from_hf(&json!({"image_mean": 0.5, "image_std": null})).unwrap();
        assert_eq!((gray.image_mean, gray.image_std), ([0.5; 3], CLIP_STD));
    }

    #[test]
    fn what_we_cannot_honour_is_named() {
        for (value, needle) in [
            (json!({"resample": 9}), "unknown resample mode 9"),
            (json!({"resample": "bicubic"}), "unknown resample mode"),
            (json!({"size": {"longest_edge": 5}}), "`size` with keys"),
            (json!({"crop_size": {"shortest_edge": 5}}), "`crop_size`"),
            (json!({"size": 0}), "positive whole number"),
            (json!({"image_mean": [1, 2]}), "`image_mean`"),
            (json!({"do_pad": true}), "option `do_pad`"),
            (json!({"use_square_size": true}), "use_square_size"),
            (json!({"default_to_square": true}), "default_to_square"),
            (
                json!({"image_processor_type": "SiglipImageProcessor"}),
                "SiglipImageProcessor",
            ),
            (json!({"do_resize": "yes"}), "`do_resize`"),
            (json!([1]), "JSON object"),
        ] {
            let err = processor_from_hf(&value).unwrap_err().to_string();
            assert!(err.contains(needle), "{value}: {err}");
        }
        let fast = json!({"image_processor_type": "CLIPImageProcessorFast",
            "data_format": "channels_first", "device": null, "input_data_format": null});
        assert!(processor_from_hf(&fast).is_ok());
    }
}
