//! `cargo xtask index build --model DIR --images FOLDER|MANIFEST --out INDEX [--resume]` and
//! `cargo xtask search --index INDEX --text "..." | --image PATH [--k 10]`.
//!
//! An index folder records the model that built it (`model.json`), so `search` and `serve`
//! embed queries with the same model unless `--model` says otherwise. Each batch is durable
//! once it is reported (`indexed N, read R of M images` on stderr when it is not a
//! terminal); a build that was stopped continues with `--resume`, adding only what the
//! folder does not hold.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::backend::dispatch;
use crate::common::DeviceArg;
use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use mm_core::BackendJob;
use mm_data::manifest::{ImageCaption, Manifest};
use mm_retrieval::{DurableIndex, ExactIndex, HnswIndex, HnswParams, UsearchIndex, VectorIndex};
use mm_vision::load_image_with;
use mm_vl::hf::load_any_clip;
use serde_json::{Value, json};

/// Flags of `index`.
#[derive(Args)]
pub struct IndexArgs {
    #[command(subcommand)]
    command: IndexCommand,
}

#[derive(Subcommand)]
enum IndexCommand {
    /// Embed images and write a new index folder.
    Build(BuildArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// Exhaustive search on the device.
    Exact,
    /// Approximate search on an HNSW graph of our own.
    Hnsw,
    /// Approximate search on the HNSW graph of the usearch library.
    Usearch,
}

#[derive(Args)]
struct BuildArgs {
    /// An HF CLIP folder or a model folder of ours.
    #[arg(long)]
    model: PathBuf,
    /// A folder of images, or a JSONL manifest (its captions and labels become metadata).
    #[arg(long)]
    images: PathBuf,
    /// The index folder to create.
    #[arg(long)]
    out: PathBuf,
    /// exact | hnsw | usearch
    #[arg(long, value_enum, default_value = "exact")]
    kind: Kind,
    /// HNSW neighbours per node (hnsw, usearch).
    #[arg(long, default_value_t = 32)]
    m: usize,
    /// HNSW build-time candidate list.
    #[arg(long, default_value_t = 128)]
    ef_construction: usize,
    /// HNSW search-time candidate list.
    #[arg(long, default_value_t = 128)]
    ef_search: usize,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Continue a build that was stopped: keep what `--out` holds and add the rest.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    device: DeviceArg,
}

/// The images to index and their metadata.
fn sources(images: &Path) -> Result<Vec<(PathBuf, Value)>> {
    if images.is_file() {
        let manifest = Manifest::<ImageCaption>::read(images)?;
        return Ok(manifest
            .records
            .iter()
            .map(|r| {
                let meta = json!({"path": r.image, "caption": r.captions[0], "label": r.label});
                (manifest.image_path(r), meta)
            })
            .collect());
    }
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(images).with_context(|| format!("cannot read {}", images.display()))?
    {
        let path = entry?.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ["png", "jpg", "jpeg", "gif", "webp"].contains(&ext.as_str()) {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            out.push((path, json!({"path": name})));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

struct BuildJob(BuildArgs, Vec<(PathBuf, Value)>);

impl BackendJob for BuildJob {
    type Output = Result<(usize, Vec<String>)>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let BuildJob(a, items) = self;
        let model = load_any_clip::<B::InnerBackend>(&a.model, &device)?;
        let dim = model.config.projection_dim;
        let params = HnswParams {
            m: a.m,
            ef_construction: a.ef_construction,
            ef_search: a.ef_search,
        };
        let model_path = std::fs::canonicalize(&a.model)?;
        let resuming = a.resume && a.out.join(mm_retrieval::durable::SNAPSHOT_FILE).exists();
        let (mut index, todo) = if resuming {
            check_model_json(&a.out, &model_path)?;
            let index = DurableIndex::open::<B::InnerBackend>(&a.out, &device)?;
            let todo = not_yet_indexed(&index, items, &a.out)?;
            (index, todo)
        } else {
            let index: Box<dyn VectorIndex> = match a.kind {
                Kind::Exact => Box::new(ExactIndex::<B::InnerBackend>::new(dim, &device)),
                Kind::Hnsw => Box::new(HnswIndex::new(dim, params)?),
                Kind::Usearch => Box::new(UsearchIndex::new(dim, params)?),
            };
            (DurableIndex::create(&a.out, index)?, items)
        };
        if index.index().dim() != dim {
            bail!(
                "{} holds {}-d vectors but {} embeds to {dim}",
                a.out.display(),
                index.index().dim(),
                a.model.display()
            );
        }
        mm_data::fs::atomic_write(
            &a.out.join("model.json"),
            &serde_json::to_vec_pretty(&json!({"model": model_path}))?,
        )?;
        let (total, mut read) = (index.len() + todo.len(), index.len());
        let items = todo;
        let terminal = std::io::stderr().is_terminal();
        let bar = ProgressBar::new(items.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} images [{eta}]").expect("template"),
        );
        let mut skipped = Vec::new();
        for chunk in items.chunks(a.batch.max(1)) {
            let mut images = Vec::new();
            let mut metadata = Vec::new();
            for (path, meta) in chunk {
                match load_image_with(path, model.alpha) {
                    Ok(img) => {
                        images.push(img);
                        metadata.push(meta.clone());
                    }
                    Err(e) => skipped.push(e.to_string()),
                }
            }
            let refs: Vec<_> = images.iter().collect();
            let rows: Vec<f32> = model
                .embed_images(&refs, a.batch, true)
                .into_iter()
                .flatten()
                .collect();
            index.add(&rows, metadata)?;
            bar.inc(chunk.len() as u64);
            read += chunk.len();
            if !terminal {
                // The batch is in the log and fsynced: acknowledged.
                eprintln!("indexed {}, read {read} of {total} images", index.len());
            }
        }
        bar.finish_and_clear();
        index.save()?;
        Ok((index.len(), skipped))
    }
}

/// Refuses to continue a build with another model than the one named in `model.json`.
fn check_model_json(out: &Path, model: &Path) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(out.join("model.json")) else {
        return Ok(()); // stopped before it was written: it is written now
    };
    let recorded = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["model"].as_str().map(PathBuf::from));
    match recorded {
        Some(m) if m != model => bail!(
            "{} was built with {}, not {}; resume with the same --model",
            out.display(),
            m.display(),
            model.display()
        ),
        _ => Ok(()),
    }
}

/// The items an index folder does not hold yet: its entries must be the first items of
/// `items` in order (those that could not be read were skipped and are tried again).
fn not_yet_indexed(
    index: &DurableIndex,
    items: Vec<(PathBuf, Value)>,
    out: &Path,
) -> Result<Vec<(PathBuf, Value)>> {
    let mut matched = 0;
    let mut todo = Vec::new();
    for (path, meta) in items {
        if index.metadata(matched as u64) == Some(&meta) {
            matched += 1;
        } else {
            todo.push((path, meta));
        }
    }
    if matched != index.len() {
        bail!(
            "{} holds {} entries, but only its first {matched} are the first of these images; \
             it was built from other images (choose another --out)",
            out.display(),
            index.len()
        );
    }
    Ok(todo)
}

/// The model an index was built with (`model.json` in its folder).
pub fn index_model(index: &Path, model: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(m) = model {
        return Ok(m);
    }
    let path = index.join("model.json");
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .with_context(|| format!("{} has no model.json; pass --model", index.display()))?,
    )
    .with_context(|| format!("{} is not valid JSON", path.display()))?;
    v["model"]
        .as_str()
        .map(PathBuf::from)
        .with_context(|| format!("{} names no model", path.display()))
}

/// Runs `index`.
pub fn run(args: IndexArgs) -> Result<()> {
    match args.command {
        IndexCommand::Build(a) => {
            if !a.resume && a.out.join(mm_retrieval::durable::SNAPSHOT_FILE).exists() {
                bail!(
                    "{} already holds an index; choose another --out, or --resume to continue it",
                    a.out.display()
                );
            }
            let items = sources(&a.images)?;
            if items.is_empty() {
                bail!("no images (png, jpg, gif, webp) in {}", a.images.display());
            }
            let device = a.device.device;
            let out = a.out.clone();
            let (n, skipped) = dispatch(device, BuildJob(a, items))??;
            for s in &skipped {
                eprintln!("skipped: {s}");
            }
            println!(
                "indexed {n} images into {} ({} skipped)",
                out.display(),
                skipped.len()
            );
            Ok(())
        }
    }
}

/// Flags of `search`.
#[derive(Args)]
pub struct SearchArgs {
    /// The index folder.
    #[arg(long)]
    index: PathBuf,
    /// A text query (text -> images).
    #[arg(long, conflicts_with = "image")]
    text: Option<String>,
    /// An image query (image -> nearest indexed images).
    #[arg(long)]
    image: Option<PathBuf>,
    /// Results to show.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// The model to embed the query with (default: the one that built the index).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArg,
}

struct SearchJob(SearchArgs, PathBuf);

impl BackendJob for SearchJob {
    type Output = Result<Vec<mm_retrieval::Found>>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let SearchJob(a, model_dir) = self;
        let model = load_any_clip::<B::InnerBackend>(&model_dir, &device)?;
        let index = DurableIndex::open::<B::InnerBackend>(&a.index, &device)?;
        let query = match (&a.text, &a.image) {
            (Some(text), _) => model
                .embed_texts(std::slice::from_ref(text), 1, true)?
                .remove(0),
            (None, Some(path)) => model
                .embed_image_files(std::slice::from_ref(path), 1, true, |_| {})?
                .remove(0),
            (None, None) => bail!("give --text TEXT or --image PATH"),
        };
        Ok(index.search_batch(&query, a.k)?.remove(0))
    }
}

/// Runs `search`.
pub fn run_search(args: SearchArgs) -> Result<()> {
    let model = index_model(&args.index, args.model.clone())?;
    let device = args.device.device;
    let as_json = args.json;
    let found = dispatch(device, SearchJob(args, model))??;
    if as_json {
        println!("{}", serde_json::to_string(&found)?);
        return Ok(());
    }
    for f in found {
        println!("{:>4}  {:.4}  {}", f.id, f.score, f.metadata);
    }
    Ok(())
}
