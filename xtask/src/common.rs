//! Helpers every subcommand shares: where the workspace is, how `--data` and `--set` resolve.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mm_core::DeviceSpec;
use mm_data::manifest::{ImageCaption, Manifest};

/// The `--device` flag every command that runs a model shares.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct DeviceArg {
    /// cpu | ndarray | wgpu[:N] | cuda[:N]
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

/// `--devices N` of the training commands: data-parallel over N devices of `--device`'s kind.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct DevicesArg {
    /// Train data-parallel on N devices counted from --device (cuda:0 --devices 2: cuda:0 and
    /// cuda:1; cpu: N worker threads on the CPU). Each takes 1/N of every batch.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub devices: u16,
}

/// The workspace root (the folder holding `configs/` and `datasets/`): the checkout `cargo
/// xtask` runs from (cargo sets `CARGO_MANIFEST_DIR` for the process), else the nearest folder
/// above the current one that holds `xtask/Cargo.toml` (the binary run directly, say from a
/// shared target folder), else the checkout it was built from.
pub fn workspace_root() -> PathBuf {
    let is_root = |dir: &Path| dir.join("xtask/Cargo.toml").is_file();
    let from_cargo = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|xtask| xtask.parent().map(Path::to_path_buf))
        .filter(|dir| is_root(dir));
    let from_cwd = || {
        let cwd = std::env::current_dir().ok()?;
        cwd.ancestors().find(|d| is_root(d)).map(Path::to_path_buf)
    };
    from_cargo.or_else(from_cwd).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask sits in the workspace")
            .to_path_buf()
    })
}

/// Where prepared datasets live.
pub fn datasets_dir() -> PathBuf {
    workspace_root().join("datasets")
}

/// Which half of a named dataset a command wants.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The training set.
    Train,
    /// The test set.
    Test,
}

/// Resolves `--data NAME|MANIFEST.jsonl` to a manifest path.
pub fn resolve_data(data: &str, role: Role) -> Result<PathBuf> {
    let as_path = Path::new(data);
    if data.ends_with(".jsonl") || as_path.is_file() {
        if !as_path.is_file() {
            bail!("manifest {data} does not exist");
        }
        return Ok(as_path.to_path_buf());
    }
    let (file, fetch) = match (data, role) {
        ("emoji", Role::Train) | ("emoji-google", _) => ("emoji/google.jsonl", "emoji"),
        ("emoji", Role::Test) | ("emoji-twitter", _) => ("emoji/twitter.jsonl", "emoji"),
        ("stamps", _) => ("stamps/stamps.jsonl", "stamps"),
        _ => bail!(
            "unknown dataset `{data}`: give a manifest (.jsonl) or one of emoji, emoji-google, emoji-twitter, stamps"
        ),
    };
    let path = datasets_dir().join(file);
    if !path.is_file() {
        bail!(
            "{} is missing: run `cargo xtask data fetch {fetch}` first",
            path.display()
        );
    }
    Ok(path)
}

/// Reads image-caption sources, each `NAME|MANIFEST.jsonl[:SPLIT]`, into one manifest (image
/// paths made absolute). `emoji-enriched` (and `emoji-google-enriched`,
/// `emoji-twitter-enriched`) is an emoji set with CLIP-style captions
/// ([`mm_vl::datasets::enrich_emoji_captions`]); `:SPLIT` keeps only that split's records.
pub fn image_caption_sources(sources: &[String], role: Role) -> Result<Manifest<ImageCaption>> {
    let mut records = Vec::new();
    for source in sources {
        let (name, split) = match source.rsplit_once(':') {
            Some((name, split)) if !name.is_empty() && !split.contains('/') => (name, Some(split)),
            _ => (source.as_str(), None),
        };
        let (name, enriched) = match name.strip_suffix("-enriched") {
            Some(emoji) if emoji.starts_with("emoji") => (emoji, true),
            _ => (name, false),
        };
        let manifest = Manifest::<ImageCaption>::read(resolve_data(name, role)?)?;
        let before = records.len();
        for record in &manifest.records {
            if split.is_some_and(|s| record.split.as_deref() != Some(s)) {
                continue;
            }
            let mut record = if enriched {
                mm_vl::datasets::enrich_emoji_captions(record)
            } else {
                record.clone()
            };
            record.image = manifest.image_path(&record).to_string_lossy().into_owned();
            records.push(record);
        }
        if records.len() == before {
            bail!("data source `{source}` has no records");
        }
    }
    Ok(Manifest {
        path: PathBuf::from(sources.join("+")),
        root: PathBuf::new(),
        records,
    })
}

pub use mm_xtask::config::{apply_overrides, load_config_with_overrides};

/// A memory field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, ...) in MiB; `pid` may be
/// `self`. `None` off Linux or for a process that is gone.
pub fn proc_status_mib(pid: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// How every `train` command takes its settings: `--config FILE`, `--set KEY=VALUE`...,
/// `--resume`.
#[derive(clap::Args)]
pub struct RunFlags {
    /// Settings file (JSON); without it, the command's defaults (`train clip`:
    /// configs/clip-emoji.json). --set applies on top.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a setting, e.g. `--set steps=200`; dotted paths reach nested fields
    /// (`--set train.steps=200`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Continue from the run folder's latest checkpoint.
    #[arg(long)]
    pub resume: bool,
}

impl RunFlags {
    /// The settings: `default` or `--config`, with `--set` on top ([`settings_from`]).
    pub fn settings<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        default: T,
        what: &str,
    ) -> Result<T> {
        settings_from(self.config.as_deref(), &self.overrides, default, what)
    }
}

/// A model's settings: `default`, or the JSON file `config`, with `--set` overrides on top;
/// `what` names the settings in errors.
pub fn settings_from<T: serde::Serialize + serde::de::DeserializeOwned>(
    config: Option<&Path>,
    overrides: &[String],
    default: T,
    what: &str,
) -> Result<T> {
    let mut value = match config {
        Some(path) => load_config_with_overrides(path, &[])?,
        None => serde_json::to_value(default)?,
    };
    apply_overrides(&mut value, overrides, what)?;
    serde_json::from_value(value).with_context(|| format!("the settings do not describe {what}"))
}

/// The thread count: `--threads`, else `RAYON_NUM_THREADS`, else every core; sizes rayon's
/// global pool (which Flex's kernels and GEMM use) to it. Zero is refused.
pub fn set_threads(flag: Option<usize>) -> Result<usize> {
    if flag == Some(0) {
        bail!("--threads must be at least 1");
    }
    let n = flag
        .or_else(|| std::env::var("RAYON_NUM_THREADS").ok()?.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .stack_size(WORKER_STACK_BYTES)
        .build_global()
        .context("cannot size the thread pool")?;
    Ok(n)
}

/// The stack of each of rayon's threads: a command run by `mm_core::pool::on_pool` runs on one of them,
/// so it gets at least the main thread's usual 8 MiB.
const WORKER_STACK_BYTES: usize = 16 << 20;
