//! Trains the tests' tiny CLIP on a shapes manifest: the process that the kill test kills.
//!
//! `train-tiny-clip MANIFEST RUN_DIR STEPS [--resume]`

use burn::backend::{Autodiff, NdArray};
use mm_data::manifest::{ImageCaption, Manifest};
use mm_tests::tiny_clip_run;
use mm_text::ClipTokenizer;
use mm_vision::ClipImageProcessor;
use mm_vl::data::ImageTextSet;
use mm_vl::train::{RunOptions, train};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, manifest, run_dir, steps, rest @ ..] = args.as_slice() else {
        return Err("usage: train-tiny-clip MANIFEST RUN_DIR STEPS [--resume]".into());
    };
    let data = ImageTextSet::load(
        &Manifest::<ImageCaption>::read(manifest)?,
        &ClipImageProcessor::clip(16),
        None,
    )?;
    let run = RunOptions {
        resume: rest.iter().any(|a| a == "--resume"),
        ..RunOptions::new(run_dir)
    };
    train::<Autodiff<NdArray>>(
        &tiny_clip_run(steps.parse()?),
        &data,
        &ClipTokenizer::bundled(),
        &run,
        &[Default::default()],
    )?;
    Ok(())
}
