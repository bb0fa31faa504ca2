//! `POST /vqa` (multipart `image`, `question`, optional `top`): answers from a VQA model folder
//! (two-tower, ViLT, or transformers' `ViltForQuestionAnswering`) given at start. Its own worker
//! thread owns the model and batches the questions of concurrent requests into one forward
//! pass, like the CLIP worker; a full queue answers 429, a question the model cannot read 422.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use burn::tensor::backend::Backend;
use mm_vision::RgbImage;
use mm_vl::vqa::{AnyVqa, ScoredAnswer};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::config::BatchConfig;
use crate::error::ApiError;
use crate::multipart::{one_image, read_fields, text_field};
use crate::routes::{AppState, timed};
use crate::worker::{WorkerStats, await_answer, enqueue};

/// Most answers one request may ask for.
pub const MAX_TOP: usize = 100;

struct Job {
    image: RgbImage,
    question: String,
    top: usize,
    reply: oneshot::Sender<Result<Vec<ScoredAnswer>, String>>,
}

/// A cheap, cloneable handle to the VQA worker.
#[derive(Clone)]
pub struct VqaHandle {
    jobs: mpsc::Sender<Job>,
    /// The worker's counters.
    pub stats: Arc<WorkerStats>,
    /// `two-tower` or `vilt`.
    pub kind: &'static str,
    /// How many answers the model knows.
    pub answers: usize,
}

impl VqaHandle {
    /// Starts the worker thread around `model` on `device`.
    pub fn start<B: Backend>(model: AnyVqa<B>, device: B::Device, config: BatchConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let stats = Arc::new(WorkerStats::default());
        let (kind, answers) = (model.kind(), model.answers().len());
        let worker_stats = stats.clone();
        std::thread::Builder::new()
            .name("mm-vqa".into())
            .spawn(move || run(model, device, rx, config.max_batch.max(1), &worker_stats))
            .expect("spawn the VQA thread");
        Self {
            jobs: tx,
            stats,
            kind,
            answers,
        }
    }

    /// The `top` answers to `question` about `image`.
    pub async fn ask(
        &self,
        image: RgbImage,
        question: String,
        top: usize,
    ) -> Result<Vec<ScoredAnswer>, ApiError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            image,
            question,
            top,
            reply,
        };
        enqueue(&self.jobs, job, &self.stats, "VQA")?;
        await_answer(answer, "bad_question", "VQA").await
    }
}

fn run<B: Backend>(
    model: AnyVqa<B>,
    device: B::Device,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    stats: &WorkerStats,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        stats.queued.fetch_sub(jobs.len(), Ordering::Relaxed);
        let pairs: Vec<(&RgbImage, &str)> = jobs
            .iter()
            .map(|j| (&j.image, j.question.as_str()))
            .collect();
        let top = jobs.iter().map(|j| j.top).max().unwrap_or(1);
        let answers = mm_core::pool::on_pool(|| model.ask_batch(&pairs, top, &device));
        stats.forwards.fetch_add(1, Ordering::Relaxed);
        stats.items.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        for (job, answer) in jobs.into_iter().zip(answers) {
            let answer = answer
                .map(|mut a| {
                    a.truncate(job.top);
                    a
                })
                .map_err(|e| e.to_string());
            let _ = job.reply.send(answer); // the caller may have timed out
        }
    }
}

/// `top` within `1..=MAX_TOP` (5 when absent).
fn parse_top(field: Option<String>) -> Result<usize, ApiError> {
    let Some(text) = field else { return Ok(5) };
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_TOP).contains(&n) => Ok(n),
        _ => Err(ApiError::unprocessable(
            "bad_top",
            format!("top must be a whole number from 1 to {MAX_TOP}, got {text:?}"),
        )),
    }
}

/// `POST /vqa` (multipart: `image`, `question`, optional `top`): the most probable answers.
pub async fn vqa(
    State(state): State<Arc<AppState>>,
    multipart: Multipart,
) -> Result<Json<Value>, ApiError> {
    let Some(handle) = state.vqa.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_vqa_model",
            "this service was started without a VQA model (serve --vqa DIR)",
        ));
    };
    let fields = read_fields(multipart, &["image", "question", "top"]).await?;
    let question = text_field(&fields, "question")?
        .ok_or_else(|| ApiError::bad_request("missing_field", "`question` is required"))?;
    let question = question.trim().to_string();
    if question.is_empty() {
        return Err(ApiError::unprocessable(
            "empty_text",
            "the question is empty",
        ));
    }
    if question.len() > state.limits.max_text_bytes {
        return Err(ApiError::too_large(
            "text_too_long",
            format!(
                "the question is {} bytes; the limit is {}",
                question.len(),
                state.limits.max_text_bytes
            ),
        ));
    }
    let top = parse_top(text_field(&fields, "top")?)?;
    let image = one_image(&state, &fields).await?;
    timed(&state, async {
        let answers = handle.ask(image, question, top).await?;
        Ok(Json(json!({
            "answers": answers,
            "model": handle.kind,
        })))
    })
    .await
}
