//! `cargo xtask bench video`: R3D-18 and the CNN+LSTM (ResNet-18 frames, 2-layer LSTM 512)
//! forward at their published widths on 8 frames of 112x112, and a training step of the small
//! models `train video` uses (width 16, 8 frames of 64x64, batch 16, AdamW), beside PyTorch
//! running the same (`xtask/bench/video_reference.py`).

use anyhow::Result;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use mm_core::BackendJob;
use mm_core::train::AdamWConfig;
use mm_video::models::VideoClassifier;
use mm_video::tasks::VideoTask;
use mm_video::train::{VideoModelKind, VideoNet, VideoTrainConfig};
use std::time::Instant;

use super::{Figure, peak_rss_mib, rate};

/// Clips per forward batch.
pub const FORWARD_BATCH: usize = 2;
/// Classes of the forward models (Kinetics-400's).
pub const CLASSES: usize = 400;

/// Times both models.
pub struct VideoBench {
    /// Seconds to time each case.
    pub min_seconds: f64,
}

fn published(model: VideoModelKind) -> VideoTrainConfig {
    VideoTrainConfig {
        width: 64,
        hidden: 512,
        ..VideoTrainConfig::new(model, VideoTask::Motion)
    }
}

impl BackendJob for VideoBench {
    type Output = Result<Vec<Figure>>;

    fn run<A: AutodiffBackend>(self, device: A::Device) -> Self::Output {
        let mut out = Vec::new();
        type B<A> = <A as AutodiffBackend>::InnerBackend;
        B::<A>::seed(&device, 0);
        for (key, kind) in [
            ("r3d18_clips_per_s", VideoModelKind::R3d),
            ("cnn_lstm_clips_per_s", VideoModelKind::Lstm),
        ] {
            let model = VideoNet::<B<A>>::new(&published(kind), CLASSES, &device)?;
            let x = Tensor::<B<A>, 5>::random(
                [FORWARD_BATCH, 8, 3, 112, 112],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let r = rate(FORWARD_BATCH, self.min_seconds, || {
                model.logits(x.clone()).into_data();
            });
            out.push(Figure::higher_is_better(key, r));
        }
        for (key, kind) in [
            ("r3d_small_train_samples_per_s", VideoModelKind::R3d),
            ("cnn_lstm_small_train_samples_per_s", VideoModelKind::Lstm),
        ] {
            out.push(Figure::higher_is_better(
                key,
                train_rate::<A>(kind, self.min_seconds, &device)?,
            ));
        }
        if let Some(mib) = peak_rss_mib() {
            out.push(Figure::lower_is_better("peak_rss_mib", mib));
        }
        Ok(out)
    }
}

/// Samples per second of AdamW steps of the `train video` default model `kind`.
fn train_rate<A: AutodiffBackend>(
    kind: VideoModelKind,
    min_seconds: f64,
    device: &A::Device,
) -> Result<f64> {
    let cfg = VideoTrainConfig::new(kind, VideoTask::Motion);
    let mut model = Some(VideoNet::<A>::new(&cfg, 8, device)?);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay)
        .init();
    let s = cfg.size as usize;
    let x = Tensor::<A, 5>::random(
        [cfg.batch, cfg.frames, 3, s, s],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let y = Tensor::<A, 1, Int>::from_data(
        TensorData::new(
            (0..cfg.batch as i64).map(|i| i % 8).collect::<Vec<_>>(),
            [cfg.batch],
        ),
        device,
    );
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut step = || {
        let m = model
            .take()
            .expect("the model is put back after every step");
        let loss = loss_fn.forward(m.logits(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        model = Some(optim.step(cfg.lr, m, grads));
    };
    step();
    step();
    let start = Instant::now();
    let mut n = 0;
    while n < 3 || start.elapsed().as_secs_f64() < min_seconds {
        step();
        n += 1;
    }
    Ok((cfg.batch * n) as f64 / start.elapsed().as_secs_f64())
}
