//! `cargo xtask bench train-clip`: training throughput and peak memory of the emoji CLIP
//! (`configs/clip-emoji.json`: the model, batch, AdamW with its weight decay and per-parameter
//! norm clipping, the logit-scale clamp) on random inputs of the training shapes, beside
//! PyTorch running the same (`xtask/bench/train_clip_reference.py`).

use anyhow::{Context, Result};
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use mm_core::BackendJob;
use mm_core::train::AdamWConfig;
use mm_text::TextBatch;
use mm_vl::train::ClipTrainConfig;
use std::time::Instant;

use super::{Figure, peak_rss_mib};
use crate::common::workspace_root;

/// Position of the end-of-text token in every benchmark caption (emoji captions are a few
/// words; the tower runs the whole padded context either way).
pub const EOT: usize = 8;

/// The emoji training config the benchmark mirrors.
pub fn emoji_config() -> Result<ClipTrainConfig> {
    let path = workspace_root().join("configs/clip-emoji.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a CLIP config", path.display()))
}

/// Times optimizer steps.
pub struct TrainClipBench {
    /// Seconds to keep stepping (after two warm-up steps).
    pub min_seconds: f64,
}

impl BackendJob for TrainClipBench {
    type Output = Result<Vec<Figure>>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let cfg = emoji_config()?;
        let s = &cfg.train;
        B::seed(&device, 0);
        let mut model = Some(cfg.model.init::<B>(&device)?);
        let mut optim = AdamWConfig::new()
            .with_weight_decay(s.weight_decay as f32)
            .with_grad_clipping(Some(GradientClippingConfig::Norm(s.grad_clip_norm as f32)))
            .init();
        let (b, size) = (s.batch_size, cfg.model.vision_config.image_size);
        let context = cfg.model.text_config.max_position_embeddings;
        let pixels =
            Tensor::<B, 4>::random([b, 3, size, size], Distribution::Normal(0.0, 1.0), &device);
        let ids: Vec<i64> = (0..b * context)
            .map(|i| match i % context {
                p if p >= EOT => 49407,
                _ => (i * 7919 % 49406) as i64,
            })
            .collect();
        let text = TextBatch {
            ids: Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, context]), &device),
            eot_positions: Tensor::<B, 1, Int>::from_data(
                TensorData::new(vec![EOT as i64; b], [b]),
                &device,
            ),
        };
        let mut step = || {
            let m = model
                .take()
                .expect("the model is put back after every step");
            let loss = m.loss(pixels.clone(), text.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            model = Some(optim.step(s.lr, m, grads).clamp_logit_scale());
        };
        step();
        step();
        let start = Instant::now();
        let mut n = 0;
        while n < 3 || start.elapsed().as_secs_f64() < self.min_seconds {
            step();
            n += 1;
        }
        let rate = (b * n) as f64 / start.elapsed().as_secs_f64();
        let mut out = vec![Figure::higher_is_better("train_samples_per_s", rate)];
        if let Some(mib) = peak_rss_mib() {
            out.push(Figure::lower_is_better("peak_rss_mib", mib));
        }
        Ok(out)
    }
}
