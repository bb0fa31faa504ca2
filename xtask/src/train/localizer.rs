//! `cargo xtask train localizer --model concat|attention`: a sound-source localizer trained
//! from audio-image correspondence on scenes of the training stamps (composed on the fly), then
//! evaluated on the held-out scenes of `data synth scenes`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::{Args, ValueEnum};
use image::RgbImage;
use mm_core::train::{RunOptions, append_eval};
use mm_core::{BackendJob, replicas};
use mm_text::bert::SentenceEncoder;
use mm_video::Ffmpeg;
use mm_video::av::backbone::load_backbone;
use mm_video::av::bridge::{BridgeReport, TextAnchors, evaluate_bridge, load_caption_stamps};
use mm_video::av::localizer::{LocalizerKind, LocalizerNet};
use mm_video::av::localizer_eval::{
    LocalizerReport, TestScene, evaluate_with_gallery, load_test_scenes_with,
};
use mm_video::av::localizer_train::{LocalizerTrainConfig, train_localizer};
use mm_video::av::scenes::{Stamp, background_range, backgrounds, load_stamps_with};
use mm_video::av::sound_embeddings::{SoundEmbeddings, SoundInput};

use crate::backend::dispatch;
use crate::common::{DeviceArg, DevicesArg, RunFlags, datasets_dir};

/// `--model`.
#[derive(Clone, Copy, ValueEnum)]
pub enum LocalizerArg {
    /// The guide's concatenation fusion (sigmoid map).
    Concat,
    /// Audio-to-patch attention (softmax map).
    Attention,
}

/// Flags of `train localizer`.
#[derive(Args)]
pub struct LocalizerTrainArgs {
    /// Which localizer.
    #[arg(long, value_enum, default_value = "attention")]
    model: LocalizerArg,
    #[command(flatten)]
    run: RunFlags,
    /// Optimizer steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Folder for checkpoints, metrics and the final model (default runs/localizer-<model>).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Also write the report as JSON here (and a gallery PNG beside it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Read the pictures through the pretrained CenterNet backbone (frozen; `cargo xtask data
    /// fetch centernet`) instead of a CNN trained from scratch; `--set backbone.node=...`
    /// etc. adjust it.
    #[arg(long)]
    backbone: bool,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    pub(super) devices: DevicesArg,
}

/// The held-out scenes' manifest, checked to exist.
pub fn scenes_manifest(data: Option<PathBuf>) -> Result<PathBuf> {
    let path = data.unwrap_or_else(|| datasets_dir().join("synth/scenes/scenes.jsonl"));
    if !path.exists() {
        bail!(
            "{} not found: run `cargo xtask data synth scenes` first",
            path.display()
        );
    }
    Ok(path)
}

/// Prints a localizer report and writes it to `out`, with a gallery of the first 8 scenes
/// (`NAME.json` -> `NAME-gallery.png`: scene, heatmap, true mask).
pub fn print_localizer_report(
    report: &LocalizerReport,
    out: Option<&Path>,
    gallery_png: Option<RgbImage>,
) -> Result<()> {
    println!(
        "pointing game {:.1}%, cIoU@0.5 {:.1}%, AUC {:.3} over {} scenes",
        100.0 * report.pointing_game,
        100.0 * report.ciou50,
        report.auc,
        report.n_test
    );
    println!(
        "centre prior: pointing {:.1}%, cIoU@0.5 {:.1}%; another scene's sound: pointing {:.1}%, cIoU@0.5 {:.1}%; one object of the scene at random: {:.1}%",
        100.0 * report.centre_pointing_game,
        100.0 * report.centre_ciou50,
        100.0 * report.shuffled_pointing_game,
        100.0 * report.shuffled_ciou50,
        100.0 * report.object_chance
    );
    if let Some(b) = &report.bridge {
        println!(
            "text bridge: pointing with the caption instead of the sound {:.1}%; sounds nearest their own caption {:.1}% (of {} captions)",
            100.0 * b.caption_pointing_game,
            100.0 * b.sound_caption_top1,
            b.captions
        );
    }
    if let Some(out) = out {
        mm_data::fs::atomic_write(out, serde_json::to_string_pretty(report)?.as_bytes())?;
        println!("wrote {}", out.display());
        if let Some(img) = gallery_png {
            let stem = out.file_stem().unwrap_or_default().to_string_lossy();
            let path = out.with_file_name(format!("{stem}-gallery.png"));
            img.save(&path)?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// Unit sentence embeddings of `names` by the sentence-transformers folder `minilm`, each
/// distinct name once.
pub fn embed_captions<B: Backend>(
    minilm: &Path,
    names: &[&str],
    device: &B::Device,
) -> Result<HashMap<String, Vec<f32>>> {
    let encoder = SentenceEncoder::<B>::load(minilm, device)
        .with_context(|| format!("loading the caption encoder from {}", minilm.display()))?;
    let mut distinct = names.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let mut embedded = HashMap::new();
    for chunk in distinct.chunks(64) {
        let e = encoder.encode(chunk)?;
        let [n, d] = e.dims();
        let v = e
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .unwrap_or_default();
        for (i, name) in chunk.iter().enumerate().take(n) {
            let row = &v[i * d..(i + 1) * d];
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
            embedded.insert(name.to_string(), row.iter().map(|x| x / norm).collect());
        }
    }
    Ok(embedded)
}

/// The text bridge's anchors: the captions of `captioned` and of the stamps with sound
/// `sounding`, embedded by the sentence-transformers folder `minilm`.
fn caption_anchors<B: Backend>(
    minilm: &Path,
    captioned: Vec<Stamp>,
    sounding: &[Stamp],
    device: &B::Device,
) -> Result<TextAnchors> {
    let names: Vec<&str> = captioned
        .iter()
        .chain(sounding)
        .map(|s| s.name.as_str())
        .collect();
    let embedded = embed_captions::<B>(minilm, &names, device)?;
    let texts = captioned
        .iter()
        .map(|s| embedded[&s.name].clone())
        .collect();
    let sound_texts = sounding.iter().map(|s| embedded[&s.name].clone()).collect();
    Ok(TextAnchors {
        stamps: captioned,
        texts,
        sound_texts,
    })
}

/// The bridge's halves apart on `scenes` (captions from their labels), for a model trained
/// with the bridge; `None` otherwise.
pub fn bridge_figures<B: Backend>(
    model: &LocalizerNet<B>,
    config: &LocalizerTrainConfig,
    scenes: &[TestScene],
    device: &B::Device,
) -> Result<Option<BridgeReport>> {
    if config.bridge <= 0.0 {
        return Ok(None);
    }
    let minilm = datasets_dir().join("minilm");
    let labels: Vec<&str> = scenes.iter().map(|s| s.label.as_str()).collect();
    let embedded = embed_captions::<B>(&minilm, &labels, device)?;
    let texts: Vec<Vec<f32>> = labels.iter().map(|l| embedded[*l].clone()).collect();
    let backbone =
        load_backbone::<B>(config.backbone.as_ref(), device).map_err(anyhow::Error::msg)?;
    Ok(Some(evaluate_bridge(
        model,
        backbone.as_ref(),
        scenes,
        &texts,
        device,
    )?))
}

struct LocalizerJob {
    config: LocalizerTrainConfig,
    stamps: Vec<Stamp>,
    /// Captioned stamps and the caption encoder's folder, when the text bridge is on.
    captioned: Option<(Vec<Stamp>, PathBuf)>,
    backgrounds: Vec<RgbImage>,
    test: Vec<TestScene>,
    run: RunOptions,
    devices: usize,
}

impl BackendJob for LocalizerJob {
    type Output = Result<(LocalizerReport, RgbImage)>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let devices = replicas(&device, self.devices);
        let anchors = match self.captioned {
            Some((captioned, minilm)) => Some(caption_anchors::<B::InnerBackend>(
                &minilm,
                captioned,
                &self.stamps,
                &device,
            )?),
            None => None,
        };
        let model = train_localizer::<B>(
            &self.config,
            self.stamps,
            self.backgrounds,
            anchors,
            &self.run,
            &devices,
        )?;
        let (mut report, gallery) =
            evaluate_with_gallery(&model, &self.config, &self.test, &device)?;
        report.bridge = bridge_figures(&model, &self.config, &self.test, &device)?;
        Ok((report, gallery))
    }
}

/// The manifest a `setting` entry (`bridge_sources`, `sound_sources`) names: one of `known`
/// (a name, its manifest under datasets/, the `data fetch` that writes it), or a path.
fn named_manifest(setting: &str, source: &str, known: &[(&str, &str, &str)]) -> Result<PathBuf> {
    let (path, fetch) = match known.iter().find(|(name, _, _)| *name == source) {
        Some((_, rel, fetch)) => (datasets_dir().join(rel), Some(*fetch)),
        None => (PathBuf::from(source), None),
    };
    match (path.exists(), fetch) {
        (true, _) => Ok(path),
        (false, Some(name)) => bail!(
            "{setting}: {} not found: run `cargo xtask data fetch {name}` first",
            path.display()
        ),
        (false, None) => bail!("{setting}: {} not found", path.display()),
    }
}

/// The image-caption manifest a `bridge_sources` entry names: `emoji` (the Google emoji with
/// their names), `openmoji`, or a path.
fn caption_source(source: &str) -> Result<PathBuf> {
    let known = [
        ("emoji", "emoji/google.jsonl", "emoji"),
        ("openmoji", "emoji/openmoji.jsonl", "openmoji"),
    ];
    named_manifest("bridge_sources", source, &known)
}

/// The manifest of pictures with sound a `sound_sources` entry names: `gcompris`, or a path.
fn sound_source(source: &str) -> Result<PathBuf> {
    let known = [("gcompris", "gcompris/gcompris-sounds.jsonl", "gcompris")];
    named_manifest("sound_sources", source, &known)
}

/// The sound embeddings a localizer's settings name (`sound_embeddings`), read.
pub fn sound_embeddings(config: &LocalizerTrainConfig) -> Result<Option<SoundEmbeddings>> {
    Ok(match &config.sound_embeddings {
        Some(file) => Some(SoundEmbeddings::read(file)?),
        None => None,
    })
}

/// How sounds are read for a model with (or without) sound embeddings.
pub fn sound_input(embeddings: Option<&SoundEmbeddings>) -> SoundInput<'_> {
    embeddings.map_or(SoundInput::LogMel, SoundInput::Embedding)
}

/// The default backbone folder under this checkout's datasets folder.
fn root_relative(folder: &Path) -> PathBuf {
    match folder.strip_prefix("datasets") {
        Ok(rest) => datasets_dir().join(rest),
        Err(_) => folder.to_path_buf(),
    }
}

/// Runs `train localizer`.
pub fn run(args: LocalizerTrainArgs) -> Result<()> {
    let kind = match args.model {
        LocalizerArg::Concat => LocalizerKind::Concat,
        LocalizerArg::Attention => LocalizerKind::Attention,
    };
    let mut config = args
        .run
        .settings(LocalizerTrainConfig::new(kind), "a sound-source localizer")?;
    config.model.kind = kind;
    if args.backbone {
        let mut b = config.backbone.take().unwrap_or_default();
        b.folder = root_relative(&b.folder);
        config.model.features = Some(b.channels);
        config.backbone = Some(b);
    }
    if let Some(steps) = args.steps {
        config.steps = steps;
    }
    let root = datasets_dir();
    let sounds = root.join("stamps/stamp-sounds.jsonl");
    let film = root.join("video/bbb-160x90.mp4");
    if !sounds.exists() || !film.exists() {
        bail!(
            "the localizer trains on the stamps over the film: run `cargo xtask data fetch stamps` and `cargo xtask data fetch video` first"
        );
    }
    let test_manifest = scenes_manifest(None)?;
    if let Some(file) = &config.sound_embeddings {
        let file = root_relative(file);
        let width = SoundEmbeddings::read(&file)?.width();
        config.model.sound_embedding.get_or_insert(width);
        config.sound_embeddings = Some(file);
    }
    let embeddings = sound_embeddings(&config)?;
    let input = sound_input(embeddings.as_ref());
    eprintln!("loading the training stamps, backgrounds and test scenes...");
    let mut stamps = load_stamps_with(&sounds, "train", input)?;
    for source in &config.sound_sources {
        let path = sound_source(source)?;
        let more = load_stamps_with(&path, "train", input)?;
        eprintln!(
            "{} more pictures with their sound from {}",
            more.len(),
            path.display()
        );
        stamps.extend(more);
    }
    let ffmpeg = Ffmpeg::default();
    let duration = ffmpeg.probe(&film)?.duration_s;
    let backs = backgrounds(
        &film,
        background_range("train", duration),
        config.backgrounds,
        config.scenes.size,
        &ffmpeg,
    )?;
    let test = load_test_scenes_with(&test_manifest, config.scenes.size, input)?;
    let captioned = if config.bridge > 0.0 {
        let manifest = root.join("stamps/stamps.jsonl");
        let minilm = root.join("minilm");
        if !manifest.exists() || !minilm.join("config.json").exists() {
            bail!(
                "the text bridge needs the stamps' captions ({}) and the caption encoder ({}): run `cargo xtask data fetch stamps` and `cargo xtask data fetch minilm` first",
                manifest.display(),
                minilm.display()
            );
        }
        let mut captioned = load_caption_stamps(&manifest, "train", &sounds)?;
        for source in &config.bridge_sources {
            let path = caption_source(source)?;
            let more = load_caption_stamps(&path, "train", &sounds)?;
            if more.is_empty() {
                bail!(
                    "bridge_sources: {} has no `train` records to add",
                    path.display()
                );
            }
            eprintln!(
                "text bridge: {} captioned pictures from {}",
                more.len(),
                path.display()
            );
            captioned.extend(more);
        }
        Some((captioned, minilm))
    } else {
        None
    };
    let name = serde_json::to_value(kind)?;
    let run_dir = args.run_dir.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/localizer-{}",
            name.as_str().unwrap_or("model")
        ))
    });
    let run = RunOptions {
        resume: args.run.resume,
        ..RunOptions::new(&run_dir)
    };
    let job = LocalizerJob {
        config,
        stamps,
        captioned,
        backgrounds: backs,
        test,
        run,
        devices: args.devices.devices as usize,
    };
    let (report, img) = dispatch(args.device.device, job)??;
    append_eval(
        &run_dir.join("metrics.jsonl"),
        &serde_json::to_value(&report)?,
    )?;
    println!("final model: {}", run_dir.join("final").display());
    print_localizer_report(&report, args.out.as_deref(), Some(img))
}
