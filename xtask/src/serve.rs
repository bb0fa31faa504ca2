//! `cargo xtask serve --model DIR --index INDEX [--vqa DIR] [--addr HOST:PORT]`: the HTTP service
//! (docs/serving.md). Ctrl-C stops it after in-flight requests and folds the index's log into
//! its snapshot.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use mm_core::BackendJob;
use mm_retrieval::DurableIndex;
use mm_serve::{BatchConfig, Limits, ServeConfig};
use mm_vl::hf::load_any_clip;
use mm_vl::vqa::AnyVqa;

use crate::backend::dispatch;
use crate::common::DeviceArg;
use crate::index::index_model;

/// Flags of `serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// An HF CLIP folder or a model folder of ours (default: the one that built the index).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The index folder (`cargo xtask index build`).
    #[arg(long)]
    index: PathBuf,
    /// A VQA model folder (two-tower, ViLT, or transformers' ViltForQuestionAnswering) for
    /// `POST /vqa`.
    #[arg(long)]
    vqa: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    device: DeviceArg,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Largest image in pixels.
    #[arg(long, default_value_t = Limits::default().max_image_pixels)]
    max_image_pixels: u64,
    /// Most labels per /classify.
    #[arg(long, default_value_t = Limits::default().max_labels)]
    max_labels: usize,
    /// Longest text in bytes.
    #[arg(long, default_value_t = Limits::default().max_text_bytes)]
    max_text_bytes: usize,
    /// Seconds a request may wait for the model before a 503.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Seconds a request's body may take to arrive whole before a 408.
    #[arg(long, default_value_t = 30.0)]
    body_timeout: f64,
    /// Model jobs queued before new requests get 429.
    #[arg(long, default_value_t = BatchConfig::default().queue_capacity)]
    queue: usize,
    /// Most texts or images per forward pass.
    #[arg(long, default_value_t = BatchConfig::default().max_batch)]
    max_batch: usize,
}

struct ServeJob(ServeArgs, PathBuf);

impl BackendJob for ServeJob {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let ServeJob(a, model_dir) = self;
        let model = load_any_clip::<B::InnerBackend>(&model_dir, &device)
            .with_context(|| format!("cannot load the model {}", model_dir.display()))?;
        let index = DurableIndex::open::<B::InnerBackend>(&a.index, &device)?;
        let vqa = match &a.vqa {
            Some(dir) => Some(mm_serve::VqaModel {
                model: AnyVqa::<B::InnerBackend>::load(dir, &device)
                    .with_context(|| format!("cannot load the VQA model {}", dir.display()))?,
                device: device.clone(),
            }),
            None => None,
        };
        let config = ServeConfig {
            addr: a.addr,
            limits: Limits {
                max_body_bytes: a.max_body_bytes,
                max_image_pixels: a.max_image_pixels,
                max_labels: a.max_labels,
                max_text_bytes: a.max_text_bytes,
                request_timeout: Duration::from_secs_f64(a.timeout),
                body_timeout: Duration::from_secs_f64(a.body_timeout),
                ..Limits::default()
            },
            batch: BatchConfig {
                queue_capacity: a.queue,
                max_batch: a.max_batch,
            },
        };
        let indexed = index.len();
        let runtime = tokio::runtime::Runtime::new()?;
        runtime
            .block_on(mm_serve::serve(
                model,
                index,
                vqa,
                config,
                async {
                    let _ = tokio::signal::ctrl_c().await;
                },
                |addr| eprintln!("serving {indexed} indexed items on http://{addr}"),
            ))
            .map_err(anyhow::Error::from)
    }
}

/// Runs `serve`.
pub fn run(args: ServeArgs) -> Result<()> {
    let model = index_model(&args.index, args.model.clone())?;
    let device = args.device.device;
    dispatch(device, ServeJob(args, model))?
}
