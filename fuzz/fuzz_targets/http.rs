//! Any request body at every endpoint of the HTTP service (multipart for `/classify`,
//! `/search/image`, `/index`; JSON for `/search/text`, `/vqa`): the answer is a JSON 4xx or a
//! 2xx, never a 5xx, a panic or a hang. The service runs in-process on a tiny random CLIP.
//!
//! Input: the first byte picks the endpoint; the rest is the body. Multipart bodies use the
//! boundary `mmfuzz` (the seeds show the form).
#![no_main]

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use burn::backend::NdArray;
use libfuzzer_sys::fuzz_target;
use mm_retrieval::{DurableIndex, ExactIndex};
use mm_serve::{Limits, ServeConfig};
use mm_text::{ClipTextConfig, ClipTokenizer};
use mm_vision::{AlphaMode, ClipImageProcessor, ClipVisionConfig};
use mm_vl::ClipConfig;
use mm_vl::hf::LoadedClip;
use tower::ServiceExt;

struct Service {
    runtime: tokio::runtime::Runtime,
    router: Router,
}

fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let device = Default::default();
        let config = ClipConfig::new(
            ClipTextConfig::new(32, 64, 16, 2, 4).with_max_position_embeddings(12),
            ClipVisionConfig::new(32, 64, 16, 2, 4, 16, 4),
            16,
        );
        let model = LoadedClip {
            model: config.init::<NdArray>(&device).unwrap(),
            config,
            tokenizer: ClipTokenizer::bundled(),
            processor: ClipImageProcessor::clip(16),
            alpha: AlphaMode::default(),
        };
        let dir = std::env::temp_dir().join(format!("mm-fuzz-http-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let index =
            DurableIndex::create(&dir, Box::new(ExactIndex::<NdArray>::new(16, &device))).unwrap();
        let serve = ServeConfig {
            limits: Limits {
                max_body_bytes: 1 << 20,
                max_image_pixels: 1 << 20,
                ..Limits::default()
            },
            ..ServeConfig::default()
        };
        let router = runtime
            .block_on(async { mm_serve::router(model, index, None, &serve) })
            .unwrap()
            .0;
        Service { runtime, router }
    })
}

const MULTIPART: &str = "multipart/form-data; boundary=mmfuzz";
const JSON: &str = "application/json";

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (path, content_type) = match pick % 6 {
        0 => ("/classify", MULTIPART),
        1 => ("/search/image", MULTIPART),
        2 => ("/index", MULTIPART),
        3 => ("/search/text", JSON),
        4 => ("/vqa", JSON),
        _ => ("/classify", JSON),
    };
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_vec()))
        .unwrap();
    let s = service();
    let (status, bytes) = s.runtime.block_on(async {
        let response = s.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, bytes)
    });
    assert!(
        !status.is_server_error(),
        "{path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(
        serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
        "{path}: {status} answered with a body that is not JSON: {}",
        String::from_utf8_lossy(&bytes)
    );
});
