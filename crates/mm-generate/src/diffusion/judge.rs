//! The judge of generated shapes: a small CNN trained on real easy-VQA images to tell an
//! image's colour (8) and shape (3), so that a text-to-image model can be scored on whether
//! it draws what "a {colour} {shape}" asks for.
//!
//! Four 3x3 convolutions (ReLU, 2x2 max pooling after the first three, so the last one sees
//! the whole 32 px image), global average pooling, and one linear head per attribute;
//! trained with the house loop on the images' "a red circle" captions, shifted by a few
//! pixels and, half of them, with Gaussian grain added (generated images are often grainy,
//! and a judge that has never seen grain calls every grainy image the same shape).

use std::sync::Arc;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use mm_core::train::AdamWConfig;
use mm_core::train::{
    BatchSource, RunOptions, StepInfo, StepOutput, TrainError, WarmupCosine, fit, load_weights,
    read_model_config, save_model_dir,
};
use mm_data::easy_vqa::{COLORS, SHAPES};
use mm_data::rng::SplitMix64;
use serde_json::json;

use crate::caption::CaptionSet;
use mm_core::nn::fused::conv2d;

/// The colour and shape indices (into easy-VQA's `COLORS`, `SHAPES`) of "a {colour} {shape}".
pub fn parse_shape_prompt(prompt: &str) -> Option<(usize, usize)> {
    let mut words = prompt.split_whitespace();
    if words.next()? != "a" {
        return None;
    }
    let (colour, shape) = (words.next()?, words.next()?);
    let colour = COLORS.iter().position(|c| *c == colour)?;
    let shape = SHAPES.iter().position(|s| *s == shape)?;
    words.next().is_none().then_some((colour, shape))
}

/// Every easy-VQA prompt, colour-major: "a red circle", "a red rectangle", ...
pub fn shape_prompts() -> Vec<String> {
    COLORS
        .iter()
        .flat_map(|c| SHAPES.iter().map(move |s| format!("a {c} {s}")))
        .collect()
}

/// The judge network.
#[derive(Module, Debug)]
pub struct ShapeJudge<B: Backend> {
    convs: Vec<Conv2d<B>>,
    pool: MaxPool2d,
    colour: Linear<B>,
    shape: Linear<B>,
}

impl<B: Backend> ShapeJudge<B> {
    /// A fresh judge.
    pub fn new(device: &B::Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        Self {
            convs: vec![conv(3, 32), conv(32, 64), conv(64, 128), conv(128, 128)],
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            colour: LinearConfig::new(128, COLORS.len()).init(device),
            shape: LinearConfig::new(128, SHAPES.len()).init(device),
        }
    }

    /// Colour and shape logits of images in [-1, 1].
    ///
    /// # Shapes
    /// - `pixels`: `[batch, 3, h, w]`; outputs `[batch, 8]` and `[batch, 3]`.
    pub fn forward(&self, pixels: Tensor<B, 4>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let mut x = pixels;
        for (i, conv) in self.convs.iter().enumerate() {
            x = relu(conv2d(conv, x));
            if i + 1 < self.convs.len() {
                x = self.pool.forward(x);
            }
        }
        let [b, c, h, w] = x.dims();
        let features = x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]);
        (
            self.colour.forward(features.clone()),
            self.shape.forward(features),
        )
    }

    /// The predicted (colour, shape) of each image.
    pub fn judge(&self, pixels: Tensor<B, 4>) -> Vec<(usize, usize)> {
        let (colour, shape) = self.forward(pixels);
        let ints = |t: Tensor<B, 2>| -> Vec<usize> {
            t.argmax(1)
                .into_data()
                .convert::<i64>()
                .into_vec::<i64>()
                .expect("argmax gives integers")
                .into_iter()
                .map(|v| v as usize)
                .collect()
        };
        ints(colour).into_iter().zip(ints(shape)).collect()
    }
}

/// A judge batch: pixels and the two labels.
#[derive(Debug, Clone)]
pub struct JudgeBatch<B: Backend> {
    pixels: Tensor<B, 4>,
    colours: Tensor<B, 1, Int>,
    shapes: Tensor<B, 1, Int>,
    at: StepInfo,
}

/// Largest standard deviation of the grain added to half the training images (pixels in
/// [-1, 1]).
const MAX_GRAIN: f64 = 0.5;

/// The judge's name in its saved config: a folder holding another name (an older judge's
/// layout) is refused with an error that names it, rather than misread or overwritten.
const JUDGE_NAME: &str = "shape-judge-2";

/// Labelled easy-VQA images, drawn at random, shifted by up to 3 pixels, half of them with
/// grain.
pub struct JudgeBatches {
    set: Arc<CaptionSet>,
    images: Vec<usize>,
    labels: Vec<(usize, usize)>,
    batch: usize,
    seed: u64,
}

/// The (colour, shape) of each image of `set` with a shape caption, and those images.
pub fn shape_labels(set: &CaptionSet) -> (Vec<usize>, Vec<(usize, usize)>) {
    set.captions
        .iter()
        .enumerate()
        .filter_map(|(i, refs)| {
            refs.iter()
                .find_map(|r| parse_shape_prompt(r))
                .map(|l| (i, l))
        })
        .unzip()
}

impl<B: Backend> BatchSource<B> for JudgeBatches {
    type Batch = JudgeBatch<B>;

    fn batch_size(&self) -> usize {
        self.batch
    }

    fn batch(&self, at: StepInfo, device: &B::Device) -> JudgeBatch<B> {
        let mut rng = SplitMix64::stream(self.seed, at.step as u64);
        let picks: Vec<(usize, (i64, i64), f32, u64)> = (0..self.batch)
            .map(|_| {
                let i = (rng.next_u64() % self.images.len() as u64) as usize;
                let dx = (rng.next_u64() % 7) as i64 - 3;
                let dy = (rng.next_u64() % 7) as i64 - 3;
                let grain = if rng.uniform() < 0.5 {
                    (rng.uniform() * MAX_GRAIN) as f32
                } else {
                    0.0
                };
                (i, (dx, dy), grain, rng.next_u64())
            })
            .collect();
        let rows = &picks[at.share.rows(self.batch)];
        let picked: Vec<usize> = rows.iter().map(|p| p.0).collect();
        let shifts: Vec<(i64, i64)> = rows.iter().map(|p| p.1).collect();
        let images: Vec<usize> = picked.iter().map(|&k| self.images[k]).collect();
        let label = |f: fn(&(usize, usize)) -> usize| -> Tensor<B, 1, Int> {
            let v: Vec<i64> = picked.iter().map(|&k| f(&self.labels[k]) as i64).collect();
            let n = v.len();
            Tensor::from_data(TensorData::new(v, [n]), device)
        };
        let mut pixels = self.set.pixels(&images, &shifts);
        let per_image = 3 * pixels.height * pixels.width;
        // Each row's grain comes from its own seed, so a share sees what the whole batch would.
        for (values, &(_, _, grain, seed)) in pixels.data.chunks_mut(per_image).zip(rows) {
            if grain > 0.0 {
                let mut noise = SplitMix64::new(seed);
                for v in values {
                    *v = (*v + grain * noise.normal() as f32).clamp(-1.0, 1.0);
                }
            }
        }
        JudgeBatch {
            pixels: pixels.to_tensor(device),
            colours: label(|l| l.0),
            shapes: label(|l| l.1),
            at,
        }
    }
}

fn judge_loss<B: Backend>(judge: &ShapeJudge<B>, b: &JudgeBatch<B>) -> (Tensor<B, 1>, StepOutput) {
    let (colour, shape) = judge.forward(b.pixels.clone());
    let ce = CrossEntropyLossConfig::new().init(&colour.device());
    let hits = |logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>| -> f64 {
        let n = labels.dims()[0];
        let right: i64 = logits
            .argmax(1)
            .reshape([n])
            .equal(labels)
            .int()
            .sum()
            .into_scalar()
            .elem();
        right as f64 / n.max(1) as f64
    };
    let out_c = hits(colour.clone(), b.colours.clone());
    let out_s = hits(shape.clone(), b.shapes.clone());
    let loss = ce.forward(colour, b.colours.clone()) + ce.forward(shape, b.shapes.clone());
    let value: f64 = loss.clone().into_scalar().elem();
    let out =
        b.at.output(value)
            .with("colour_accuracy", out_c)
            .with("shape_accuracy", out_s);
    (loss, out)
}

impl<B: AutodiffBackend> TrainStep for ShapeJudge<B> {
    type Input = JudgeBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: JudgeBatch<B>) -> TrainOutput<StepOutput> {
        let (loss, out) = judge_loss(self, &batch);
        TrainOutput::new(self, (loss * batch.at.weight()).backward(), out)
    }
}

impl<B: Backend> InferenceStep for ShapeJudge<B> {
    type Input = JudgeBatch<B>;
    type Output = StepOutput;

    fn step(&self, batch: JudgeBatch<B>) -> StepOutput {
        judge_loss(self, &batch).1
    }
}

/// The judge saved in `run/final` if there is one, else one trained there on the shape
/// images of `train` (`steps` steps of 64 images).
pub fn train_or_load_judge<B: AutodiffBackend>(
    train: CaptionSet,
    steps: usize,
    run: &RunOptions,
    device: &B::Device,
) -> Result<ShapeJudge<B::InnerBackend>, TrainError> {
    let final_dir = run.run_dir.join("final");
    if final_dir.join("model.mpk").exists() {
        let saved = read_model_config(&final_dir)?;
        let name = saved["model"].as_str().unwrap_or("?");
        if name != JUDGE_NAME {
            return Err(TrainError::Settings(format!(
                "{} holds another judge (`{name}`, not `{JUDGE_NAME}`): remove that folder to train \
                 the current one there, or give another judge folder",
                run.run_dir.display()
            )));
        }
        return load_weights(&final_dir, ShapeJudge::new(device), device);
    }
    let (images, labels) = shape_labels(&train);
    if images.is_empty() {
        return Err(TrainError::Settings(
            "no image captioned \"a {colour} {shape}\" to train the judge on".into(),
        ));
    }
    let config = json!({"model": JUDGE_NAME, "steps": steps, "batch": 64, "lr": 2e-3});
    <B as Backend>::seed(device, 7);
    let source = JudgeBatches {
        set: Arc::new(train),
        images,
        labels,
        batch: 64,
        seed: 7,
    };
    let spec = run.spec(steps, steps, 1);
    let optim = AdamWConfig::new().init::<B, ShapeJudge<B>>();
    let schedule = WarmupCosine::new(2e-3, steps / 10, steps);
    let judge = fit(
        &spec,
        &config,
        ShapeJudge::<B>::new(device),
        optim,
        schedule,
        source,
        std::slice::from_ref(device),
    )?;
    save_model_dir::<B::InnerBackend, _>(&final_dir, &config, &judge)?;
    Ok(judge)
}

/// The fraction of `set`'s shape images whose colour and shape the judge gets right.
pub fn judge_accuracy<B: Backend>(
    judge: &ShapeJudge<B>,
    set: &CaptionSet,
    device: &B::Device,
) -> f64 {
    let (images, labels) = shape_labels(set);
    let mut right = 0;
    for (chunk, truth) in images.chunks(128).zip(labels.chunks(128)) {
        let pixels = set
            .pixels(chunk, &vec![(0, 0); chunk.len()])
            .to_tensor(device);
        right += judge
            .judge(pixels)
            .iter()
            .zip(truth)
            .filter(|(a, b)| a == b)
            .count();
    }
    right as f64 / images.len().max(1) as f64
}
