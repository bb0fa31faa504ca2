//! mm's HTTP service: zero-shot classification, text -> image and image -> image search over
//! a durable index, and indexing, for any CLIP mm loads; visual question answering for any VQA
//! model folder mm loads.
//!
//! - `POST /classify`: multipart `image`, `labels` (comma-separated), optional `templates`
//!   (one per line, each with `{}`); labels ranked with probabilities.
//! - `POST /search/text`: JSON `{"text": "...", "k": 10}`; the nearest indexed items.
//! - `POST /search/image`: multipart `image`, optional `k`; the nearest indexed items.
//! - `POST /index`: multipart `image` (repeatable), optional `metadata`; answered once the
//!   additions are fsynced to the index's log.
//! - `POST /vqa`: multipart `image`, `question`, optional `top`; the most probable answers of
//!   the VQA model the service was started with ([`vqa`]).
//! - `GET /health`, `GET /metrics`.
//!
//! Model work goes through one worker thread that batches concurrent requests
//! ([`worker`]); a full queue answers 429. Every error is a JSON body with a 4xx (the
//! request's fault) or 5xx status ([`error`]); limits are in [`config::Limits`]. A growing
//! index log is folded into a snapshot in the background ([`compaction`]).

mod body;
pub mod compaction;
pub mod config;
pub mod error;
pub mod input;
pub mod metrics;
mod multipart;
pub mod routes;
pub mod vqa;
pub mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use burn::tensor::backend::Backend;
use mm_retrieval::DurableIndex;
use mm_vl::hf::LoadedClip;
use mm_vl::vqa::AnyVqa;

pub use config::{BatchConfig, Limits, ServeConfig};
pub use error::ApiError;
use routes::AppState;
use vqa::VqaHandle;
use worker::ModelHandle;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The model and the index disagree.
    #[error(
        "the model embeds in {model} dimensions but the index holds {index}-dimensional vectors"
    )]
    DimensionMismatch {
        /// The model's embedding width.
        model: usize,
        /// The index's vector width.
        index: usize,
    },
    /// The address could not be bound or the server failed.
    #[error("{addr}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The index could not be saved at shutdown (its log still holds every addition).
    #[error("saving the index at shutdown failed")]
    Save(#[from] mm_retrieval::IndexError),
}

/// A VQA model for `POST /vqa` and the device it runs on.
pub struct VqaModel<B: Backend> {
    /// The model.
    pub model: AnyVqa<B>,
    /// Its device.
    pub device: B::Device,
}

/// Builds the service's router around a model and an index (and a VQA model for `/vqa`).
pub fn router<B: Backend>(
    model: LoadedClip<B>,
    index: DurableIndex,
    vqa: Option<VqaModel<B>>,
    config: &ServeConfig,
) -> Result<(Router, Arc<RwLock<DurableIndex>>), ServeError> {
    let dim = model.config.projection_dim;
    if index.index().dim() != dim {
        return Err(ServeError::DimensionMismatch {
            model: dim,
            index: index.index().dim(),
        });
    }
    let tokenizer = model.tokenizer.clone();
    let alpha = model.alpha;
    let context_length = model.model.context_length();
    let index_facts = routes::IndexFacts::of(&index);
    let index = Arc::new(RwLock::new(index));
    let state = Arc::new(AppState {
        model: ModelHandle::start(model, config.batch),
        vqa: vqa.map(|v| VqaHandle::start(v.model, v.device, config.batch)),
        index: index.clone(),
        index_facts,
        tokenizer,
        alpha,
        context_length,
        limits: config.limits.clone(),
        metrics: Default::default(),
        compaction: Default::default(),
        prompt_cache: Mutex::new(HashMap::new()),
        started: Instant::now(),
    });
    let router = Router::new()
        .route("/health", get(routes::health))
        .route("/metrics", get(routes::metrics))
        .route("/classify", post(routes::classify))
        .route("/search/text", post(routes::search_text))
        .route("/search/image", post(routes::search_image))
        .route("/index", post(routes::add_to_index))
        .route("/vqa", post(vqa::vqa))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(config.limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            body::read_in_time,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state);
    Ok((router, index))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Records each request's latency and status, and turns any non-JSON error response (a wrong
/// method, a body over the limit caught by a layer) into a JSON one.
async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().clone();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let response = if (status.is_client_error() || status.is_server_error()) && !is_json {
        let (code, message) = match status {
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                format!("{method} is not allowed on {route}"),
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "body_too_large",
                format!("the body exceeds {} bytes", state.limits.max_body_bytes),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "wrong Content-Type for this endpoint".into(),
            ),
            _ => (
                "error",
                status.canonical_reason().unwrap_or("error").to_string(),
            ),
        };
        ApiError::new(status, code, message).into_response()
    } else {
        response
    };
    state.metrics.record(
        &format!("{method} {route}"),
        status.as_u16(),
        start.elapsed(),
    );
    response
}

/// Serves until `shutdown` resolves; then compacts the index's log into its snapshot.
pub async fn serve<B: Backend>(
    model: LoadedClip<B>,
    index: DurableIndex,
    vqa: Option<VqaModel<B>>,
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let (router, index) = router(model, index, vqa, &config)?;
    let io = |source| ServeError::Io {
        addr: config.addr,
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(io)?;
    on_bound(listener.local_addr().map_err(io)?);
    axum::serve(listener, router.into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(io)?;
    let mut index = index.write().unwrap_or_else(|e| e.into_inner());
    index.save()?;
    Ok(())
}
