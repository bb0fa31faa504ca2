//! Training a localizer through the house loop from audio-image correspondence alone. Each
//! step composes fresh scenes from the training stamps over the film's training minutes
//! (seeded by the step, so a resumed run sees the batches of an uninterrupted one); every scene
//! of a step is heard with every scene's sounding stamp's sound, and the loss ([`PairLoss`])
//! asks each pair's smooth-peak logit whether that stamp is in the scene.

use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use image::RgbImage;
use mm_core::train::AdamWConfig;
use mm_core::train::{RunOptions, StepOutput, TrainError, WarmupCosine, fit, save_model_dir};
use serde::{Deserialize, Serialize};

use super::backbone::{Backbone, BackboneConfig};
use super::bridge::{TextAnchors, bridge_loss, picture_caption_loss};
use super::localizer::{LocalizerConfig, LocalizerKind, LocalizerNet, SoundLocalizer};
pub use super::localizer_batches::{
    FeaturePool, SceneBatch, SceneBatches, image_values, scene_tensors,
};
pub use super::pair_loss::pair_loss;
use super::scenes::{SceneConfig, Stamp};
pub use super::sound_variation::augment_mel;

/// Everything a localizer run is made of (`final/config.json` holds it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalizerTrainConfig {
    /// The model.
    pub model: LocalizerConfig,
    /// How training scenes are drawn.
    pub scenes: SceneConfig,
    /// Film frames decoded as backgrounds.
    pub backgrounds: usize,
    /// Scenes per step (each seen with two sounds).
    pub batch: usize,
    /// Steps.
    pub steps: usize,
    /// Peak AdamW learning rate.
    pub lr: f64,
    /// Warm-up steps before the cosine decay.
    pub warmup: usize,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Seed of weights and scenes.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
    /// How scene-sound scores become a loss (runs saved before the setting existed used
    /// [`PairLoss::Bce`]).
    #[serde(default = "PairLoss::saved_default")]
    pub loss: PairLoss,
    /// Vary every training scene and sound: stamps mirrored and brightened or darkened, sounds
    /// delayed, shifted by a band or two and masked in time and frequency ([`augment_mel`]).
    /// Off in runs saved before the setting existed.
    #[serde(default)]
    pub augment: bool,
    /// Weight of the text bridge (`crate::av::bridge`; 0, the default: off). Above 0 the
    /// attention localizer is also trained on image-caption scenes and sound-caption pairs,
    /// its `embed` equal to the caption embeddings' width.
    #[serde(default)]
    pub bridge: f32,
    /// More captioned pictures for the bridge's image-caption scenes, beside the stamps'
    /// captions: image-caption manifests by name (`emoji`: the Google emoji with their names;
    /// `openmoji`) or path, their `train` split. Empty (the default, and in runs saved before
    /// the setting existed): the stamps alone.
    #[serde(default)]
    pub bridge_sources: Vec<String>,
    /// Steps at the start that train the picture side on the bridge's image-caption scenes
    /// alone (the sound-scene and sound-caption losses off), so that it learns from every
    /// captioned picture before it meets the few sound-picture pairs. 0 (the default, and in
    /// runs saved before the setting existed): none. Needs the bridge, and fewer steps than
    /// `steps`.
    #[serde(default)]
    pub bridge_pretrain: usize,
    /// More sound-picture pairs for the training scenes, beside the training stamps:
    /// manifests of pictures with their sound (`ImageSound` records, as `stamp-sounds.jsonl`)
    /// by name (`gcompris`: `data fetch gcompris`) or path, their `train` split. Their pictures
    /// need an alpha channel (the mask). Empty (the default, and in runs saved before the
    /// setting existed): the stamps alone.
    #[serde(default)]
    pub sound_sources: Vec<String>,
    /// Sound embeddings made by another model (a [`super::sound_embeddings`] file), read in
    /// place of every sound's log-mel; `model.sound_embedding` must be their width. `None`
    /// (the default, and in runs saved before the setting existed): log-mels.
    #[serde(default)]
    pub sound_embeddings: Option<std::path::PathBuf>,
    /// A frozen pretrained picture side ([`super::backbone`]); `model.features` must be its
    /// channels. `None` (the default): the visual CNN, trained from scratch.
    #[serde(default)]
    pub backbone: Option<BackboneConfig>,
    /// With a backbone: training scenes composed and run through it once, from which every
    /// step draws its batch.
    #[serde(default = "default_feature_pool")]
    pub feature_pool: usize,
}

fn default_feature_pool() -> usize {
    4096
}

/// The loss over every scene of a step heard with every sound of the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairLoss {
    /// Binary cross-entropy of each pair's score against "the sound's stamp is in the scene".
    Bce,
    /// Multiple-positive InfoNCE both ways: each scene's sounds of stamps in it against every
    /// sound of the step, and each sound's scenes holding its stamp against every scene.
    Contrastive,
}

impl PairLoss {
    fn saved_default() -> Self {
        PairLoss::Bce
    }
}

impl LocalizerTrainConfig {
    /// The defaults for `kind` (small enough to train on two CPU cores).
    pub fn new(kind: LocalizerKind) -> Self {
        LocalizerTrainConfig {
            model: LocalizerConfig::new(kind).with_width(16),
            scenes: SceneConfig::default(),
            backgrounds: 240,
            batch: 32,
            // 1000 steps reach 24% held-out and 36% on heard stamps, 3000 reach 31% and 63%,
            // 6000 no further held-out (docs/audio-visual.md, 2026-12-03).
            steps: 3000,
            lr: 1e-3,
            warmup: 50,
            weight_decay: 1e-4,
            seed: 11,
            checkpoint_every: 250,
            keep_checkpoints: 2,
            loss: PairLoss::Bce,
            augment: false,
            bridge: 0.0,
            bridge_sources: Vec::new(),
            bridge_pretrain: 0,
            sound_sources: Vec::new(),
            sound_embeddings: None,
            backbone: None,
            feature_pool: default_feature_pool(),
        }
    }
}

fn loss_and_output<B: Backend>(
    model: &LocalizerNet<B>,
    batch: &SceneBatch<B>,
    kind: PairLoss,
) -> (Tensor<B, 1>, StepOutput) {
    // Every scene heard with every sound of the share.
    let logits = model.pair_logits(batch.images.clone(), batch.mels.clone()); // [n, n]
    let [n, _] = logits.dims();
    let y = batch.present.clone();
    let mut loss = pair_loss(logits.clone(), y.clone(), kind);
    if let (Some(bridge), LocalizerNet::Attention(m)) = (&batch.bridge, model) {
        loss = if batch.pictures_only {
            picture_caption_loss(m, bridge, kind)
        } else {
            loss + bridge_loss(m, batch.mels.clone(), bridge, kind)
        };
    }
    // Accuracy: scenes whose own sound outscores every sound of a stamp not in them.
    let l = logits
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default();
    let p = y
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default();
    let ranked = (0..n)
        .filter(|&i| {
            (0..n)
                .filter(|&j| p[i * n + j] == 0.0)
                .all(|j| l[i * n + i] > l[i * n + j])
        })
        .count() as f64
        / n.max(1) as f64;
    let value = loss
        .clone()
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .unwrap_or_default()[0];
    (loss, batch.at.output(value).with("accuracy", ranked))
}

impl<B: AutodiffBackend> TrainStep for LocalizerNet<B> {
    type Input = SceneBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: SceneBatch<B>) -> TrainOutput<StepOutput> {
        let (loss, out) = loss_and_output(self, &batch, batch.loss);
        TrainOutput::new(self, (loss * batch.at.weight()).backward(), out)
    }
}

impl<B: Backend> InferenceStep for LocalizerNet<B> {
    type Input = SceneBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: SceneBatch<B>) -> StepOutput {
        loss_and_output(self, &batch, batch.loss).1
    }
}

/// The training scenes' feature pool, and the text bridge's when it is on.
fn feature_pools<B: Backend>(
    b: &BackboneConfig,
    stamps: &[Stamp],
    backgrounds: &[RgbImage],
    anchors: Option<&TextAnchors>,
    config: &LocalizerTrainConfig,
    device: &B::Device,
) -> Result<(FeaturePool, Option<FeaturePool>), TrainError> {
    let backbone = Backbone::<B>::load(b, device).map_err(TrainError::Settings)?;
    eprintln!(
        "running {} training scenes through the backbone ({})...",
        config.feature_pool, b.node
    );
    let pool = FeaturePool::compose(&backbone, stamps, backgrounds, config, u64::MAX, device)
        .map_err(TrainError::Settings)?;
    let bridge_pool = match anchors.filter(|_| config.bridge > 0.0) {
        Some(a) => {
            eprintln!("and as many image-caption scenes for the text bridge...");
            let p = FeaturePool::compose(
                &backbone,
                &a.stamps,
                backgrounds,
                config,
                u64::MAX - 1,
                device,
            )
            .map_err(TrainError::Settings)?;
            Some(p)
        }
        None => None,
    };
    Ok((pool, bridge_pool))
}

/// The stamps' sound inputs must be what the model's sound side reads.
fn check_sound_inputs(config: &LocalizerTrainConfig, stamps: &[Stamp]) -> Result<(), TrainError> {
    let (rows, frames, what) = match config.model.sound_embedding {
        Some(d) => (1, Some(d), "model.sound_embedding"),
        None => (config.model.n_mels, None, "model.n_mels"),
    };
    if let Some(s) = stamps
        .iter()
        .find(|s| s.mel.rows != rows || frames.is_some_and(|f| s.mel.frames != f))
    {
        return Err(TrainError::Settings(format!(
            "{}'s sound input is {} x {}, which {what} ({}) does not read (embeddings: set model.sound_embedding to their width)",
            s.name,
            s.mel.rows,
            s.mel.frames,
            frames.unwrap_or(rows)
        )));
    }
    if config.model.sound_embedding.is_some() && config.augment {
        return Err(TrainError::Settings(
            "augment varies log-mels; it is not available with sound embeddings".into(),
        ));
    }
    Ok(())
}

/// A backbone's settings agree with the model's and with the rest of the run.
fn check_backbone(config: &LocalizerTrainConfig) -> Result<(), TrainError> {
    let Some(b) = &config.backbone else {
        return match config.model.features {
            Some(c) => Err(TrainError::Settings(format!(
                "model.features {c} reads a backbone's feature maps, but no backbone is set"
            ))),
            None => Ok(()),
        };
    };
    let refuse = |why: String| Err(TrainError::Settings(why));
    if config.model.features != Some(b.channels) {
        return refuse(format!(
            "the backbone gives {} channels; model.features must say so (it is {:?})",
            b.channels, config.model.features
        ));
    }
    if config.augment {
        return refuse(
            "a backbone trains from a pool of fixed scenes: augment is not available with it"
                .into(),
        );
    }
    if config.feature_pool < config.batch {
        return refuse(format!(
            "feature_pool {} holds fewer scenes than a batch ({})",
            config.feature_pool, config.batch
        ));
    }
    Ok(())
}

/// Trains on scenes of `stamps` over `backgrounds` on `devices`, writing the run folder and
/// `final/`.
pub fn train_localizer<B: AutodiffBackend>(
    config: &LocalizerTrainConfig,
    stamps: Vec<Stamp>,
    backgrounds: Vec<RgbImage>,
    anchors: Option<TextAnchors>,
    run: &RunOptions,
    devices: &[B::Device],
) -> Result<LocalizerNet<B::InnerBackend>, TrainError> {
    let main = devices
        .first()
        .ok_or_else(|| TrainError::Settings("no device to train on".into()))?;
    let (lo, hi) = config.scenes.objects;
    let (small, large) = config.scenes.scale;
    if lo == 0 || lo > hi || !(small > 0.0 && small <= large && large <= 0.5) || config.batch == 0 {
        return Err(TrainError::Settings(format!(
            "scenes need 1 <= objects.0 <= objects.1, 0 < scale.0 <= scale.1 <= 0.5 and a batch; got objects {:?}, scale {:?}, batch {}",
            config.scenes.objects, config.scenes.scale, config.batch
        )));
    }
    if stamps.len() <= config.scenes.objects.1 || backgrounds.is_empty() {
        return Err(TrainError::Settings(format!(
            "{} stamps and {} backgrounds: scenes of up to {} stamps need more stamps than that and a background",
            stamps.len(),
            backgrounds.len(),
            config.scenes.objects.1
        )));
    }
    if config.bridge > 0.0 {
        if config.model.kind != LocalizerKind::Attention {
            return Err(TrainError::Settings(
                "the text bridge ties the attention localizer's keys and queries to captions; the concat form has none (use --model attention or bridge=0)".into(),
            ));
        }
        let anchors = anchors.as_ref().ok_or_else(|| {
            TrainError::Settings("bridge is above 0 but no caption embeddings were given".into())
        })?;
        anchors
            .check(stamps.len(), config.model.embed)
            .map_err(TrainError::Settings)?;
        if config.bridge_pretrain >= config.steps {
            return Err(TrainError::Settings(format!(
                "bridge_pretrain {} leaves none of the {} steps for the sounds; give fewer",
                config.bridge_pretrain, config.steps
            )));
        }
    } else if config.bridge != 0.0 {
        return Err(TrainError::Settings(format!(
            "bridge is a weight, 0 or more; got {}",
            config.bridge
        )));
    } else if config.bridge_pretrain > 0 {
        return Err(TrainError::Settings(format!(
            "bridge_pretrain {} trains the picture side on the text bridge's captions, which is off (set bridge above 0)",
            config.bridge_pretrain
        )));
    } else if !config.bridge_sources.is_empty() {
        return Err(TrainError::Settings(format!(
            "bridge_sources {:?} adds captioned pictures to the text bridge, which is off (set bridge above 0)",
            config.bridge_sources
        )));
    }
    check_backbone(config)?;
    check_sound_inputs(config, &stamps)?;
    <B as Backend>::seed(main, config.seed);
    let model = config
        .model
        .init::<B>(main)
        .map_err(|e| TrainError::Settings(e.0))?;
    let optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init::<B, LocalizerNet<B>>();
    let mut json = serde_json::to_value(config).expect("configs serialize");
    // Settings that older runs lack are left out while at their defaults, so those runs
    // still resume.
    if config.bridge_sources.is_empty() {
        json.as_object_mut().map(|o| o.remove("bridge_sources"));
    }
    if config.bridge_pretrain == 0 {
        json.as_object_mut().map(|o| o.remove("bridge_pretrain"));
    }
    if config.sound_sources.is_empty() {
        json.as_object_mut().map(|o| o.remove("sound_sources"));
    }
    if config.sound_embeddings.is_none() {
        json.as_object_mut().map(|o| o.remove("sound_embeddings"));
    }
    if config.model.sound_embedding.is_none() {
        json.get_mut("model")
            .and_then(|m| m.as_object_mut())
            .map(|m| m.remove("sound_embedding"));
    }
    if config.backbone.is_none() {
        json.as_object_mut().map(|o| o.remove("feature_pool"));
        json.as_object_mut().map(|o| o.remove("backbone"));
    }
    let spec = run.spec(
        config.steps,
        config.checkpoint_every,
        config.keep_checkpoints,
    );
    let pools = match &config.backbone {
        Some(b) => Some(feature_pools::<B::InnerBackend>(
            b,
            &stamps,
            &backgrounds,
            anchors.as_ref(),
            config,
            main,
        )?),
        None => None,
    };
    let mut source = SceneBatches::new(stamps, backgrounds, anchors, config.clone());
    if let Some((pool, bridge_pool)) = pools {
        source = source.with_pools(pool, bridge_pool);
    }
    let schedule = WarmupCosine::new(config.lr, config.warmup, config.steps);
    let model = fit(&spec, &json, model, optim, schedule, source, devices)?;
    save_model_dir(&run.run_dir.join("final"), &json, &model)?;
    Ok(model)
}
