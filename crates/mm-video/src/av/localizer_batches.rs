//! A localizer's training batches: fresh scenes composed for every step from the training
//! stamps over the film's frames (seeded by the step, so a resumed run sees the batches of an
//! uninterrupted one), each scene's sounding stamp's sound, which sound is of a stamp in which
//! scene, and the text bridge's inputs when it is on.

use std::borrow::Cow;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use mm_audio::features::Features;
use mm_core::train::{BatchSource, StepInfo};
use mm_data::rng::SplitMix64;

use super::bridge::{BridgeBatch, TextAnchors, bridge_batch};
use super::localizer_train::{LocalizerTrainConfig, PairLoss};
use super::scenes::{Stamp, compose_with};
use super::sound_variation::augment_mel;

/// Scene pixels as `[3, size, size]` values, about zero mean and unit spread.
pub fn image_values(image: &RgbImage) -> Vec<f32> {
    let (w, h) = image.dimensions();
    let mut out = Vec::with_capacity((3 * w * h) as usize);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                out.push((image.get_pixel(x, y).0[c] as f32 / 255.0 - 0.45) / 0.25);
            }
        }
    }
    out
}

/// Images `[n, 3, s, s]` and log-mels `[n, 1, mels, frames]` as tensors.
pub fn scene_tensors<B: Backend>(
    images: &[&RgbImage],
    mels: &[&Features],
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let n = images.len();
    let (w, h) = images[0].dimensions();
    let x: Vec<f32> = images.iter().flat_map(|i| image_values(i)).collect();
    let m: Vec<f32> = mels
        .iter()
        .flat_map(|f| f.data.iter().map(|&v| v as f32))
        .collect();
    (
        Tensor::from_data(TensorData::new(x, [n, 3, h as usize, w as usize]), device),
        Tensor::from_data(
            TensorData::new(m, [n, 1, mels[0].rows, mels[0].frames]),
            device,
        ),
    )
}

/// Fresh training scenes for every step.
pub struct SceneBatches {
    stamps: Arc<Vec<Stamp>>,
    backgrounds: Arc<Vec<RgbImage>>,
    anchors: Option<Arc<TextAnchors>>,
    config: LocalizerTrainConfig,
}

impl SceneBatches {
    /// Scenes from `stamps` over `backgrounds`, and image-caption scenes of `anchors` when
    /// the settings' `bridge` is above 0.
    pub fn new(
        stamps: Vec<Stamp>,
        backgrounds: Vec<RgbImage>,
        anchors: Option<TextAnchors>,
        config: LocalizerTrainConfig,
    ) -> Self {
        SceneBatches {
            stamps: Arc::new(stamps),
            backgrounds: Arc::new(backgrounds),
            anchors: anchors.filter(|_| config.bridge > 0.0).map(Arc::new),
            config,
        }
    }
}

/// One device's share: scenes, the sound of each one's sounding stamp, and which sound is of a
/// stamp in which scene.
#[derive(Debug, Clone)]
pub struct SceneBatch<B: Backend> {
    /// `[rows, 3, s, s]`.
    pub images: Tensor<B, 4>,
    /// `[rows, 1, mels, frames]`.
    pub mels: Tensor<B, 4>,
    /// `[rows, rows]`: 1 where sound `j` is of a stamp in scene `i`, else 0.
    pub present: Tensor<B, 2>,
    /// Where in the step this share is.
    pub at: StepInfo,
    /// The loss to train with.
    pub loss: PairLoss,
    /// The text bridge's inputs, when it is on.
    pub bridge: Option<BridgeBatch<B>>,
    /// Train on the bridge's image-caption scenes alone (a step of `bridge_pretrain`).
    pub pictures_only: bool,
}

impl<B: Backend> BatchSource<B> for SceneBatches {
    type Batch = SceneBatch<B>;

    fn batch_size(&self) -> usize {
        self.config.batch
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> SceneBatch<B> {
        let c = &self.config;
        let mut rng = SplitMix64::stream(c.seed, at.step as u64);
        let scenes: Vec<_> = (0..c.batch)
            .map(|_| {
                let back =
                    &self.backgrounds[(rng.next_u64() % self.backgrounds.len() as u64) as usize];
                compose_with(back, &self.stamps, &c.scenes, c.augment, &mut rng)
            })
            .collect();
        let sounds: Vec<Cow<Features>> = scenes
            .iter()
            .map(|s| {
                let mel = &self.stamps[s.objects[0]].mel;
                if c.augment {
                    Cow::Owned(augment_mel(mel, &mut rng))
                } else {
                    Cow::Borrowed(mel)
                }
            })
            .collect();
        let range = at.share.rows(c.batch);
        let bridge = self.anchors.as_ref().map(|anchors| {
            let sounding: Vec<usize> = scenes.iter().map(|s| s.objects[0]).collect();
            let names: Vec<&str> = sounding
                .iter()
                .map(|&s| self.stamps[s].name.as_str())
                .collect();
            bridge_batch(
                anchors,
                &sounding,
                &names,
                &self.backgrounds,
                &c.scenes,
                c.batch,
                range.clone(),
                c.bridge,
                &mut rng,
                device,
            )
        });
        let rows = &scenes[range.clone()];
        let images: Vec<&RgbImage> = rows.iter().map(|s| &s.image).collect();
        let mels: Vec<&Features> = sounds[range].iter().map(|m| m.as_ref()).collect();
        let present: Vec<f32> = rows
            .iter()
            .flat_map(|scene| {
                rows.iter()
                    .map(move |other| scene.objects.contains(&other.objects[0]) as u8 as f32)
            })
            .collect();
        let n = rows.len();
        let (images, mels) = scene_tensors(&images, &mels, device);
        let present = Tensor::from_data(TensorData::new(present, [n, n]), device);
        SceneBatch {
            images,
            mels,
            present,
            at,
            loss: c.loss,
            pictures_only: bridge.is_some() && at.step < c.bridge_pretrain,
            bridge,
        }
    }
}
