//! `cargo xtask eval zero-shot --checkpoint DIR [--data stamps] [--train-data emoji]
//! [--templates FILE] [--out FILE] [--page FILE]`: zero-shot transfer to images the model
//! never saw (the Tux Paint stamps), classes named in its training words; one prompt vs the
//! ensemble, a template ablation, object classes and broader categories, each beside the
//! untrained model, uniform chance and the majority class. DIR is a model folder of ours or an
//! HF CLIP folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Args;
use mm_core::BackendJob;
use mm_data::manifest::{ImageCaption, Manifest};
use mm_vision::AlphaMode;
use mm_vl::hf::{LoadedClip, load_any_clip};
use mm_vl::transfer::{STAMP_TEMPLATES, Vocabulary, stamp_items};
use mm_vl::transfer_eval::{TaskReport, ZeroShotReport, evaluate_transfer};

use crate::backend::dispatch;
use crate::common::{DeviceArg, Role, image_caption_sources, resolve_data};

/// Flags of `eval zero-shot`.
#[derive(Args)]
pub struct ZeroShotEvalArgs {
    /// A model folder of ours (a run's `final/`) or an HF CLIP folder.
    #[arg(long, default_value = "runs/clip/final")]
    checkpoint: PathBuf,
    /// The test images: `stamps` (Tux Paint, from `data fetch stamps`) or a manifest in its form
    /// (each record's first caption names the object; `label` is its folder).
    #[arg(long, default_value = "stamps")]
    data: String,
    /// What the model trained on, as `train clip --data` takes it (repeatable): the words of
    /// those captions are the classes it may be asked about.
    #[arg(long, default_value = "emoji")]
    train_data: Vec<String>,
    /// Test only the stamps of this split (`test` after training on `stamps:train`).
    #[arg(long)]
    split: Option<String>,
    /// Prompt templates, one per line with `{}` for the class; the first is the single prompt
    /// (default: eight templates for photos, drawings, clip art and emoji).
    #[arg(long)]
    templates: Option<PathBuf>,
    /// Also write the figures as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write a Markdown page of the test images with their top-3 classes here.
    #[arg(long)]
    page: Option<PathBuf>,
    /// Seed of the untrained baseline's initialization.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArg,
}

/// Reads a template file: one template per non-empty line, each with `{}`.
pub(crate) fn read_templates(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read templates {}", path.display()))?;
    let templates: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if templates.is_empty() {
        bail!("{}: no templates", path.display());
    }
    if let Some(bad) = templates.iter().find(|t| !t.contains("{}")) {
        bail!(
            "{}: template `{bad}` has no `{{}}` for the class",
            path.display()
        );
    }
    Ok(templates)
}

struct ZeroShotJob {
    checkpoint: PathBuf,
    test: Manifest<ImageCaption>,
    vocabulary: Vocabulary,
    templates: Vec<String>,
    seed: u64,
}

impl BackendJob for ZeroShotJob {
    type Output = Result<(ZeroShotReport, ZeroShotReport)>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let mut trained = load_any_clip::<B::InnerBackend>(&self.checkpoint, &device)?;
        // Stamps are cutouts meant to be laid on a page: every model sees them on white (an HF
        // folder would otherwise drop alpha as transformers does, showing whatever colour the
        // transparent pixels hold).
        trained.alpha = AlphaMode::CompositeOnWhite;
        B::InnerBackend::seed(&device, self.seed);
        let untrained = LoadedClip {
            model: trained.config.init::<B>(&device)?.valid(),
            config: trained.config.clone(),
            tokenizer: trained.tokenizer.clone(),
            processor: trained.processor.clone(),
            alpha: trained.alpha,
        };
        let items = stamp_items(&self.test, &self.vocabulary);
        let report = evaluate_transfer(&trained, &items, &self.templates, 64)?;
        let baseline = evaluate_transfer(&untrained, &items, &self.templates, 64)?;
        Ok((report, baseline))
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn print_task(name: &str, t: &TaskReport, u: &TaskReport) {
    println!(
        "\n{name}: {} classes, {} test images (majority: {})",
        t.n_classes, t.n_test, t.majority_class
    );
    println!(
        "{:<22} {:>8} {:>10} {:>8} {:>9}",
        "", "trained", "untrained", "chance", "majority"
    );
    let rows = [
        (
            "top-1, 1 prompt",
            t.top1_single,
            u.top1_single,
            t.chance_top1,
        ),
        (
            "top-1, ensemble",
            t.top1_ensemble,
            u.top1_ensemble,
            t.chance_top1,
        ),
        (
            "top-5, 1 prompt",
            t.top5_single,
            u.top5_single,
            t.chance_top5,
        ),
        (
            "top-5, ensemble",
            t.top5_ensemble,
            u.top5_ensemble,
            t.chance_top5,
        ),
    ];
    for (row, a, b, c) in rows {
        let majority = if row.starts_with("top-1") {
            pct(t.majority_top1)
        } else {
            "-".into()
        };
        println!(
            "{row:<22} {:>8} {:>10} {:>8} {majority:>9}",
            pct(a),
            pct(b),
            pct(c)
        );
    }
    println!(
        "{:<30} {:>7} {:>15}",
        "template", "alone", "ensemble without"
    );
    for f in &t.templates {
        println!(
            "{:<30} {:>7} {:>15}",
            f.template,
            pct(f.top1_alone),
            pct(f.top1_without)
        );
    }
}

/// A Markdown page of the test images (linked where they lie) with their top-3 classes.
fn page(report: &ZeroShotReport, at: &Path) -> String {
    let base = at.parent().unwrap_or(Path::new("."));
    let mut md = String::from(
        "# Zero-shot predictions\n\n| image | caption | truth | top-3 (ensemble) |\n|---|---|---|---|\n",
    );
    for p in &report.predictions {
        let image = pathdiff(&p.image, base);
        let top3: Vec<String> = p
            .top3
            .iter()
            .map(|(c, prob)| {
                let c = if *c == p.label {
                    format!("**{c}**")
                } else {
                    c.clone()
                };
                format!("{c} {:.0}%", 100.0 * prob)
            })
            .collect();
        let _ = writeln!(
            md,
            "| ![]({}) | {} | {} | {} |",
            image.display(),
            p.caption.replace('|', "/"),
            p.label,
            top3.join(", ")
        );
    }
    md
}

/// `path` relative to `base` when both are absolute or both relative, else `path`.
fn pathdiff(path: &Path, base: &Path) -> PathBuf {
    let (Ok(path), Ok(base)) = (std::path::absolute(path), std::path::absolute(base)) else {
        return path.to_path_buf();
    };
    let common = path
        .components()
        .zip(base.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in base.components().skip(common) {
        out.push("..");
    }
    out.extend(path.components().skip(common));
    out
}

/// Runs `eval zero-shot`.
pub fn run(args: ZeroShotEvalArgs) -> Result<()> {
    let test_path = resolve_data(&args.data, Role::Test)?;
    let mut test = Manifest::<ImageCaption>::read(&test_path)?;
    if let Some(split) = &args.split {
        test.records
            .retain(|r| r.split.as_deref() == Some(split.as_str()));
        if test.records.is_empty() {
            bail!("{}: no records of split `{split}`", test_path.display());
        }
    }
    let training = image_caption_sources(&args.train_data, Role::Train)?;
    let vocabulary = Vocabulary::from_manifest(&training);
    let templates = match &args.templates {
        Some(path) => read_templates(path)?,
        None => STAMP_TEMPLATES.iter().map(|t| t.to_string()).collect(),
    };
    let job = ZeroShotJob {
        checkpoint: args.checkpoint.clone(),
        test,
        vocabulary,
        templates,
        seed: args.seed,
    };
    let (mut trained, untrained) = dispatch(args.device.device, job)??;
    // Image paths in the report relative to where the command ran, when below it.
    if let Ok(here) = std::env::current_dir() {
        for p in &mut trained.predictions {
            if let Ok(rel) = p.image.strip_prefix(&here) {
                p.image = rel.to_path_buf();
            }
        }
    }
    println!(
        "zero-shot: {} on {} (classes: words of {})",
        args.checkpoint.display(),
        test_path.display(),
        training.path.display()
    );
    print_task("objects", &trained.objects, &untrained.objects);
    if let (Some(t), Some(u)) = (&trained.categories, &untrained.categories) {
        print_task("categories", t, u);
    }
    if let Some(out) = &args.out {
        let mut json = serde_json::to_value(&trained)?;
        json["untrained"] = serde_json::json!({
            "objects": untrained.objects,
            "categories": untrained.categories,
        });
        json["checkpoint"] = args.checkpoint.display().to_string().into();
        json["train_data"] = serde_json::to_value(&args.train_data)?;
        json["split"] = serde_json::to_value(&args.split)?;
        mm_data::fs::atomic_write(out, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("wrote {}", out.display());
    }
    if let Some(at) = &args.page {
        mm_data::fs::atomic_write(at, page(&trained, at).as_bytes())?;
        println!("wrote {}", at.display());
    }
    Ok(())
}
