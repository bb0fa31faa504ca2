//! What the service accepts and how it batches.

use std::net::SocketAddr;
use std::time::Duration;

/// Limits on requests; every one breached is a 4xx naming it.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest image, in pixels (width x height), checked before decoding.
    pub max_image_pixels: u64,
    /// Most labels in one `/classify`.
    pub max_labels: usize,
    /// Most prompt templates in one `/classify`.
    pub max_templates: usize,
    /// Longest text (a query, a label or a template), in bytes.
    pub max_text_bytes: usize,
    /// Largest `k` of a search.
    pub max_k: usize,
    /// Most images in one `/index` request.
    pub max_images_per_request: usize,
    /// A request still waiting for the model after this long gets a 503.
    pub request_timeout: Duration,
    /// A request whose body has not arrived whole after this long gets a 408.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            max_image_pixels: 25_000_000,
            max_labels: 256,
            max_templates: 32,
            max_text_bytes: 1000,
            max_k: 1000,
            max_images_per_request: 64,
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// How model work is batched across concurrent requests.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Jobs waiting for the model before new ones get 429.
    pub queue_capacity: usize,
    /// Most texts or images in one forward pass.
    pub max_batch: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 256,
            max_batch: 64,
        }
    }
}

/// Everything `serve` needs besides the model and the index.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on (loopback by default).
    pub addr: SocketAddr,
    /// Request limits.
    pub limits: Limits,
    /// Batching.
    pub batch: BatchConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            limits: Limits::default(),
            batch: BatchConfig::default(),
        }
    }
}
