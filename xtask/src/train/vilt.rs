//! `cargo xtask train vilt`: a ViLT pre-trained with image-text matching and masked language
//! modelling on easy-VQA's captions (runs/vilt/pretrain), then fine-tuned for VQA on its
//! training questions (runs/vilt/vqa); scored on the test images and questions. Both `final/`
//! folders are HF ViLT folders.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::train::{RunOptions, append_eval};
use mm_core::{BackendJob, replicas};
use mm_data::manifest::{ImageCaption, Manifest, QuestionAnswer};
use mm_text::WordPieceTokenizer;
use mm_vl::vilt::eval::{PretrainReport, article_ids, evaluate_pretraining};
use mm_vl::vilt::pretrain::CaptionSet;
use mm_vl::vilt::train::{VILT_MEAN_STD, ViltTrainConfig, finetune_vilt, pretrain_vilt};
use mm_vl::vqa::data::tokenize_wordpiece;
use mm_vl::vqa::{QuestionOnly, VqaReport, VqaSet, evaluate_vqa};

use crate::backend::dispatch;
use crate::common::{DeviceArg, DevicesArg, RunFlags, datasets_dir};
use crate::train::{print_vqa_report, vqa_manifest};

/// Flags of `train vilt`.
#[derive(Args)]
pub struct ViltTrainArgs {
    #[command(flatten)]
    run: RunFlags,
    /// Captioned images with `train`/`test` splits (default: datasets/vqa/captions.jsonl).
    #[arg(long)]
    captions: Option<PathBuf>,
    /// Training questions (default: datasets/vqa/train.jsonl).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Test questions (default: datasets/vqa/test.jsonl).
    #[arg(long)]
    test: Option<PathBuf>,
    /// Fine-tune this pre-trained ViLT folder instead of pre-training one.
    #[arg(long)]
    from: Option<PathBuf>,
    /// Folder for both phases' runs (default runs/vilt).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Also write both reports as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    pub(super) devices: DevicesArg,
}

/// A captions manifest: `given`, else datasets/vqa/captions.jsonl, checked to exist.
pub fn captions_manifest(given: Option<PathBuf>) -> Result<PathBuf> {
    let path = given.unwrap_or_else(|| datasets_dir().join("vqa/captions.jsonl"));
    if !path.exists() {
        bail!(
            "{} not found: run `cargo xtask data fetch vqa` first (or pass an image-caption manifest)",
            path.display()
        );
    }
    Ok(path)
}

/// Prints the pre-training figures.
pub fn print_pretrain_report(r: &PretrainReport) {
    println!(
        "ITM AUC {:.3} (matched captions against same-shape, other-colour ones) over {} held-out images",
        r.itm_auc, r.n_images
    );
    println!(
        "masked words: {:.1}% with the image, {:.1}% with a blank image ({} words)",
        100.0 * r.mlm_accuracy,
        100.0 * r.mlm_blank_accuracy,
        r.n_masked
    );
}

struct ViltJob {
    config: ViltTrainConfig,
    tokenizer: WordPieceTokenizer,
    captions: PathBuf,
    train: VqaSet,
    test: VqaSet,
    from: Option<PathBuf>,
    run_dir: PathBuf,
    resume: bool,
    devices: usize,
}

impl BackendJob for ViltJob {
    type Output = Result<(Option<PretrainReport>, VqaReport)>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let devices = replicas(&device, self.devices);
        let c = &self.config;
        let (size, text) = (c.model.image_size, c.model.max_position_embeddings);
        let run = |name: &str| RunOptions {
            resume: self.resume,
            ..RunOptions::new(self.run_dir.join(name))
        };
        let (pretrained, pre_report) = match &self.from {
            Some(dir) => (dir.clone(), None),
            None => {
                let load = |split| {
                    CaptionSet::from_manifest(
                        &self.captions,
                        split,
                        &self.tokenizer,
                        size,
                        text,
                        VILT_MEAN_STD,
                    )
                };
                let train = load("train")?;
                let test = load("test")?;
                let model =
                    pretrain_vilt::<B>(c, train, &self.tokenizer, &run("pretrain"), &devices)?;
                let report = evaluate_pretraining(
                    &model,
                    &test,
                    self.tokenizer.mask,
                    article_ids(&self.tokenizer),
                    c.seed,
                    &device,
                )?;
                print_pretrain_report(&report);
                (self.run_dir.join("pretrain/final"), Some(report))
            }
        };
        let baseline = QuestionOnly::fit(&self.train);
        let (model, answers) = finetune_vilt::<B>(
            c,
            &pretrained,
            self.train,
            &self.tokenizer,
            &run("vqa"),
            &devices,
        )?;
        let report = evaluate_vqa(&model, &answers, &baseline, &self.test, &device);
        Ok((pre_report, report))
    }
}

fn read_texts(captions: &Path, train: &Path) -> Result<Vec<String>> {
    let mut texts: Vec<String> = Manifest::<ImageCaption>::read(captions)?
        .records
        .into_iter()
        .filter(|r| r.split.as_deref() != Some("test"))
        .flat_map(|r| r.captions)
        .collect();
    texts.extend(
        Manifest::<QuestionAnswer>::read(train)?
            .records
            .into_iter()
            .map(|r| r.question),
    );
    Ok(texts)
}

/// Runs `train vilt`.
pub fn run(args: ViltTrainArgs) -> Result<()> {
    let config = args
        .run
        .settings(ViltTrainConfig::default(), "a ViLT training run")?;
    let captions = captions_manifest(args.captions)?;
    let train_path = vqa_manifest(args.train, "train")?;
    let test_path = vqa_manifest(args.test, "test")?;
    // The vocabulary: every word of the training captions and questions (or the pre-trained
    // folder's own).
    let tokenizer = match &args.from {
        Some(dir) => WordPieceTokenizer::from_folder(dir)?,
        None => WordPieceTokenizer::from_words(&read_texts(&captions, &train_path)?)?,
    };
    eprintln!("vocabulary: {} tokens", tokenizer.vocab_size());
    let (size, text) = (
        config.model.image_size,
        config.model.max_position_embeddings,
    );
    let questions = |path: &Path| -> Result<VqaSet> {
        let m = Manifest::<QuestionAnswer>::read(path)?;
        let tokenize = |q: &str| tokenize_wordpiece(&tokenizer, q, text);
        Ok(VqaSet::from_records(
            &m,
            &tokenize,
            text,
            size,
            VILT_MEAN_STD,
        )?)
    };
    eprintln!("loading the questions and decoding their images...");
    let (train, test) = (questions(&train_path)?, questions(&test_path)?);
    let run_dir = args.run_dir.unwrap_or_else(|| PathBuf::from("runs/vilt"));
    let job = ViltJob {
        config,
        tokenizer,
        captions,
        train,
        test,
        from: args.from,
        run_dir: run_dir.clone(),
        resume: args.run.resume,
        devices: args.devices.devices as usize,
    };
    let (pre, report) = dispatch(args.device.device, job)??;
    let figures = serde_json::json!({"pretraining": pre, "vqa": report});
    append_eval(&run_dir.join("vqa/metrics.jsonl"), &figures)?;
    println!("final model: {}", run_dir.join("vqa/final").display());
    print_vqa_report(&report, None)?;
    if let Some(out) = args.out {
        mm_data::fs::atomic_write(&out, serde_json::to_string_pretty(&figures)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
