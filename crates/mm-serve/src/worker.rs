//! The model worker: one thread owns the CLIP and runs every forward pass. Requests put jobs
//! on a bounded queue ([`ModelHandle::embed`], one slot per request); the
//! worker takes every job waiting (up to a batch's worth), runs the texts of all of them as
//! one batch and the images as another, and answers each job its rows. A full queue is
//! refused at once (429), so load sheds instead of piling up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use burn::tensor::backend::Backend;
use mm_core::pool::on_pool;
use mm_vision::RgbImage;
use mm_vl::hf::LoadedClip;
use tokio::sync::{mpsc, oneshot};

use crate::config::BatchConfig;
use crate::error::ApiError;
use axum::http::StatusCode;

/// Text rows and image rows of one job.
type Rows = (Vec<Vec<f32>>, Vec<Vec<f32>>);
type Reply = oneshot::Sender<Result<Rows, String>>;

/// One request's model work: texts and images, embedded in the same round.
struct Job {
    texts: Vec<String>,
    images: Vec<RgbImage>,
    reply: Reply,
}

/// Counters the worker keeps, shown by `/metrics`.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Forward passes run.
    pub forwards: AtomicU64,
    /// Texts and images embedded.
    pub items: AtomicU64,
    /// Jobs refused because the queue was full.
    pub rejected: AtomicU64,
    /// Jobs waiting now.
    pub queued: AtomicUsize,
}

/// A cheap, cloneable handle to the model worker.
#[derive(Clone)]
pub struct ModelHandle {
    jobs: mpsc::Sender<Job>,
    /// The worker's counters.
    pub stats: Arc<WorkerStats>,
    /// Width of the embeddings.
    pub dim: usize,
}

impl ModelHandle {
    /// Starts the worker thread around `model`.
    pub fn start<B: Backend>(model: LoadedClip<B>, config: BatchConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let stats = Arc::new(WorkerStats::default());
        let dim = model.config.projection_dim;
        let worker_stats = stats.clone();
        std::thread::Builder::new()
            .name("mm-model".into())
            .spawn(move || run(model, rx, config.max_batch.max(1), &worker_stats))
            .expect("spawn the model thread");
        Self {
            jobs: tx,
            stats,
            dim,
        }
    }

    /// Unit-norm embeddings of `texts` and `images` (one queue slot, one round of batches
    /// shared with the other callers' work).
    pub async fn embed(&self, texts: Vec<String>, images: Vec<RgbImage>) -> Result<Rows, ApiError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            texts,
            images,
            reply,
        };
        enqueue(&self.jobs, job, &self.stats, "model")?;
        await_answer(answer, "model_input", "model").await
    }

    /// Unit-norm text embeddings.
    pub async fn embed_texts(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ApiError> {
        Ok(self.embed(texts, Vec::new()).await?.0)
    }

    /// Unit-norm image embeddings.
    pub async fn embed_images(&self, images: Vec<RgbImage>) -> Result<Vec<Vec<f32>>, ApiError> {
        Ok(self.embed(Vec::new(), images).await?.1)
    }
}

/// Puts `job` on a worker's queue: 429 when it is full, 500 when the worker has stopped.
pub(crate) fn enqueue<J>(
    jobs: &mpsc::Sender<J>,
    job: J,
    stats: &WorkerStats,
    worker: &str,
) -> Result<(), ApiError> {
    match jobs.try_send(job) {
        Ok(()) => {
            stats.queued.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            stats.rejected.fetch_add(1, Ordering::Relaxed);
            Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "queue_full",
                "the model queue is full; retry later",
            ))
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Err(ApiError::internal(format!(
            "the {worker} worker has stopped"
        ))),
    }
}

/// A worker's answer to one job: its rows, or a 422 with `code` when the input was refused.
pub(crate) async fn await_answer<T>(
    answer: oneshot::Receiver<Result<T, String>>,
    code: &'static str,
    worker: &str,
) -> Result<T, ApiError> {
    match answer.await {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(message)) => Err(ApiError::unprocessable(code, message)),
        Err(_) => Err(ApiError::internal(format!(
            "the {worker} worker dropped the request"
        ))),
    }
}

fn run<B: Backend>(
    model: LoadedClip<B>,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    stats: &WorkerStats,
) {
    while let Some(first) = rx.blocking_recv() {
        // Every job waiting now (up to a batch's worth of items) joins this round.
        let mut jobs = vec![first];
        let mut items = jobs[0].texts.len() + jobs[0].images.len();
        while items < max_batch {
            match rx.try_recv() {
                Ok(job) => {
                    items += job.texts.len() + job.images.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        stats.queued.fetch_sub(jobs.len(), Ordering::Relaxed);
        let texts: Vec<String> = jobs.iter().flat_map(|j| j.texts.iter().cloned()).collect();
        let images: Vec<&RgbImage> = jobs.iter().flat_map(|j| j.images.iter()).collect();
        // On rayon's pool: its parallel ops then split without a hand-off each (mm_core::pool).
        let (text_rows, image_rows) = on_pool(|| {
            let text_rows = if texts.is_empty() {
                Ok(Vec::new())
            } else {
                model
                    .embed_texts(&texts, max_batch, true)
                    .map_err(|e| e.to_string())
            };
            (text_rows, model.embed_images(&images, max_batch, true))
        });
        let passes = texts.len().div_ceil(max_batch) + images.len().div_ceil(max_batch);
        stats.forwards.fetch_add(passes as u64, Ordering::Relaxed);
        stats
            .items
            .fetch_add((texts.len() + images.len()) as u64, Ordering::Relaxed);
        let mut image_rows = image_rows.into_iter();
        match text_rows {
            Ok(text_rows) => {
                let mut text_rows = text_rows.into_iter();
                for job in jobs {
                    let t = text_rows.by_ref().take(job.texts.len()).collect();
                    let i = image_rows.by_ref().take(job.images.len()).collect();
                    let _ = job.reply.send(Ok((t, i))); // the caller may have timed out
                }
            }
            Err(message) => {
                for job in jobs {
                    let _ = job.reply.send(Err(message.clone()));
                }
            }
        }
    }
}
