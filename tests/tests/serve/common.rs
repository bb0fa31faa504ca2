//! What the HTTP service tests share: a tiny CLIP and an indexed shapes dataset on disk, a
//! server on a loopback port, and small request helpers.

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use mm_retrieval::{DurableIndex, ExactIndex};
use mm_serve::{BatchConfig, Limits, ServeConfig};
use mm_tests::{shapes_dataset, tiny_clip};
use mm_vl::checkpoint::save_model;
use mm_vl::hf::{LoadedClip, load_any_clip};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub type B = Flex;

pub struct Setup {
    pub _tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub model: PathBuf,
    pub index: PathBuf,
}

/// Sixteen shape images, a tiny CLIP saved as a model folder, and an exact index of the images.
pub fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    shapes_dataset(&data, 32);
    let model_dir = tmp.path().join("model");
    let config = tiny_clip();
    save_model(
        &config.init::<B>(&Default::default()).unwrap(),
        &config,
        &model_dir,
    )
    .unwrap();
    let loaded = load(&model_dir);
    let index_dir = tmp.path().join("index");
    let mut index = DurableIndex::create(
        &index_dir,
        Box::new(ExactIndex::<B>::new(
            config.projection_dim,
            &Default::default(),
        )),
    )
    .unwrap();
    let paths = images(&data);
    let rows: Vec<f32> = loaded
        .embed_image_files(&paths, 8, true, |_| {})
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    let meta = paths
        .iter()
        .map(|p| json!({"path": p.file_name().unwrap().to_str().unwrap()}))
        .collect();
    index.add(&rows, meta).unwrap();
    index.save().unwrap();
    Setup {
        _tmp: tmp,
        data,
        model: model_dir,
        index: index_dir,
    }
}

pub fn load(dir: &Path) -> LoadedClip<B> {
    load_any_clip::<B>(dir, &Default::default()).unwrap()
}

pub fn images(data: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    paths.sort();
    paths
}

pub struct Server {
    pub url: String,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<()>,
}

impl Server {
    /// A graceful stop, waited for (the index is saved before the folder goes away).
    pub async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap();
    }
}

pub fn test_config() -> ServeConfig {
    ServeConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        limits: Limits {
            max_body_bytes: 2 << 20,
            max_image_pixels: 1_000_000,
            max_labels: 8,
            max_text_bytes: 200,
            ..Limits::default()
        },
        batch: BatchConfig::default(),
    }
}

/// Serves the setup's model and index folder on a free loopback port.
pub async fn start(s: &Setup, config: ServeConfig) -> Server {
    let index = DurableIndex::open::<B>(&s.index, &Default::default()).unwrap();
    start_with(s, index, config).await
}

/// Serves the setup's model and an index already opened.
pub async fn start_with(s: &Setup, index: DurableIndex, config: ServeConfig) -> Server {
    start_full(s, index, None, config).await
}

/// Serves the setup's model, an index already opened and a VQA model.
pub async fn start_full(
    s: &Setup,
    index: DurableIndex,
    vqa: Option<mm_serve::VqaModel<B>>,
    config: ServeConfig,
) -> Server {
    let model = load(&s.model);
    let (stop, stopped) = oneshot::channel::<()>();
    let (bound, addr) = oneshot::channel();
    let task = tokio::spawn(async move {
        mm_serve::serve(
            model,
            index,
            vqa,
            config,
            async {
                let _ = stopped.await;
            },
            move |a| bound.send(a).unwrap(),
        )
        .await
        .unwrap();
    });
    let addr = addr.await.unwrap();
    Server {
        url: format!("http://{addr}"),
        stop: Some(stop),
        task,
    }
}

pub fn png(data: &Path, name: &str) -> Vec<u8> {
    std::fs::read(data.join(name)).unwrap()
}

pub fn image_form(bytes: Vec<u8>) -> Form {
    Form::new().part("image", Part::bytes(bytes).file_name("query.png"))
}

pub async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = r.text().await.unwrap();
    assert!(ct.starts_with("application/json"), "{status} {ct}: {body}");
    (status, serde_json::from_str(&body).unwrap())
}

/// `POST /search/text` with `text` and `k`; the status and JSON body.
pub async fn search_text(c: &reqwest::Client, url: &str, text: &str, k: usize) -> (u16, Value) {
    let request = c
        .post(format!("{url}/search/text"))
        .json(&json!({"text": text, "k": k}));
    json_of(request.send().await.unwrap()).await
}

pub fn white_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::GrayImage::from_pixel(w, h, image::Luma([255]));
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes
}
