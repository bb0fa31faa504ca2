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

use super::backbone::Backbone;
use super::bridge::{BridgeBatch, BridgeSounds, TextAnchors, bridge_batch, bridge_rows};
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
    (
        Tensor::from_data(TensorData::new(x, [n, 3, h as usize, w as usize]), device),
        mel_tensor(mels, device),
    )
}

/// Log-mels `[n, 1, mels, frames]` as a tensor.
fn mel_tensor<B: Backend>(mels: &[&Features], device: &B::Device) -> Tensor<B, 4> {
    let m: Vec<f32> = mels
        .iter()
        .flat_map(|f| f.data.iter().map(|&v| v as f32))
        .collect();
    let shape = [mels.len(), 1, mels[0].rows, mels[0].frames];
    Tensor::from_data(TensorData::new(m, shape), device)
}

/// `[n, n]`: 1 where scene `j`'s sounding stamp (the first of its `objects`) is in scene `i`.
fn presence<B: Backend>(objects: &[&[usize]], device: &B::Device) -> Tensor<B, 2> {
    let n = objects.len();
    let v: Vec<f32> = objects
        .iter()
        .flat_map(|held| {
            objects
                .iter()
                .map(move |o| held.contains(&o[0]) as u8 as f32)
        })
        .collect();
    Tensor::from_data(TensorData::new(v, [n, n]), device)
}

/// Fresh training scenes for every step, or with a backbone draws from a [`FeaturePool`].
pub struct SceneBatches {
    stamps: Arc<Vec<Stamp>>,
    backgrounds: Arc<Vec<RgbImage>>,
    anchors: Option<Arc<TextAnchors>>,
    pool: Option<Arc<FeaturePool>>,
    bridge_pool: Option<Arc<FeaturePool>>,
    config: LocalizerTrainConfig,
}

/// Training scenes composed once and run through a frozen backbone once, so that training
/// steps do not each pay for the backbone: their feature maps and their stamps.
pub struct FeaturePool {
    /// `[scenes, channels, g, g]` values, row-major.
    features: Vec<f32>,
    /// `[channels, g, g]` of one scene.
    dims: [usize; 3],
    /// Each scene's stamps, the sounding one first.
    objects: Vec<Vec<usize>>,
}

impl FeaturePool {
    /// `config.feature_pool` scenes of `stamps` over `backgrounds` (seeded by `config.seed`,
    /// on `stream`, which no step uses: the step's number is its stream), through `backbone`
    /// 32 at a time.
    pub fn compose<B: Backend>(
        backbone: &Backbone<B>,
        stamps: &[Stamp],
        backgrounds: &[RgbImage],
        config: &LocalizerTrainConfig,
        stream: u64,
        device: &B::Device,
    ) -> Result<Self, String> {
        let mut rng = SplitMix64::stream(config.seed, stream);
        let (mut features, mut objects, mut dims) = (Vec::new(), Vec::new(), [0; 3]);
        let mut left = config.feature_pool;
        while left > 0 {
            let n = left.min(32);
            left -= n;
            let scenes: Vec<_> = (0..n)
                .map(|_| {
                    let back = &backgrounds[(rng.next_u64() % backgrounds.len() as u64) as usize];
                    compose_with(back, stamps, &config.scenes, false, &mut rng)
                })
                .collect();
            let pixels: Vec<f32> = scenes.iter().flat_map(|s| image_values(&s.image)).collect();
            let (w, h) = scenes[0].image.dimensions();
            let pixels = TensorData::new(pixels, [n, 3, h as usize, w as usize]);
            let maps = backbone.features(Tensor::from_data(pixels, device))?;
            let [_, c, h, w] = maps.dims();
            dims = [c, h, w];
            features.extend(
                maps.into_data()
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .map_err(|e| format!("{e:?}"))?,
            );
            objects.extend(scenes.into_iter().map(|s| s.objects));
        }
        Ok(FeaturePool {
            features,
            dims,
            objects,
        })
    }

    /// Scenes in the pool.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
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
            pool: None,
            bridge_pool: None,
            config,
        }
    }

    /// Steps draw their scenes from `pool` (with replacement) instead of composing them, and
    /// the text bridge's image-caption scenes from `bridge_pool`.
    pub fn with_pools(mut self, pool: FeaturePool, bridge_pool: Option<FeaturePool>) -> Self {
        self.pool = Some(Arc::new(pool));
        self.bridge_pool = bridge_pool.map(Arc::new);
        self
    }

    /// `batch` draws from `pool`, feature maps `[rows, c, g, g]` of the share's rows and
    /// their stamps.
    fn draw<B: Backend>(
        pool: &FeaturePool,
        rng: &mut SplitMix64,
        batch: usize,
        range: std::ops::Range<usize>,
        device: &B::Device,
    ) -> (Tensor<B, 4>, Vec<usize>) {
        let picks: Vec<usize> = (0..batch)
            .map(|_| (rng.next_u64() % pool.len() as u64) as usize)
            .collect();
        let rows = picks[range].to_vec();
        let per = pool.dims.iter().product::<usize>();
        let features: Vec<f32> = rows
            .iter()
            .flat_map(|&i| pool.features[i * per..(i + 1) * per].iter().copied())
            .collect();
        let [ch, h, w] = pool.dims;
        let maps = Tensor::from_data(TensorData::new(features, [rows.len(), ch, h, w]), device);
        (maps, rows)
    }

    /// A step's share from the pools: feature maps, sounds, which sound is in which scene,
    /// and the text bridge's share when it is on.
    fn pooled<B: Backend>(
        &self,
        pool: &FeaturePool,
        at: StepInfo,
        device: &B::Device,
    ) -> SceneBatch<B> {
        let c = &self.config;
        let mut rng = SplitMix64::stream(c.seed, at.step as u64);
        let range = at.share.rows(c.batch);
        let (images, rows) = Self::draw(pool, &mut rng, c.batch, range.clone(), device);
        let objects = |i: usize| &pool.objects[i];
        let sounding: Vec<usize> = rows.iter().map(|&i| objects(i)[0]).collect();
        let mels: Vec<&Features> = sounding.iter().map(|&s| &self.stamps[s].mel).collect();
        let held: Vec<&[usize]> = rows.iter().map(|&i| objects(i).as_slice()).collect();
        let bridge = match (&self.anchors, &self.bridge_pool) {
            (Some(anchors), Some(bp)) => {
                let (pictures, picked) = Self::draw(bp, &mut rng, c.batch, range, device);
                let captioned: Vec<&[usize]> =
                    picked.iter().map(|&i| bp.objects[i].as_slice()).collect();
                let names: Vec<&str> = sounding
                    .iter()
                    .map(|&s| self.stamps[s].name.as_str())
                    .collect();
                let sounds = BridgeSounds {
                    sounding: &sounding,
                    names: &names,
                };
                Some(bridge_rows(
                    anchors, pictures, &captioned, sounds, c.bridge, device,
                ))
            }
            _ => None,
        };
        SceneBatch {
            images,
            mels: mel_tensor(&mels, device),
            present: presence(&held, device),
            at,
            loss: c.loss,
            pictures_only: bridge.is_some() && at.step < c.bridge_pretrain,
            bridge,
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
        if let Some(pool) = &self.pool {
            return self.pooled(pool, at, device);
        }
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
        let held: Vec<&[usize]> = rows.iter().map(|s| s.objects.as_slice()).collect();
        let (images, mels) = scene_tensors(&images, &mels, device);
        let present = presence(&held, device);
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
