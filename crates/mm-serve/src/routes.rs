//! The endpoints. Each handler checks its input (see [`crate::input`]), asks the model worker
//! for embeddings, and reads or writes the index on a blocking thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use mm_retrieval::{DurableIndex, Found, IndexKind};
use mm_text::ClipTokenizer;
use mm_vision::AlphaMode;
use mm_vl::zeroshot::fill_template;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::compaction::Compaction;
use crate::config::Limits;
use crate::error::ApiError;
use crate::input::{check_k, check_text, decode_upload, parse_labels, parse_templates};
use crate::metrics::Metrics;
use crate::multipart::{Field, one_image, read_fields, text_field};
use crate::vqa::VqaHandle;
use crate::worker::ModelHandle;

/// Prompt embeddings kept for reuse by `/classify` (cleared when this many).
const PROMPT_CACHE: usize = 50_000;

/// What every handler shares.
pub struct AppState {
    /// The model worker.
    pub model: ModelHandle,
    /// The VQA worker, when the service was started with a VQA model.
    pub vqa: Option<VqaHandle>,
    /// The index, with its metadata and log.
    pub index: Arc<RwLock<DurableIndex>>,
    /// What `/health` and `/metrics` report of the index, kept outside its lock so they answer
    /// while an addition (or the snapshot it may trigger) holds it.
    pub index_facts: IndexFacts,
    /// The model's tokenizer, to check texts before they are queued.
    pub tokenizer: ClipTokenizer,
    /// How uploads are decoded for the model (transformers' `convert("RGB")` for HF folders,
    /// composited on white for ours, RGB-only where the preprocessor says so).
    pub alpha: AlphaMode,
    /// The model's context length in tokens.
    pub context_length: usize,
    /// Request limits.
    pub limits: Limits,
    /// Request counters.
    pub metrics: Metrics,
    /// Background folds of the index log into a snapshot.
    pub compaction: Arc<Compaction>,
    /// Unit-norm embeddings of prompts seen before.
    pub prompt_cache: Mutex<HashMap<String, Vec<f32>>>,
    /// When the service started.
    pub started: Instant,
}

/// The index's size, width and kind, readable without its lock.
pub struct IndexFacts {
    /// Entries indexed (updated after each acknowledged addition).
    pub indexed: AtomicU64,
    /// Embedding width.
    pub dim: usize,
    /// Exact or HNSW, with its parameters.
    pub kind: IndexKind,
}

impl IndexFacts {
    /// The facts of `index` now.
    pub fn of(index: &DurableIndex) -> Self {
        Self {
            indexed: AtomicU64::new(index.len() as u64),
            dim: index.index().dim(),
            kind: index.index().kind(),
        }
    }
}

type Shared = State<Arc<AppState>>;
type Reply = Result<Json<Value>, ApiError>;

pub(crate) async fn timed<T>(
    state: &AppState,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let limit = state.limits.request_timeout;
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("no answer within {} ms", limit.as_millis()),
        ))
    })
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker task failed: {e}")))?
}

fn found_json(found: Vec<Found>) -> Value {
    json!(
        found
            .into_iter()
            .map(|f| json!({"id": f.id, "score": f.score, "metadata": f.metadata}))
            .collect::<Vec<_>>()
    )
}

async fn search(state: &Arc<AppState>, query: Vec<f32>, k: usize) -> Result<Vec<Found>, ApiError> {
    let index = state.index.clone();
    blocking(move || {
        let index = index.read().unwrap_or_else(|e| e.into_inner());
        Ok(index.search_batch(&query, k)?.pop().unwrap_or_default())
    })
    .await
}

/// `GET /health`
pub async fn health(State(state): Shared) -> Json<Value> {
    let facts = &state.index_facts;
    Json(json!({
        "status": "ok",
        "indexed": facts.indexed.load(Relaxed),
        "dim": facts.dim,
        "index": facts.kind,
    }))
}

/// `GET /metrics`
pub async fn metrics(State(state): Shared) -> Json<Value> {
    let s = &state.model.stats;
    let (forwards, items) = (s.forwards.load(Relaxed), s.items.load(Relaxed));
    Json(json!({
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
        "routes": state.metrics.snapshot(),
        "model": {
            "forward_passes": forwards,
            "items": items,
            "mean_batch": items as f64 / forwards.max(1) as f64,
            "queued": s.queued.load(Relaxed),
            "rejected_queue_full": s.rejected.load(Relaxed),
        },
        "vqa": state.vqa.as_ref().map(|v| {
            let s = &v.stats;
            json!({
                "kind": v.kind,
                "forward_passes": s.forwards.load(Relaxed),
                "questions": s.items.load(Relaxed),
                "queued": s.queued.load(Relaxed),
                "rejected_queue_full": s.rejected.load(Relaxed),
            })
        }),
        "indexed": state.index_facts.indexed.load(Relaxed),
        "index_log": state.compaction.snapshot(),
    }))
}

/// `POST /classify` (multipart: `image`, `labels`, optional `templates`)
pub async fn classify(State(state): Shared, multipart: Multipart) -> Reply {
    let fields = read_fields(multipart, &["image", "labels", "templates"]).await?;
    let labels = text_field(&fields, "labels")?
        .ok_or_else(|| ApiError::bad_request("missing_field", "`labels` is required"))?;
    let labels = parse_labels(&labels, &state.limits)?;
    let templates = parse_templates(text_field(&fields, "templates")?.as_deref(), &state.limits)?;
    let mut prompts = Vec::with_capacity(labels.len() * templates.len());
    for label in &labels {
        for template in &templates {
            let prompt = fill_template(template, label);
            prompts.push(check_text(
                &prompt,
                "a prompt",
                &state.limits,
                &state.tokenizer,
                state.context_length,
            )?);
        }
    }
    let image = one_image(&state, &fields).await?;
    timed(&state, async {
        let missing: Vec<String> = {
            let cache = state.prompt_cache.lock().unwrap_or_else(|e| e.into_inner());
            prompts.iter().filter(|p| !cache.contains_key(*p)).cloned().collect()
        };
        let (prompt_rows, image_rows) = state.model.embed(missing.clone(), vec![image]).await?;
        let mut cache = state.prompt_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() + missing.len() > PROMPT_CACHE {
            cache.clear();
        }
        cache.extend(missing.into_iter().zip(prompt_rows));
        let image = &image_rows[0];
        let dim = image.len();
        let mut logits = Vec::with_capacity(labels.len());
        for chunk in prompts.chunks(templates.len()) {
            let mut class = vec![0.0f32; dim];
            for p in chunk {
                let e = cache.get(p).ok_or_else(|| ApiError::internal("prompt cache lost a row"))?;
                class.iter_mut().zip(e).for_each(|(c, v)| *c += v);
            }
            let norm = class.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            let cos: f32 = class.iter().zip(image).map(|(c, v)| c / norm * v).sum();
            logits.push(100.0 * cos);
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        let mut ranked: Vec<(&String, f32)> = labels.iter().zip(exp.iter().map(|e| e / sum)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(Json(json!({
            "labels": ranked.iter().map(|(l, p)| json!({"label": l, "probability": p})).collect::<Vec<_>>(),
        })))
    })
    .await
}

/// Body of `POST /search/text`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextQuery {
    /// The query.
    pub text: String,
    /// How many results (10 when absent).
    pub k: Option<i64>,
}

/// `POST /search/text` (JSON `{"text", "k"}`): the indexed items nearest the text.
pub async fn search_text(
    State(state): Shared,
    body: Result<Json<TextQuery>, JsonRejection>,
) -> Reply {
    let Json(query) = body.map_err(|e| ApiError::new(e.status(), "bad_json", e.body_text()))?;
    let k = check_k(query.k, &state.limits)?;
    let text = check_text(
        &query.text,
        "`text`",
        &state.limits,
        &state.tokenizer,
        state.context_length,
    )?;
    timed(&state, async {
        let query = state.model.embed_texts(vec![text]).await?.remove(0);
        Ok(Json(
            json!({"results": found_json(search(&state, query, k).await?)}),
        ))
    })
    .await
}

/// `POST /search/image` (multipart `image`, optional `k`): the indexed items nearest the image.
pub async fn search_image(State(state): Shared, multipart: Multipart) -> Reply {
    let fields = read_fields(multipart, &["image", "k"]).await?;
    let k = match text_field(&fields, "k")? {
        None => None,
        Some(k) => Some(k.trim().parse::<i64>().map_err(|_| {
            ApiError::unprocessable("bad_k", format!("k must be an integer, got `{k}`"))
        })?),
    };
    let k = check_k(k, &state.limits)?;
    let image = one_image(&state, &fields).await?;
    timed(&state, async {
        let query = state.model.embed_images(vec![image]).await?.remove(0);
        Ok(Json(
            json!({"results": found_json(search(&state, query, k).await?)}),
        ))
    })
    .await
}

/// `POST /index` (multipart: one or more `image` files, optional `metadata`: a JSON object
/// for every image or an array with one object per image). Answers once the additions are
/// on disk.
pub async fn add_to_index(State(state): Shared, multipart: Multipart) -> Reply {
    let fields = read_fields(multipart, &["image", "metadata"]).await?;
    let uploads: Vec<&Field> = fields.iter().filter(|f| f.name == "image").collect();
    if uploads.is_empty() || uploads.len() > state.limits.max_images_per_request {
        return Err(ApiError::unprocessable(
            "image_count",
            format!(
                "expected 1 to {} `image` fields, got {}",
                state.limits.max_images_per_request,
                uploads.len()
            ),
        ));
    }
    let extra: Vec<Map<String, Value>> = match text_field(&fields, "metadata")? {
        None => vec![Map::new(); uploads.len()],
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => vec![m; uploads.len()],
            Ok(Value::Array(items)) if items.len() == uploads.len() => items
                .into_iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(m),
                    _ => Err(ApiError::unprocessable(
                        "bad_metadata",
                        "metadata items must be objects",
                    )),
                })
                .collect::<Result<_, _>>()?,
            Ok(_) => {
                return Err(ApiError::unprocessable(
                    "bad_metadata",
                    "metadata must be an object, or an array of one object per image",
                ));
            }
            Err(e) => {
                return Err(ApiError::bad_request(
                    "bad_metadata",
                    format!("metadata is not JSON: {e}"),
                ));
            }
        },
    };
    let mut images = Vec::with_capacity(uploads.len());
    let mut metadata = Vec::with_capacity(uploads.len());
    for (i, (upload, mut meta)) in uploads.into_iter().zip(extra).enumerate() {
        let name = upload
            .file_name
            .clone()
            .unwrap_or_else(|| format!("image {}", i + 1));
        let (bytes, st, n) = (upload.bytes.clone(), state.clone(), name.clone());
        images.push(blocking(move || decode_upload(&bytes, &n, st.alpha, &st.limits)).await?);
        meta.entry("file_name").or_insert(Value::String(name));
        metadata.push(Value::Object(meta));
    }
    timed(&state, async {
        let rows = state.model.embed_images(images).await?;
        let flat: Vec<f32> = rows.into_iter().flatten().collect();
        let st = state.clone();
        let (ids, fold) = blocking(move || {
            let mut index = st.index.write().unwrap_or_else(|e| e.into_inner());
            let ids = index.add(&flat, metadata)?;
            st.index_facts.indexed.store(index.len() as u64, Relaxed);
            Ok((ids, index.wants_compaction()))
        })
        .await?;
        if fold {
            state.compaction.start(&state.index);
        }
        Ok(Json(json!({"ids": ids.collect::<Vec<u64>>()})))
    })
    .await
}
