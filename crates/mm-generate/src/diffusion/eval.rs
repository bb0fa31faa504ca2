//! Does a text-to-image model draw what it is asked? Every "a {colour} {shape}" prompt is
//! sampled at several guidance scales from the same starting noise, and the [`ShapeJudge`]
//! (trained on real images) says whether each picture has the asked colour and shape. Chance
//! is 1/24 for both, 1/8 for the colour, 1/3 for the shape; prompts held out of training are
//! scored apart.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use mm_data::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use super::judge::{ShapeJudge, parse_shape_prompt, shape_prompts};
use super::{GenerateOptions, PipelineError, SchedulerKind, TextToImage, Thresholding};

/// How the model is sampled for the evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeEvalOptions {
    /// Guidance scales to compare.
    pub guidances: Vec<f32>,
    /// Images per prompt and scale.
    pub samples: usize,
    /// Denoising steps.
    pub steps: usize,
    /// The sampler (none: the pipeline's own).
    pub scheduler: Option<SchedulerKind>,
    /// Guidance rescale phi ([`GenerateOptions::guidance_rescale`]; 0: off).
    pub guidance_rescale: f32,
    /// Dynamic thresholding ([`GenerateOptions::thresholding`]; `None`: the folder's).
    pub thresholding: Option<Thresholding>,
    /// Seed of the starting noise (the same for every scale).
    pub seed: u64,
    /// Prompts that were held out of training.
    pub held_out: Vec<String>,
}

impl Default for ShapeEvalOptions {
    fn default() -> Self {
        Self {
            guidances: vec![0.0, 1.0, 2.0, 3.0, 5.0],
            samples: 8,
            steps: 25,
            scheduler: None,
            guidance_rescale: 0.0,
            thresholding: None,
            seed: 0,
            held_out: Vec::new(),
        }
    }
}

/// Fractions of generated images judged right, by guidance scale (the scale, as written by
/// Rust's `{}` formatting, is the key: "0", "1", "2.5").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShapeScores {
    /// Colour and shape right.
    pub both: BTreeMap<String, f64>,
    /// Colour right.
    pub colour: BTreeMap<String, f64>,
    /// Shape right.
    pub shape: BTreeMap<String, f64>,
}

/// The evaluation's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffusionReport {
    /// Trained prompts: colour and shape right, by guidance scale.
    pub accuracy_by_guidance: BTreeMap<String, f64>,
    /// Trained prompts, each attribute alone.
    pub trained: ShapeScores,
    /// The held-out prompts.
    pub held_out: Vec<String>,
    /// The held-out prompts' scores.
    pub held_out_scores: ShapeScores,
    /// The judge's accuracy (colour and shape) on real test images.
    pub judge_accuracy: f64,
    /// The sampler.
    pub scheduler: String,
    /// How the images were sampled.
    #[serde(flatten)]
    pub sampling: SamplingSettings,
}

/// How an evaluation sampled its images: the settings every diffusion report records beside
/// its figures (flattened into the report's JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingSettings {
    /// Images per prompt and scale.
    pub samples_per_prompt: usize,
    /// Denoising steps.
    pub steps: usize,
    /// Guidance rescale phi (0: off; reports written before it existed read as 0).
    #[serde(default)]
    pub guidance_rescale: f32,
    /// Dynamic thresholding turned on by the evaluation (`None`: the folder's scheduler config
    /// as saved; reports written before it existed read as `None`).
    #[serde(default)]
    pub thresholding: Option<Thresholding>,
    /// Seed of the starting noise (reports written before it was recorded read as `None`).
    #[serde(default)]
    pub seed: Option<u64>,
}

impl SamplingSettings {
    /// The settings of `options`, with `samples` images per prompt.
    pub fn of(options: &ShapeEvalOptions, samples: usize) -> Self {
        Self {
            samples_per_prompt: samples,
            steps: options.steps,
            guidance_rescale: options.guidance_rescale,
            thresholding: options.thresholding,
            seed: Some(options.seed),
        }
    }
}

/// Standard normal starting noise for `rows` images of `shape[1..]`, row `r` from its own
/// stream of `seed` (so a row's noise does not depend on the batch it is in).
pub fn seeded_noise<B: Backend>(
    seed: u64,
    rows: &[u64],
    shape: [usize; 3],
    device: &B::Device,
) -> Tensor<B, 4> {
    let per = shape.iter().product::<usize>();
    let mut data = Vec::with_capacity(rows.len() * per);
    for &r in rows {
        let mut rng = SplitMix64::stream(seed, r);
        data.extend((0..per).map(|_| rng.normal() as f32));
    }
    Tensor::from_data(
        TensorData::new(data, [rows.len(), shape[0], shape[1], shape[2]]),
        device,
    )
}

/// Samples `prompts[i]` for every row id in `rows` (row `r` is prompt `r / samples`) at
/// guidance `w`, in chunks of 64.
pub(crate) fn sample_rows<B: Backend>(
    pipeline: &TextToImage<B>,
    prompts: &[String],
    samples: usize,
    options: &ShapeEvalOptions,
    w: f32,
    device: &B::Device,
) -> Result<Tensor<B, 4>, PipelineError> {
    let size = pipeline.unet_config.sample_size.unwrap_or(32);
    let rows: Vec<u64> = (0..(prompts.len() * samples) as u64).collect();
    let generate = GenerateOptions {
        steps: options.steps,
        guidance: w,
        scheduler: options.scheduler,
        eta: 0.0,
        guidance_rescale: options.guidance_rescale,
        thresholding: options.thresholding,
    };
    let mut out = Vec::new();
    for chunk in rows.chunks(64) {
        let text: Vec<&str> = chunk
            .iter()
            .map(|&r| prompts[r as usize / samples].as_str())
            .collect();
        let [_, c, h, wd] = pipeline.latent_shape(1, size, size);
        let init = seeded_noise::<B>(options.seed, chunk, [c, h, wd], device);
        let mut step = 0u64;
        let mut noise = |shape: [usize; 4]| {
            step += 1;
            let ids: Vec<u64> = (0..shape[0] as u64).map(|i| (step << 32) + i).collect();
            seeded_noise::<B>(
                options.seed ^ 0x5eed,
                &ids,
                [shape[1], shape[2], shape[3]],
                device,
            )
        };
        out.push(pipeline.generate(&text, init, &generate, &mut noise, &mut |_, _| {})?);
    }
    Ok(Tensor::cat(out, 0))
}

/// Scores `pipeline` on every easy-VQA prompt with `judge`; `on_images(w, images)` receives
/// each scale's images (`[prompts * samples, 3, h, w]` in [0, 1], prompt-major) for grids.
pub fn evaluate_shapes<B: Backend>(
    pipeline: &TextToImage<B>,
    judge: &ShapeJudge<B>,
    judge_accuracy: f64,
    options: &ShapeEvalOptions,
    device: &B::Device,
    on_images: &mut dyn FnMut(f32, &Tensor<B, 4>),
) -> Result<DiffusionReport, PipelineError> {
    let prompts = shape_prompts();
    let samples = options.samples.max(1);
    let mut trained = ShapeScores::default();
    let mut held = ShapeScores::default();
    for &w in &options.guidances {
        let images = sample_rows(pipeline, &prompts, samples, options, w, device)?;
        on_images(w, &images);
        let verdicts = judge.judge(images.mul_scalar(2.0).sub_scalar(1.0));
        // [right both, right colour, right shape, count] for trained and held-out prompts.
        let mut tally = [[0usize; 4]; 2];
        for (row, got) in verdicts.iter().enumerate() {
            let prompt = &prompts[row / samples];
            let want = parse_shape_prompt(prompt).expect("shape prompts parse");
            let t = &mut tally[usize::from(options.held_out.contains(prompt))];
            t[0] += usize::from(*got == want);
            t[1] += usize::from(got.0 == want.0);
            t[2] += usize::from(got.1 == want.1);
            t[3] += 1;
        }
        let key = format!("{w}");
        for (scores, t) in [(&mut trained, tally[0]), (&mut held, tally[1])] {
            if t[3] > 0 {
                let n = t[3] as f64;
                scores.both.insert(key.clone(), t[0] as f64 / n);
                scores.colour.insert(key.clone(), t[1] as f64 / n);
                scores.shape.insert(key.clone(), t[2] as f64 / n);
            }
        }
    }
    let scheduler = options.scheduler.unwrap_or(pipeline.scheduler.class_name);
    Ok(DiffusionReport {
        accuracy_by_guidance: trained.both.clone(),
        trained,
        held_out: options.held_out.clone(),
        held_out_scores: held,
        judge_accuracy,
        scheduler: serde_json::to_value(scheduler)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        sampling: SamplingSettings::of(options, samples),
    })
}

/// Images `[n, 3, h, w]` with values in [0, 1] (clamped) as 8-bit RGB pictures.
pub fn to_rgb_images<B: Backend>(images: &Tensor<B, 4>) -> Vec<image::RgbImage> {
    let [n, _, h, w] = images.dims();
    let data = images
        .clone()
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .unwrap_or_default();
    (0..n)
        .map(|i| {
            image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let px = |c: usize| {
                    let v = data[((i * 3 + c) * h + y as usize) * w + x as usize];
                    (v.clamp(0.0, 1.0) * 255.0).round() as u8
                };
                image::Rgb([px(0), px(1), px(2)])
            })
        })
        .collect()
}

/// Writes images (`[n, 3, h, w]` in [0, 1]) as one PNG grid of `columns` columns, each image
/// scaled up `scale` times (nearest neighbour), with a 2-pixel white gutter.
pub fn save_grid<B: Backend>(
    images: &Tensor<B, 4>,
    columns: usize,
    scale: usize,
    path: &Path,
) -> Result<(), image::ImageError> {
    let [n, _, h, w] = images.dims();
    let columns = columns.clamp(1, n.max(1));
    let rows = n.div_ceil(columns);
    let (cell_h, cell_w) = (h * scale + 2, w * scale + 2);
    let mut grid = image::RgbImage::from_pixel(
        (columns * cell_w + 2) as u32,
        (rows * cell_h + 2) as u32,
        image::Rgb([255, 255, 255]),
    );
    for (i, picture) in to_rgb_images(images).iter().enumerate() {
        let (gy, gx) = (2 + (i / columns) * cell_h, 2 + (i % columns) * cell_w);
        for y in 0..h * scale {
            for x in 0..w * scale {
                let p = *picture.get_pixel((x / scale) as u32, (y / scale) as u32);
                grid.put_pixel((gx + x) as u32, (gy + y) as u32, p);
            }
        }
    }
    grid.save(path)
}
