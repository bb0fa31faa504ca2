//! `cargo xtask bench clip`: throughput of the exact `clip-vit-base-patch32` architecture
//! (random weights) and peak memory, beside the PyTorch reference measured on the same machine
//! by `xtask/bench/clip_reference.py`.

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use mm_core::BackendJob;
use mm_text::TextBatch;
use mm_vl::ClipConfig;

use super::{Figure, peak_rss_mib, rate};

/// Text batch of the text-tower figures.
pub const BATCH_TEXT: usize = 32;

/// Times both towers.
pub struct ClipBench {
    /// Seconds to time each case.
    pub min_seconds: f64,
}

impl BackendJob for ClipBench {
    type Output = Vec<Figure>;

    fn run<A: AutodiffBackend>(self, device: A::Device) -> Self::Output {
        type B<A> = <A as AutodiffBackend>::InnerBackend;
        B::<A>::seed(&device, 0);
        let model = ClipConfig::vit_base_patch32()
            .init::<B<A>>(&device)
            .expect("ViT-B/32 is a valid config");
        let mut out = Vec::new();
        for (key, batch) in [("images_per_s_b1", 1), ("images_per_s_b32", 32)] {
            let px = Tensor::<B<A>, 4>::random(
                [batch, 3, 224, 224],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let r = rate(batch, self.min_seconds, || {
                model.image_features(px.clone()).into_data();
            });
            out.push(Figure::higher_is_better(key, r));
        }
        for (key, tokens) in [("texts_per_s_t77", 77), ("texts_per_s_t12", 12)] {
            let ids: Vec<i64> = (0..BATCH_TEXT * tokens)
                .map(|i| {
                    if i % tokens == tokens - 1 {
                        49407
                    } else {
                        (i * 7919 % 49406) as i64
                    }
                })
                .collect();
            let ids = Tensor::<B<A>, 2, Int>::from_data(
                TensorData::new(ids, [BATCH_TEXT, tokens]),
                &device,
            );
            let eot = Tensor::<B<A>, 1, Int>::from_data(
                TensorData::new(vec![tokens as i64 - 1; BATCH_TEXT], [BATCH_TEXT]),
                &device,
            );
            let r = rate(BATCH_TEXT, self.min_seconds, || {
                let batch = TextBatch {
                    ids: ids.clone(),
                    eot_positions: eot.clone(),
                };
                model.text_features(batch).into_data();
            });
            out.push(Figure::higher_is_better(key, r));
        }
        if let Some(mib) = peak_rss_mib() {
            out.push(Figure::lower_is_better("peak_rss_mib", mib));
        }
        // The same throughputs beside ONNX Runtime's (the reference's `ort_*` figures).
        let peers: Vec<Figure> = out
            .iter()
            .filter(|f| !f.lower_is_better)
            .map(|f| Figure::higher_is_better(format!("ort_{}", f.key), f.value))
            .collect();
        out.extend(peers);
        out
    }
}
