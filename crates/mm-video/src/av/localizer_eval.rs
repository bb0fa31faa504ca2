//! Held-out figures of a localizer, the field's standard ones: the pointing game (the
//! heatmap's peak inside the sounding object's mask), cIoU at 0.5 (the share of scenes whose
//! heatmap, min-max normalized and cut at 0.5, overlaps the mask with IoU >= 0.5) and the area
//! under that share over cut-offs 0..1; beside a centre-prior baseline (a Gaussian at the
//! centre) and the shuffled-sound control (each scene heard with another scene's sound).

use std::path::Path;

use burn::tensor::backend::Backend;
use image::{GrayImage, Rgb, RgbImage};
use mm_audio::features::Features;
use mm_core::train::{TrainError, load_weights, read_model_config};
use mm_data::manifest::{ImageMask, Manifest};
use serde::{Deserialize, Serialize};

use super::backbone::{Backbone, load_backbone, picture_inputs};
use super::bridge::BridgeReport;
use super::localizer::upsample;
use super::localizer::{LocalizerNet, SoundLocalizer};
use super::localizer_train::LocalizerTrainConfig;
use super::scenes::sound_features;
use super::sound_embeddings::SoundInput;
use crate::error::{Result, VideoError};

/// A test scene: picture, ground-truth mask, the sound and what makes it.
#[derive(Debug, Clone)]
pub struct TestScene {
    /// The picture.
    pub image: RgbImage,
    /// Non-zero inside the sounding object.
    pub mask: GrayImage,
    /// Normalized log-mel of the sound.
    pub mel: Features,
    /// What sounds.
    pub label: String,
}

/// The scenes of an image-mask manifest whose records carry `audio` (`data synth scenes`).
pub fn load_test_scenes(manifest: &Path, size: u32) -> Result<Vec<TestScene>> {
    load_test_scenes_with(manifest, size, SoundInput::LogMel)
}

/// [`load_test_scenes`], each sound read as `input` (its log-mel, or its embedding).
pub fn load_test_scenes_with(
    manifest: &Path,
    size: u32,
    input: SoundInput,
) -> Result<Vec<TestScene>> {
    let m =
        Manifest::<ImageMask>::read(manifest).map_err(|e| VideoError::Request(e.to_string()))?;
    let open = |rel: &str| {
        let path = m.resolve(rel);
        image::open(&path).map_err(|e| VideoError::Corrupt {
            path,
            format: "image",
            reason: e.to_string(),
        })
    };
    let mut scenes = Vec::new();
    for r in &m.records {
        let audio = r.audio.as_deref().ok_or_else(|| {
            VideoError::Request(format!(
                "{}: the record of {} has no `audio`; a localization scene needs its sound",
                manifest.display(),
                r.image
            ))
        })?;
        let image = open(&r.image)?.to_rgb8();
        let mask = open(&r.mask)?.to_luma8();
        if image.dimensions() != (size, size) || mask.dimensions() != (size, size) {
            return Err(VideoError::Request(format!(
                "{}: {} and its mask must be {size}x{size} (the model's scene size), got {:?} and {:?}",
                manifest.display(),
                r.image,
                image.dimensions(),
                mask.dimensions()
            )));
        }
        scenes.push(TestScene {
            image,
            mask,
            mel: sound_features(&m.resolve(audio), input)?,
            label: r.label.clone().unwrap_or_default(),
        });
    }
    if scenes.len() < 2 {
        return Err(VideoError::Request(format!(
            "{} has {} scenes; the evaluation needs at least 2",
            manifest.display(),
            scenes.len()
        )));
    }
    Ok(scenes)
}

/// Held-out figures (fractions).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalizerReport {
    /// Test scenes.
    pub n_test: usize,
    /// Peak inside the sounding object's mask.
    pub pointing_game: f64,
    /// Scenes with IoU >= 0.5 at the 0.5 cut.
    pub ciou50: f64,
    /// Area under the share of scenes with IoU >= t, t over 0..1.
    pub auc: f64,
    /// Pointing game of the centre prior.
    pub centre_pointing_game: f64,
    /// cIoU at 0.5 of the centre prior.
    pub centre_ciou50: f64,
    /// Pointing game with each scene heard with another scene's sound.
    pub shuffled_pointing_game: f64,
    /// cIoU at 0.5 with another scene's sound.
    pub shuffled_ciou50: f64,
    /// One over the objects per scene: picking an object at random.
    pub object_chance: f64,
    /// The text bridge's halves apart, for a model trained with it (`crate::av::bridge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<BridgeReport>,
    /// Pointing game per sounding stamp (by its `label`): `[hits, scenes]`, so one can see
    /// which sounds are found and which are not.
    #[serde(default)]
    pub per_label: std::collections::BTreeMap<String, [usize; 2]>,
}

/// Pointing hit and IoU of one `[h * w]` heatmap against a mask.
pub fn score_map(map: &[f32], mask: &GrayImage) -> (bool, f64) {
    let peak = (0..map.len())
        .max_by(|&a, &b| map[a].total_cmp(&map[b]))
        .unwrap_or(0);
    let w = mask.width() as usize;
    let inside = |i: usize| mask.get_pixel((i % w) as u32, (i / w) as u32).0[0] > 0;
    let (lo, hi) = map
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let span = (hi - lo).max(1e-12);
    let (mut inter, mut union) = (0usize, 0usize);
    for (i, &v) in map.iter().enumerate() {
        let on = (v - lo) / span >= 0.5;
        let m = inside(i);
        inter += (on && m) as usize;
        union += (on || m) as usize;
    }
    (inside(peak), inter as f64 / union.max(1) as f64)
}

/// The centre prior's map: a Gaussian at the centre, a quarter of the side wide.
pub fn centre_prior(size: u32) -> Vec<f32> {
    let c = (size as f32 - 1.0) / 2.0;
    let s = size as f32 / 4.0;
    (0..size * size)
        .map(|i| {
            let (x, y) = ((i % size) as f32 - c, (i / size) as f32 - c);
            (-(x * x + y * y) / (2.0 * s * s)).exp()
        })
        .collect()
}

/// Heatmaps of `scenes` heard with `mels`, `[h * w]` each (through `backbone` first when the
/// model reads feature maps).
pub fn heatmaps<B: Backend>(
    model: &LocalizerNet<B>,
    backbone: Option<&Backbone<B>>,
    images: &[&RgbImage],
    mels: &[&Features],
    device: &B::Device,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::new();
    for (imgs, ms) in images.chunks(32).zip(mels.chunks(32)) {
        let (x, m) =
            picture_inputs::<B>(backbone, imgs, ms, device).map_err(VideoError::Request)?;
        let mut heat = model.heatmap(x, m);
        if backbone.is_some() {
            // The map came at the feature grid; the scene is that times 8.
            let (w, h) = imgs[0].dimensions();
            heat = upsample(heat, [h as usize, w as usize]);
        }
        let [_, h, w] = heat.dims();
        let flat = heat
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .unwrap_or_default();
        out.extend(flat.chunks(h * w).map(|c| c.to_vec()));
    }
    Ok(out)
}

/// The backbone `config` names, loaded (an error names what is missing).
fn backbone_of<B: Backend>(
    config: &LocalizerTrainConfig,
    device: &B::Device,
) -> Result<Option<Backbone<B>>> {
    load_backbone(config.backbone.as_ref(), device).map_err(VideoError::Request)
}

/// Evaluates on `scenes` (the shuffled control pairs scene `i` with the sound of the nearest
/// later scene whose sounding object differs).
pub fn evaluate_localizer<B: Backend>(
    model: &LocalizerNet<B>,
    config: &LocalizerTrainConfig,
    scenes: &[TestScene],
    device: &B::Device,
) -> Result<LocalizerReport> {
    let n = scenes.len();
    let images: Vec<&RgbImage> = scenes.iter().map(|s| &s.image).collect();
    let own: Vec<&Features> = scenes.iter().map(|s| &s.mel).collect();
    let other: Vec<&Features> = (0..n)
        .map(|i| {
            let j = (1..n)
                .map(|k| (i + k) % n)
                .find(|&j| scenes[j].label != scenes[i].label)
                .unwrap_or((i + 1) % n);
            &scenes[j].mel
        })
        .collect();
    let centre = centre_prior(config.scenes.size);
    let mut figures = [(0usize, 0usize, [0usize; 21]); 3];
    let mut per_label = std::collections::BTreeMap::<String, [usize; 2]>::new();
    let backbone = backbone_of(config, device)?;
    let maps = [
        heatmaps(model, backbone.as_ref(), &images, &own, device)?,
        heatmaps(model, backbone.as_ref(), &images, &other, device)?,
        vec![centre; n],
    ];
    for (k, (f, maps)) in figures.iter_mut().zip(&maps).enumerate() {
        for (map, scene) in maps.iter().zip(scenes) {
            let (hit, iou) = score_map(map, &scene.mask);
            if k == 0 {
                let entry = per_label.entry(scene.label.clone()).or_default();
                entry[0] += hit as usize;
                entry[1] += 1;
            }
            f.0 += hit as usize;
            f.1 += (iou >= 0.5) as usize;
            for (t, count) in f.2.iter_mut().enumerate() {
                *count += (iou >= t as f64 / 20.0) as usize;
            }
        }
    }
    let frac = |k: usize| k as f64 / n as f64;
    // Trapezoids over the 21 cut-offs 0, 0.05, ..., 1.
    let curve = &figures[0].2;
    let auc = curve
        .windows(2)
        .map(|w| (frac(w[0]) + frac(w[1])) / 2.0 * 0.05)
        .sum();
    let (lo, hi) = config.scenes.objects;
    Ok(LocalizerReport {
        n_test: n,
        pointing_game: frac(figures[0].0),
        ciou50: frac(figures[0].1),
        auc,
        centre_pointing_game: frac(figures[2].0),
        centre_ciou50: frac(figures[2].1),
        shuffled_pointing_game: frac(figures[1].0),
        shuffled_ciou50: frac(figures[1].1),
        object_chance: 2.0 / (lo + hi) as f64,
        bridge: None,
        per_label,
    })
}

/// `image` with `map` (`[h * w]` in `[0, 1]`, the image's size) laid over it in a
/// blue-to-red ramp.
pub fn overlay(image: &RgbImage, map: &[f32]) -> RgbImage {
    let (w, _) = image.dimensions();
    let mut out = image.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        let v = map[(y * w + x) as usize].clamp(0.0, 1.0);
        let heat = [
            255.0 * v,
            255.0 * (1.0 - (2.0 * v - 1.0).abs()),
            255.0 * (1.0 - v),
        ];
        let a = 0.25 + 0.45 * v;
        *p = Rgb(std::array::from_fn(|c| {
            (p.0[c] as f32 * (1.0 - a) + heat[c] * a).round() as u8
        }));
    }
    out
}

/// A gallery: one row per scene (the scene, its heatmap over it, the true mask).
pub fn gallery(scenes: &[&TestScene], maps: &[Vec<f32>]) -> RgbImage {
    let s = scenes.first().map_or(1, |t| t.image.width());
    let mut out = RgbImage::from_pixel(3 * s + 8, scenes.len() as u32 * (s + 4), Rgb([255; 3]));
    for (row, (scene, map)) in scenes.iter().zip(maps).enumerate() {
        let y = row as u32 * (s + 4);
        let mask = RgbImage::from_fn(s, s, |x, yy| Rgb([scene.mask.get_pixel(x, yy).0[0]; 3]));
        for (col, tile) in [scene.image.clone(), overlay(&scene.image, map), mask]
            .iter()
            .enumerate()
        {
            image::imageops::overlay(&mut out, tile, (col as u32 * (s + 4)) as i64, y as i64);
        }
    }
    out
}

/// The heatmap of `sound` over `picture` at the picture's own size (the model sees it scaled
/// to its scene size), laid over the picture; and where it peaks (x, y).
pub fn localize_picture<B: Backend>(
    model: &LocalizerNet<B>,
    config: &LocalizerTrainConfig,
    picture: &RgbImage,
    sound: &Features,
    device: &B::Device,
) -> Result<(RgbImage, (u32, u32))> {
    use image::imageops::{FilterType, resize};
    let size = config.scenes.size;
    let scaled = resize(picture, size, size, FilterType::Triangle);
    let backbone = backbone_of(config, device)?;
    let map = heatmaps(model, backbone.as_ref(), &[&scaled], &[sound], device)?.remove(0);
    let small: image::ImageBuffer<image::Luma<f32>, Vec<f32>> =
        image::ImageBuffer::from_raw(size, size, map).expect("one value per scene pixel");
    let (w, h) = picture.dimensions();
    let full = resize(&small, w, h, FilterType::Triangle);
    let peak = full
        .enumerate_pixels()
        .max_by(|p, q| p.2.0[0].total_cmp(&q.2.0[0]))
        .map_or((0, 0), |(x, y, _)| (x, y));
    Ok((overlay(picture, full.as_raw()), peak))
}

/// Evaluates on `scenes` and draws the gallery of the first 8.
pub fn evaluate_with_gallery<B: Backend>(
    model: &LocalizerNet<B>,
    config: &LocalizerTrainConfig,
    scenes: &[TestScene],
    device: &B::Device,
) -> Result<(LocalizerReport, RgbImage)> {
    let report = evaluate_localizer(model, config, scenes, device)?;
    let first: Vec<&TestScene> = scenes.iter().take(8).collect();
    let images: Vec<&RgbImage> = first.iter().map(|s| &s.image).collect();
    let mels: Vec<&Features> = first.iter().map(|s| &s.mel).collect();
    let backbone = backbone_of(config, device)?;
    let maps = heatmaps(model, backbone.as_ref(), &images, &mels, device)?;
    Ok((report, gallery(&first, &maps)))
}

/// Loads a localizer run's `final/` folder.
pub fn load_localizer<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> std::result::Result<(LocalizerNet<B>, LocalizerTrainConfig), TrainError> {
    let config: LocalizerTrainConfig =
        serde_json::from_value(read_model_config(dir)?).map_err(|e| {
            TrainError::Settings(format!(
                "{}: not a sound-source localizer folder: {e}",
                dir.join("config.json").display()
            ))
        })?;
    let model = config
        .model
        .init(device)
        .map_err(|e| TrainError::Settings(e.0))?;
    Ok((load_weights(dir, model, device)?, config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    #[test]
    fn pointing_and_iou_on_a_hand_made_map() {
        let mut mask = GrayImage::new(4, 4);
        for (x, y) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            mask.put_pixel(x, y, Luma([255]));
        }
        // The top-left quarter lit: hit, IoU 1.
        let mut map = vec![0.0f32; 16];
        for i in [0, 1, 4, 5] {
            map[i] = 1.0;
        }
        assert_eq!(score_map(&map, &mask), (true, 1.0));
        // Peak in the far corner, the top row lit: miss, IoU 2 / 7 (5 lit, 4 in the mask, 2 both).
        let mut map = vec![0.0f32; 16];
        map[..4].fill(0.8);
        map[15] = 1.0;
        let (hit, iou) = score_map(&map, &mask);
        assert!(!hit);
        assert!((iou - 2.0 / 7.0).abs() < 1e-9, "{iou}");
    }
}
