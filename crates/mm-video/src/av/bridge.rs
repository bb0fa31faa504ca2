//! The text bridge: tying the attention localizer's space to sentence embeddings of captions,
//! so that what it learns from the few stamps with a sound carries over to pictures and sounds
//! it has never met (a new bird's call lands near the captions of birds, and so does a new
//! bird's picture).
//!
//! With `bridge` above 0 in the training settings, each step adds two terms to the
//! correspondence loss, both without any box or mask:
//! - image-caption scenes: scenes composed from every training stamp with a caption (sound
//!   or not, several times the stamps with sound), each heard with the caption embedding of
//!   one of its stamps in place of a sound, under the same loss as the sounds ([`PairLoss`]);
//! - sound-caption pairs: each sound's query against the caption embeddings of the step's
//!   sounding stamps (InfoNCE both ways; stamps with the same caption count as positives).
//!
//! The captions are embedded once, by the caller (xtask uses all-MiniLM-L6-v2), and the
//! model's `embed` must equal their width, so the keys and queries live in the caption space.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use mm_audio::features::Features;
use mm_data::manifest::{ImageCaption, ImageSound, Manifest};
use mm_data::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use super::backbone::{Backbone, picture_inputs};
use super::localizer::{AttentionLocalizer, LocalizerNet, smooth_peak, unit_rows, upsample};
use super::localizer_eval::{TestScene, score_map};
use super::localizer_train::{PairLoss, image_values};
use super::pair_loss::{pair_loss, positives_nll};
use super::scenes::{SceneConfig, Stamp, compose, cutout, open_picture};
use crate::error::{Result, VideoError};

/// Stamps with captions and the embeddings the bridge ties the model to.
#[derive(Debug, Clone)]
pub struct TextAnchors {
    /// Stamps for image-caption scenes (`name` is the caption; no sound is used).
    pub stamps: Vec<Stamp>,
    /// Unit caption embedding of each of `stamps`.
    pub texts: Vec<Vec<f32>>,
    /// Unit caption embedding of each training stamp with sound, in the order of the stamps the
    /// localizer trains on.
    pub sound_texts: Vec<Vec<f32>>,
}

impl TextAnchors {
    /// Width of the embeddings (0 when there are none).
    pub fn dim(&self) -> usize {
        self.texts.first().map_or(0, Vec::len)
    }

    /// Checks that the embeddings match the stamps and each other, and that `sound_stamps`
    /// stamps with sound have one each.
    pub fn check(&self, sound_stamps: usize, embed: usize) -> std::result::Result<(), String> {
        let dim = self.dim();
        if self.stamps.len() < 4 || self.texts.len() != self.stamps.len() {
            return Err(format!(
                "the text bridge needs at least 4 captioned stamps, each with an embedding; got {} stamps and {} embeddings",
                self.stamps.len(),
                self.texts.len()
            ));
        }
        if self.sound_texts.len() != sound_stamps {
            return Err(format!(
                "the text bridge needs a caption embedding for each of the {sound_stamps} stamps with sound; got {}",
                self.sound_texts.len()
            ));
        }
        if dim != embed
            || self
                .texts
                .iter()
                .chain(&self.sound_texts)
                .any(|t| t.len() != dim)
        {
            return Err(format!(
                "the text bridge ties the model's space to the caption embeddings: model.embed ({embed}) must equal their width ({dim}) and every embedding must have it"
            ));
        }
        Ok(())
    }
}

/// The stamps of one split of an image-caption manifest (`data fetch stamps` writes
/// `stamps.jsonl`), each with its first caption as `name` and no sound, leaving out every
/// picture of the stamps with sound that the localizer does not train on (the records of
/// `sounds`, a `stamp-sounds.jsonl`, outside its `train` split): the held-out scenes' stamps
/// are never seen, whatever split the captioning set puts them in.
pub fn load_caption_stamps(manifest: &Path, split: &str, sounds: &Path) -> Result<Vec<Stamp>> {
    let s = Manifest::<ImageSound>::read(sounds).map_err(|e| VideoError::Request(e.to_string()))?;
    let held_out: HashSet<PathBuf> = s
        .records
        .iter()
        .filter(|r| r.split.as_deref() != Some("train"))
        .map(|r| s.resolve(&r.image))
        .collect();
    let m =
        Manifest::<ImageCaption>::read(manifest).map_err(|e| VideoError::Request(e.to_string()))?;
    let mut stamps = Vec::new();
    for r in m
        .records
        .iter()
        .filter(|r| r.split.as_deref() == Some(split))
    {
        let path = m.resolve(&r.image);
        if held_out.contains(&path) {
            continue;
        }
        // No mask is needed here: a picture without transparency is placed as a whole.
        let image = cutout(&open_picture(&path)?);
        stamps.push(Stamp {
            image,
            name: r.captions.first().cloned().unwrap_or_default(),
            audio_path: String::new(),
            mel: Features {
                rows: 0,
                frames: 0,
                data: Vec::new(),
            },
        });
    }
    Ok(stamps)
}

/// One device's share of the bridge's inputs.
#[derive(Debug, Clone)]
pub struct BridgeBatch<B: Backend> {
    /// Image-caption scenes, `[rows, 3, s, s]`.
    pub images: Tensor<B, 4>,
    /// Unit caption embedding of each scene's first stamp, `[rows, d]`.
    pub texts: Tensor<B, 2>,
    /// `[rows, rows]`: 1 where scene `i` holds a stamp captioned as scene `j`'s first.
    pub present: Tensor<B, 2>,
    /// Unit caption embedding of each sound of the share's correspondence scenes, `[rows, d]`.
    pub sound_texts: Tensor<B, 2>,
    /// `[rows, rows]`: 1 where sounds `i` and `j` are of stamps with the same caption.
    pub same: Tensor<B, 2>,
    /// Weight of the bridge's two terms.
    pub weight: f32,
}

fn tensor<B: Backend, const D: usize>(
    data: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// `[rows, rows]` of `f(i, j)` as 1 or 0.
fn relation<B: Backend>(
    rows: usize,
    f: impl Fn(usize, usize) -> bool,
    device: &B::Device,
) -> Tensor<B, 2> {
    let v = (0..rows * rows)
        .map(|k| f(k / rows, k % rows) as u8 as f32)
        .collect();
    tensor(v, [rows, rows], device)
}

/// The bridge's share of a step: `batch` image-caption scenes (drawn after the step's other
/// numbers, so runs without the bridge draw the same scenes as before), and the captions of
/// the correspondence scenes' sounding stamps `sounding` (indices into the stamps with sound).
#[allow(clippy::too_many_arguments)]
pub fn bridge_batch<B: Backend>(
    anchors: &Arc<TextAnchors>,
    sounding: &[usize],
    sound_names: &[&str],
    backgrounds: &[RgbImage],
    scenes: &SceneConfig,
    batch: usize,
    range: std::ops::Range<usize>,
    weight: f32,
    rng: &mut SplitMix64,
    device: &B::Device,
) -> BridgeBatch<B> {
    let drawn: Vec<_> = (0..batch)
        .map(|_| {
            let back = &backgrounds[(rng.next_u64() % backgrounds.len() as u64) as usize];
            compose(back, &anchors.stamps, scenes, rng)
        })
        .collect();
    let rows = &drawn[range.clone()];
    let images: Vec<f32> = rows.iter().flat_map(|s| image_values(&s.image)).collect();
    let (w, h) = rows[0].image.dimensions();
    let images = tensor(images, [rows.len(), 3, h as usize, w as usize], device);
    let objects: Vec<&[usize]> = rows.iter().map(|s| s.objects.as_slice()).collect();
    let sounds = BridgeSounds {
        sounding: &sounding[range.clone()],
        names: &sound_names[range],
    };
    bridge_rows(anchors, images, &objects, sounds, weight, device)
}

/// The sounding stamps of a share's correspondence scenes (indices into the stamps with
/// sound) and their names.
pub struct BridgeSounds<'a> {
    /// Index of each scene's sounding stamp.
    pub sounding: &'a [usize],
    /// Its name.
    pub names: &'a [&'a str],
}

/// The bridge's share from image-caption scenes already made: their pictures (pixels, or a
/// backbone's feature maps) and the captioned stamps in each (the first is the one whose
/// caption the scene is heard with).
pub fn bridge_rows<B: Backend>(
    anchors: &TextAnchors,
    images: Tensor<B, 4>,
    objects: &[&[usize]],
    sounds: BridgeSounds,
    weight: f32,
    device: &B::Device,
) -> BridgeBatch<B> {
    let n = objects.len();
    let texts: Vec<f32> = objects
        .iter()
        .flat_map(|o| anchors.texts[o[0]].iter().copied())
        .collect();
    let name = |s: usize| anchors.stamps[s].name.as_str();
    let present = relation(
        n,
        |i, j| objects[i].iter().any(|&o| name(o) == name(objects[j][0])),
        device,
    );
    let sound_texts: Vec<f32> = sounds
        .sounding
        .iter()
        .flat_map(|&s| anchors.sound_texts[s].iter().copied())
        .collect();
    let dim = anchors.dim();
    let names = sounds.names;
    BridgeBatch {
        images,
        texts: tensor(texts, [n, dim], device),
        present,
        sound_texts: tensor(sound_texts, [sounds.sounding.len(), dim], device),
        same: relation(sounds.sounding.len(), |i, j| names[i] == names[j], device),
        weight,
    }
}

/// The bridge's two terms for `model` on `batch` (the correspondence scenes' sounds are
/// `mels`), weighted by `batch.weight`.
pub fn bridge_loss<B: Backend>(
    model: &AttentionLocalizer<B>,
    mels: Tensor<B, 4>,
    batch: &BridgeBatch<B>,
    kind: PairLoss,
) -> Tensor<B, 1> {
    let picture = picture_caption_loss(model, batch, kind);
    let (scale, _) = model.scale_and_bias();
    let sound_text = model
        .unit_queries(mels)
        .matmul(batch.sound_texts.clone().transpose())
        * scale.reshape([1, 1]);
    let sound = (positives_nll(sound_text.clone(), batch.same.clone(), 1)
        + positives_nll(sound_text, batch.same.clone(), 0))
        / 2.0;
    (picture + sound) * batch.weight
}

/// The picture side's term alone, unweighted: each image-caption scene's map for every
/// caption of the step against whether a stamp with that caption is in the scene.
pub fn picture_caption_loss<B: Backend>(
    model: &AttentionLocalizer<B>,
    batch: &BridgeBatch<B>,
    kind: PairLoss,
) -> Tensor<B, 1> {
    let keys = model.unit_keys(batch.images.clone());
    let scene_text = smooth_peak(model.maps_against(keys, unit_rows(batch.texts.clone())));
    pair_loss(scene_text, batch.present.clone(), kind)
}

/// The bridge's two halves measured apart on held-out scenes: where the picture side points
/// for the sounding stamp's caption, and whether the sound side finds that caption.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BridgeReport {
    /// Pointing game with each scene's caption embedding in place of its sound.
    pub caption_pointing_game: f64,
    /// Share of scenes whose sound's query is nearest its own caption among the scenes'
    /// distinct captions.
    pub sound_caption_top1: f64,
    /// Distinct captions among the scenes (one over it is the chance of the above).
    pub captions: usize,
}

/// [`BridgeReport`] of `model` on `scenes`, `texts` holding each scene's caption embedding
/// (by its `label`).
pub fn evaluate_bridge<B: Backend>(
    model: &LocalizerNet<B>,
    backbone: Option<&Backbone<B>>,
    scenes: &[TestScene],
    texts: &[Vec<f32>],
    device: &B::Device,
) -> Result<BridgeReport> {
    let LocalizerNet::Attention(m) = model else {
        return Err(VideoError::Request(
            "the text bridge is a part of the attention localizer only".into(),
        ));
    };
    if texts.len() != scenes.len() || scenes.is_empty() {
        return Err(VideoError::Request(format!(
            "{} scenes and {} caption embeddings: one each is needed",
            scenes.len(),
            texts.len()
        )));
    }
    let dim = texts[0].len();
    let mut captions: Vec<&str> = scenes.iter().map(|s| s.label.as_str()).collect();
    captions.sort_unstable();
    captions.dedup();
    let caption_rows: Vec<f32> = captions
        .iter()
        .flat_map(|c| {
            let i = scenes.iter().position(|s| s.label == *c).unwrap_or(0);
            texts[i].iter().copied()
        })
        .collect();
    let all = unit_rows(tensor::<B, 2>(caption_rows, [captions.len(), dim], device));
    let (mut pointed, mut found) = (0usize, 0usize);
    for (chunk, ts) in scenes.chunks(32).zip(texts.chunks(32)) {
        let n = chunk.len();
        let (w, h) = chunk[0].image.dimensions();
        let images: Vec<&RgbImage> = chunk.iter().map(|s| &s.image).collect();
        let mels: Vec<&Features> = chunk.iter().map(|s| &s.mel).collect();
        let (pictures, _) =
            picture_inputs(backbone, &images, &mels, device).map_err(VideoError::Request)?;
        let keys = m.unit_keys(pictures);
        let [_, e, gh, gw] = keys.dims();
        let t = unit_rows(tensor::<B, 2>(ts.concat(), [n, dim], device));
        let sim = (keys * t.reshape([n, e, 1, 1]))
            .sum_dim(1)
            .reshape([n, gh, gw]);
        let maps = upsample(sim, [h as usize, w as usize])
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .unwrap_or_default();
        for (map, scene) in maps.chunks((w * h) as usize).zip(chunk) {
            pointed += score_map(map, &scene.mask).0 as usize;
        }
        let mel = &chunk[0].mel;
        let mels: Vec<f32> = chunk
            .iter()
            .flat_map(|s| s.mel.data.iter().map(|&v| v as f32))
            .collect();
        let q = m.unit_queries(tensor(mels, [n, 1, mel.rows, mel.frames], device));
        let best = q
            .matmul(all.clone().transpose())
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap_or_default();
        for (b, scene) in best.iter().zip(chunk) {
            found += (captions[*b as usize] == scene.label) as usize;
        }
    }
    Ok(BridgeReport {
        caption_pointing_game: pointed as f64 / scenes.len() as f64,
        sound_caption_top1: found as f64 / scenes.len() as f64,
        captions: captions.len(),
    })
}
