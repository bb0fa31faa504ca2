//! `cargo xtask loadtest --url URL --endpoint classify|search-text [--seconds 60]
//! [--concurrency 8] [--pid PID]`: a closed-loop load generator over HTTP. Each of
//! `concurrency` clients sends its next request as soon as the previous one is answered, for
//! `seconds`. Reports requests/s, latency percentiles, every non-2xx answer, and (with
//! `--pid`) the server's resident memory sampled each second, to show it does not grow.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::json;

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Endpoint {
    /// POST /classify with --image and --labels.
    Classify,
    /// POST /search/text with --text.
    SearchText,
}

/// Flags of `loadtest`.
#[derive(Args)]
pub struct LoadtestArgs {
    /// The service's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Which endpoint to load.
    #[arg(long, value_enum)]
    endpoint: Endpoint,
    /// Image for /classify.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Comma-separated labels for /classify.
    #[arg(long, default_value = "dog,cat,heart,star,car,tree,face,flag")]
    labels: String,
    /// Query texts for /search/text (cycled), separated by `|`.
    #[arg(
        long,
        default_value = "a red heart|a smiling face|a green tree|a yellow star"
    )]
    text: String,
    /// Seconds to run.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// The server's process id, to sample its resident memory.
    #[arg(long)]
    pid: Option<u32>,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn rss_mib(pid: u32) -> Option<f64> {
    crate::common::proc_status_mib(&pid.to_string(), "VmRSS")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn one_request(
    client: &reqwest::Client,
    a: &LoadtestArgs,
    image: &[u8],
    n: usize,
) -> Result<u16, String> {
    let request = match a.endpoint {
        Endpoint::Classify => {
            let form = reqwest::multipart::Form::new()
                .part(
                    "image",
                    reqwest::multipart::Part::bytes(image.to_vec()).file_name("image"),
                )
                .text("labels", a.labels.clone());
            client.post(format!("{}/classify", a.url)).multipart(form)
        }
        Endpoint::SearchText => {
            let texts: Vec<&str> = a.text.split('|').collect();
            client
                .post(format!("{}/search/text", a.url))
                .json(&json!({"text": texts[n % texts.len()], "k": 10}))
        }
    };
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    response.bytes().await.map_err(|e| e.to_string())?;
    Ok(status)
}

/// Runs `loadtest`.
pub fn run(args: LoadtestArgs) -> Result<()> {
    let image = match (&args.endpoint, &args.image) {
        (Endpoint::Classify, Some(p)) => {
            std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        (Endpoint::Classify, None) => bail!("--endpoint classify needs --image PATH"),
        _ => Vec::new(),
    };
    let out_path = args.out.clone();
    let runtime = tokio::runtime::Runtime::new()?;
    let args = std::sync::Arc::new(args);
    let image = std::sync::Arc::new(image);
    let report = runtime.block_on(async move {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
        let start = Instant::now();
        let mut workers = Vec::new();
        for w in 0..args.concurrency.max(1) {
            let (client, a, image) = (client.clone(), args.clone(), image.clone());
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures: Vec<String> = Vec::new();
                let mut n = w;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match one_request(&client, &a, &image, n).await {
                        Ok(s) if (200..300).contains(&s) => latencies.push(t.elapsed().as_secs_f64() * 1e3),
                        Ok(s) => failures.push(format!("HTTP {s}")),
                        Err(e) => failures.push(e),
                    }
                    n += a.concurrency;
                }
                (latencies, failures)
            }));
        }
        let mut memory = Vec::new();
        while Instant::now() < deadline {
            if let Some(m) = args.pid.and_then(rss_mib) {
                memory.push(m);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut latencies = Vec::new();
        let mut failures = Vec::new();
        for w in workers {
            let (l, f) = w.await?;
            latencies.extend(l);
            failures.extend(f);
        }
        let elapsed = start.elapsed().as_secs_f64();
        if let Some(m) = args.pid.and_then(rss_mib) {
            memory.push(m);
        }
        latencies.sort_by(f64::total_cmp);
        let tenth = memory.len() / 10;
        anyhow::Ok(json!({
            "endpoint": match args.endpoint { Endpoint::Classify => "/classify", Endpoint::SearchText => "/search/text" },
            "seconds": elapsed,
            "concurrency": args.concurrency,
            "ok": latencies.len(),
            "errors": failures.len(),
            "first_errors": failures.iter().take(5).collect::<Vec<_>>(),
            "requests_per_second": latencies.len() as f64 / elapsed,
            "p50_ms": percentile(&latencies, 50.0),
            "p90_ms": percentile(&latencies, 90.0),
            "p99_ms": percentile(&latencies, 99.0),
            "max_ms": latencies.last().copied().unwrap_or(f64::NAN),
            "server_rss_mib": if memory.is_empty() { json!(null) } else { json!({
                "first": memory[0],
                "after_first_tenth": memory[tenth],
                "last": memory[memory.len() - 1],
                "max": memory.iter().copied().fold(f64::MIN, f64::max),
            })},
        }))
    })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(out) = out_path {
        std::fs::write(&out, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}
