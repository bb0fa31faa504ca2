//! Sound-source localizers: an audio clip in, a heatmap over the frame out, both forms behind
//! one trait ([`SoundLocalizer`]) and one module type ([`LocalizerNet`]).
//!
//! - **Concat** (the guide's `SoundSourceLocalizer`): a visual CNN map, an audio CNN vector
//!   tiled over it, 1x1 convolutions to one sigmoid channel, bilinear upsampling. The guide
//!   pools the visual features to one vector before tiling, which leaves nothing to localize;
//!   here the visual map keeps its positions.
//! - **Attention** (the form of later papers, e.g. Senocak et al. 2018): the audio embedding
//!   against every position's visual embedding (cosine), a softmax over positions as the map.
//!
//! Both learn from audio-image correspondence alone: a scene's score is its map's peak logit,
//! pushed up for the scene with a sound of something in it and down for a sound of something
//! absent (multiple-instance learning; no box or mask is ever seen).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid, softmax};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, backend::Backend};
use mm_core::nn::ConfigError;
use mm_core::nn::fused::conv2d;
use serde::{Deserialize, Serialize};

pub use super::localizer_encoders::{AudioVector, ConvBlock, VisualMap};

/// Which localizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalizerKind {
    /// The guide's concatenation and 1x1-convolution fusion, sigmoid map.
    Concat,
    /// Audio-to-patch cosine attention, softmax map.
    Attention,
}

/// Sizes of a localizer.
#[derive(Config, Debug, PartialEq)]
pub struct LocalizerConfig {
    /// Which form.
    pub kind: LocalizerKind,
    /// Channels of the first visual convolution (then 2x, 4x, 4x); the audio CNN uses 1x, 2x.
    #[config(default = 32)]
    pub width: usize,
    /// Width of the attention form's shared space.
    #[config(default = 64)]
    pub embed: usize,
    /// Mel bands of the sound input.
    #[config(default = 40)]
    pub n_mels: usize,
    /// Max poolings in the visual CNN, after its first blocks (0-3): 3 (the default, and what
    /// `None` means, as in configs saved before the setting existed) gives a map of an eighth
    /// of the scene's side, 2 a quarter (finer places, a smaller view per place).
    pub pools: Option<usize>,
    /// `Some(c)`: the picture arrives as a frozen backbone's `c`-channel feature maps at the
    /// grid ([`super::backbone`]), read by two 1x1 blocks; `None` (the default): pixels and
    /// the visual CNN.
    pub features: Option<usize>,
    /// `Some(d)`: the sound arrives as a `d`-value embedding made by another model
    /// ([`super::sound_embeddings`]), read by one projection; `None` (the default, and in
    /// configs saved before the setting existed): its log-mel and the audio CNN.
    pub sound_embedding: Option<usize>,
}

/// The guide's fusion: the audio vector tiled over the visual map, three 1x1 convolutions.
#[derive(Module, Debug)]
pub struct ConcatLocalizer<B: Backend> {
    visual: VisualMap<B>,
    audio: AudioVector<B>,
    fuse: Vec<Conv2d<B>>,
}

/// Cosine attention of the audio embedding over the visual positions.
#[derive(Module, Debug)]
pub struct AttentionLocalizer<B: Backend> {
    visual: VisualMap<B>,
    audio: AudioVector<B>,
    key: Conv2d<B>,
    query: Linear<B>,
    /// Log of the temperature's inverse and the bias of the scene score.
    scale_bias: Param<Tensor<B, 1>>,
}

/// Either localizer.
// One model lives per run; boxing a variant would only add an indirection to every call.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum LocalizerNet<B: Backend> {
    /// The guide's form.
    Concat(ConcatLocalizer<B>),
    /// The attention form.
    Attention(AttentionLocalizer<B>),
}

/// What every localizer does.
pub trait SoundLocalizer<B: Backend> {
    /// Logits over the feature grid, `[batch, h / 8, w / 8]`; a scene's score is their peak.
    fn logit_map(&self, image: Tensor<B, 4>, mel: Tensor<B, 4>) -> Tensor<B, 3>;

    /// The heatmap at the image's size, `[batch, h, w]`, in `[0, 1]`.
    fn heatmap(&self, image: Tensor<B, 4>, mel: Tensor<B, 4>) -> Tensor<B, 3>;

    /// Each scene heard with each sound, `[scenes, sounds]`: the log-mean-exp of the pair's
    /// logit map, a smooth peak that lets every position learn (a hard maximum trains one
    /// position per pair). Each encoder runs once per input.
    fn pair_logits(&self, images: Tensor<B, 4>, mels: Tensor<B, 4>) -> Tensor<B, 2>;
}

/// Rows of `[m, e]` scaled to unit length.
pub(crate) fn unit_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    x.clone() / x.powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-6)
}

/// Log-mean-exp over the last two axes of `[n, m, h, w]`, `[n, m]`.
pub(crate) fn smooth_peak<B: Backend>(maps: Tensor<B, 4>) -> Tensor<B, 2> {
    let [n, m, h, w] = maps.dims();
    let flat = maps.reshape([n, m, h * w]);
    let peak = flat.clone().max_dim(2).detach(); // [n, m, 1], for stability only
    ((flat - peak.clone()).exp().mean_dim(2).log() + peak).reshape([n, m])
}

impl LocalizerConfig {
    /// The visual CNN's max poolings ([`LocalizerConfig::pools`], 3 when unset).
    pub fn visual_pools(&self) -> usize {
        self.pools.unwrap_or(3)
    }

    /// The model with fresh weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<LocalizerNet<B>, ConfigError> {
        let bad_features = self.features == Some(0) || self.sound_embedding == Some(0);
        if self.width == 0
            || self.embed == 0
            || self.n_mels < 4
            || self.visual_pools() > 3
            || bad_features
        {
            return Err(ConfigError(format!("invalid localizer config {self:?}")));
        }
        let w = self.width;
        let visual = || match self.features {
            Some(channels) => VisualMap::on_features(channels, w, device),
            None => VisualMap::new(w, self.visual_pools(), device),
        };
        let audio = || match self.sound_embedding {
            Some(dim) => AudioVector::on_embedding(w, dim, device),
            None => AudioVector::new(w, self.n_mels, device),
        };
        let one_by_one = |i: usize, o: usize| Conv2dConfig::new([i, o], [1, 1]).init(device);
        Ok(match self.kind {
            LocalizerKind::Concat => LocalizerNet::Concat(ConcatLocalizer {
                visual: visual(),
                audio: audio(),
                fuse: vec![
                    one_by_one(8 * w, 4 * w),
                    one_by_one(4 * w, w),
                    one_by_one(w, 1),
                ],
            }),
            LocalizerKind::Attention => LocalizerNet::Attention(AttentionLocalizer {
                visual: visual(),
                audio: audio(),
                key: one_by_one(4 * w, self.embed),
                query: LinearConfig::new(4 * w, self.embed).init(device),
                scale_bias: Param::from_tensor(Tensor::from_floats([2.3, -5.0], device)),
            }),
        })
    }
}

/// Bilinear upsampling of `[batch, gh, gw]` maps to `[batch, h, w]`.
pub(crate) fn upsample<B: Backend>(map: Tensor<B, 3>, [h, w]: [usize; 2]) -> Tensor<B, 3> {
    let [batch, gh, gw] = map.dims();
    let options = InterpolateOptions {
        mode: InterpolateMode::Bilinear,
        align_corners: false,
    };
    interpolate(map.reshape([batch, 1, gh, gw]), [h, w], options).reshape([batch, h, w])
}

impl<B: Backend> ConcatLocalizer<B> {
    /// The fusion of visual maps `[n, cv, h, w]` with audio vectors `[n, ca]`, row by row,
    /// `[n, h, w]` logits.
    fn fuse(&self, v: Tensor<B, 4>, a: Tensor<B, 2>) -> Tensor<B, 3> {
        let [n, _, h, w] = v.dims();
        let [_, ca] = a.dims();
        let tiled = a.reshape([n, ca, 1, 1]).expand([n, ca, h, w]);
        let mut x = Tensor::cat(vec![v, tiled], 1);
        for (i, conv) in self.fuse.iter().enumerate() {
            x = conv2d(conv, x);
            if i + 1 < self.fuse.len() {
                x = relu(x);
            }
        }
        x.reshape([n, h, w])
    }

    fn logits(&self, image: Tensor<B, 4>, mel: Tensor<B, 4>) -> Tensor<B, 3> {
        self.fuse(self.visual.forward(image), self.audio.forward(mel))
    }

    fn pair_maps(&self, images: Tensor<B, 4>, mels: Tensor<B, 4>) -> Tensor<B, 4> {
        let v = self.visual.forward(images);
        let a = self.audio.forward(mels);
        let [n, cv, h, w] = v.dims();
        let [m, ca] = a.dims();
        let v = v
            .unsqueeze_dim::<5>(1)
            .expand([n, m, cv, h, w])
            .reshape([n * m, cv, h, w]);
        let a = a
            .unsqueeze_dim::<3>(0)
            .expand([n, m, ca])
            .reshape([n * m, ca]);
        self.fuse(v, a).reshape([n, m, h, w])
    }
}

impl<B: Backend> AttentionLocalizer<B> {
    /// Unit key vectors of every position of scenes `[n, 3, h, w]`, `[n, e, h / 8, w / 8]`.
    pub fn unit_keys(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        let k = conv2d(&self.key, self.visual.forward(images));
        k.clone() / k.powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-6)
    }

    /// Unit queries of sounds `[m, 1, n_mels, frames]` (their embeddings), `[m, e]`.
    pub fn unit_queries(&self, mels: Tensor<B, 4>) -> Tensor<B, 2> {
        unit_rows(self.query.forward(self.audio.forward(mels)))
    }

    /// Scaled similarity plus bias of every scene position with every sound, `[n, m, h, w]`.
    fn pair_maps(&self, images: Tensor<B, 4>, mels: Tensor<B, 4>) -> Tensor<B, 4> {
        self.maps_against(self.unit_keys(images), self.unit_queries(mels))
    }

    /// Scaled similarity plus bias of unit keys `[n, e, h, w]` with unit queries `[m, e]` (of
    /// sounds, or of anything else in the same space), `[n, m, h, w]`.
    pub(crate) fn maps_against(&self, k: Tensor<B, 4>, q: Tensor<B, 2>) -> Tensor<B, 4> {
        let [n, e, h, w] = k.dims();
        let [m, _] = q.dims();
        let sim = k
            .reshape([n, e, h * w])
            .swap_dims(1, 2)
            .reshape([n * h * w, e])
            .matmul(q.transpose()); // [n hw, m]
        let sim = sim
            .reshape([n, h * w, m])
            .swap_dims(1, 2)
            .reshape([n, m, h, w]);
        let (scale, bias) = self.scale_and_bias();
        sim * scale.reshape([1, 1, 1, 1]) + bias.reshape([1, 1, 1, 1])
    }

    /// Cosine similarity of the audio embedding with each position, `[batch, h, w]`.
    fn similarity(&self, image: Tensor<B, 4>, mel: Tensor<B, 4>) -> Tensor<B, 3> {
        let k = conv2d(&self.key, self.visual.forward(image)); // [batch, e, h, w]
        let [batch, e, h, w] = k.dims();
        let k = k.clone() / k.powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-6);
        let q = self.query.forward(self.audio.forward(mel));
        let q = q.clone() / q.powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-6);
        (k * q.reshape([batch, e, 1, 1]))
            .sum_dim(1)
            .reshape([batch, h, w])
    }

    /// The similarity's scale (the temperature's inverse) and the scene score's bias.
    pub(crate) fn scale_and_bias(&self) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let sb = self.scale_bias.val();
        let [scale, bias] = [0, 1].map(|i| sb.clone().slice(i..i + 1));
        (scale.exp(), bias)
    }
}

impl<B: Backend> SoundLocalizer<B> for LocalizerNet<B> {
    fn logit_map(&self, image: Tensor<B, 4>, mel: Tensor<B, 4>) -> Tensor<B, 3> {
        match self {
            LocalizerNet::Concat(m) => m.logits(image, mel),
            LocalizerNet::Attention(m) => {
                let (scale, bias) = m.scale_and_bias();
                m.similarity(image, mel) * scale.reshape([1, 1, 1]) + bias.reshape([1, 1, 1])
            }
        }
    }

    fn pair_logits(&self, images: Tensor<B, 4>, mels: Tensor<B, 4>) -> Tensor<B, 2> {
        smooth_peak(match self {
            LocalizerNet::Concat(m) => m.pair_maps(images, mels),
            LocalizerNet::Attention(m) => m.pair_maps(images, mels),
        })
    }

    fn heatmap(&self, image: Tensor<B, 4>, mel: Tensor<B, 4>) -> Tensor<B, 3> {
        let [_, _, h, w] = image.dims();
        let map = match self {
            LocalizerNet::Concat(m) => sigmoid(m.logits(image, mel)),
            LocalizerNet::Attention(m) => {
                let (scale, _) = m.scale_and_bias();
                let s = m.similarity(image, mel) * scale.reshape([1, 1, 1]);
                let [batch, gh, gw] = s.dims();
                let p = softmax(s.reshape([batch, gh * gw]), 1);
                // Scaled so the peak is 1: the map reads as "how close to the best place".
                let peak = p.clone().max_dim(1);
                (p / peak).reshape([batch, gh, gw])
            }
        };
        upsample(map, [h, w])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[test]
    fn both_forms_map_the_whole_frame_into_unit_range() {
        let device = Default::default();
        for kind in [LocalizerKind::Concat, LocalizerKind::Attention] {
            let model = LocalizerConfig::new(kind)
                .with_width(4)
                .with_embed(8)
                .init::<B>(&device)
                .unwrap();
            let image = Tensor::<B, 4>::random(
                [2, 3, 32, 32],
                burn::tensor::Distribution::Default,
                &device,
            );
            let mel = Tensor::<B, 4>::random(
                [2, 1, 40, 50],
                burn::tensor::Distribution::Default,
                &device,
            );
            assert_eq!(
                model.logit_map(image.clone(), mel.clone()).dims(),
                [2, 4, 4]
            );
            let heat = model.heatmap(image.clone(), mel.clone());
            assert_eq!(heat.dims(), [2, 32, 32]);
            let v = heat.into_data().to_vec::<f32>().unwrap();
            assert!(v.iter().all(|x| (0.0..=1.0 + 1e-5).contains(x)), "{kind:?}");
            let pairs = model.pair_logits(image.clone(), mel.clone());
            assert_eq!(pairs.dims(), [2, 2]);
            // The diagonal pairs are the aligned maps' smooth peaks.
            let aligned = smooth_peak(model.logit_map(image, mel).unsqueeze_dim::<4>(1));
            let (p, a) = (
                pairs.into_data().to_vec::<f32>().unwrap(),
                aligned.into_data().to_vec::<f32>().unwrap(),
            );
            assert!(
                (p[0] - a[0]).abs() < 1e-4 && (p[3] - a[1]).abs() < 1e-4,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn fewer_poolings_give_a_finer_map_and_more_than_three_are_refused() {
        let device = Default::default();
        let image =
            Tensor::<B, 4>::random([1, 3, 32, 32], burn::tensor::Distribution::Default, &device);
        let mel =
            Tensor::<B, 4>::random([1, 1, 40, 50], burn::tensor::Distribution::Default, &device);
        for (pools, side) in [(3, 4), (2, 8), (1, 16)] {
            let model = LocalizerConfig::new(LocalizerKind::Attention)
                .with_width(4)
                .with_pools(Some(pools))
                .init::<B>(&device)
                .unwrap();
            let heat = model.heatmap(image.clone(), mel.clone());
            assert_eq!(heat.dims(), [1, 32, 32]);
            assert_eq!(
                model.logit_map(image.clone(), mel.clone()).dims(),
                [1, side, side]
            );
        }
        let err = LocalizerConfig::new(LocalizerKind::Concat)
            .with_pools(Some(4))
            .init::<B>(&device)
            .unwrap_err();
        assert!(err.0.contains("pools: Some(4)"), "{}", err.0);
    }
}
