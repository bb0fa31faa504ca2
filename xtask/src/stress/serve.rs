//! Killing `serve` while a client adds images one request at a time over `POST /index`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mm_data::rng::SplitMix64;
use mm_retrieval::Found;
use serde_json::{Value, json};

use super::index::{TOLERANCE, build_command, entries};
use super::{Ending, Run, TargetReport, args, moment, run_to_end, tail};

/// Images in the folder before the first start; added image `n` is shape `n % BASE`.
const BASE: usize = 16;
/// How long a service lives after it answers, at most, before its kill.
const LIFE: Duration = Duration::from_millis(1500);
/// How long a start may take before the harness gives up.
const START_LIMIT: Duration = Duration::from_secs(120);

/// What the adding client saw in one life of the service.
#[derive(Default)]
struct Seen {
    answered: bool,
    indexed_at_start: Option<u64>,
    sent: Vec<u64>,
    acknowledged: Vec<u64>,
    /// An answer other than 200 while the service was alive: a failure of the service.
    refused: Option<String>,
}

async fn add_until_killed(
    url: String,
    first: u64,
    pngs: Arc<Vec<Vec<u8>>>,
    killed: Arc<AtomicBool>,
) -> Seen {
    let mut seen = Seen::default();
    let client = reqwest::Client::new();
    let began = Instant::now();
    while !killed.load(Ordering::SeqCst) && began.elapsed() < START_LIMIT {
        if let Ok(r) = client.get(format!("{url}/health")).send().await
            && let Ok(health) = r.json::<Value>().await
        {
            seen.answered = true;
            seen.indexed_at_start = health["indexed"].as_u64();
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut n = first;
    while seen.answered && !killed.load(Ordering::SeqCst) {
        let form = reqwest::multipart::Form::new()
            .part(
                "image",
                reqwest::multipart::Part::bytes(pngs[n as usize % BASE].clone())
                    .file_name(format!("added-{n}.png")),
            )
            .text("metadata", json!({ "n": n }).to_string());
        seen.sent.push(n);
        match client
            .post(format!("{url}/index"))
            .multipart(form)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => seen.acknowledged.push(n),
            Ok(r) => {
                // Anything but a dropped connection is a failure of the service.
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                if !killed.load(Ordering::SeqCst) {
                    seen.refused = Some(format!("POST /index answered {status}: {body}"));
                    break;
                }
            }
            Err(_) => break,
        }
        n += 1;
    }
    seen
}

/// The folder holds the base images and added ones only, each once, with every acknowledged
/// addition among them and the vectors of the images they name.
fn check(
    have: &BTreeMap<u64, Found>,
    base: &BTreeMap<u64, Found>,
    sent: &BTreeSet<u64>,
    acknowledged: &BTreeSet<u64>,
    what: &str,
) -> Result<()> {
    let mut added = BTreeSet::new();
    for (&id, f) in have {
        let want = if id < BASE as u64 {
            base.get(&id)
                .filter(|b| b.metadata == f.metadata)
                .with_context(|| format!("{what}: base entry {id} changed to {f:?}"))?
        } else {
            let n = f.metadata["n"]
                .as_u64()
                .with_context(|| format!("{what}: entry {id} has no `n`: {f:?}"))?;
            if !sent.contains(&n) || !added.insert(n) {
                bail!("{what}: entry {id} ({n}) was never sent, or is there twice");
            }
            &base[&(n % BASE as u64)]
        };
        if (f.score - want.score).abs() > TOLERANCE {
            bail!(
                "{what}: entry {id} scores {}, its image {}",
                f.score,
                want.score
            );
        }
    }
    if let Some(lost) = acknowledged.difference(&added).next() {
        bail!("{what}: addition {lost} was acknowledged but is not in the folder");
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Kills `serve` `kills` times.
pub fn stress(work: &Path, model: &Path, kills: usize, seed: u64) -> Result<TargetReport> {
    let began = Instant::now();
    std::fs::create_dir_all(work)?;
    let shapes = work.join("shapes");
    let manifest = mm_data::synth::shapes::write_shapes(&shapes, 16, BASE)?;
    let index = work.join("index");
    run_to_end(
        &build_command(model, &manifest, &index, &[]),
        &work.join("build"),
    )?;
    let base = entries(&index, model, &work.join("search-base"))?;
    let pngs: Vec<Vec<u8>> = base
        .values()
        .map(|f| std::fs::read(shapes.join(f.metadata["path"].as_str().unwrap_or_default())))
        .collect::<Result<_, _>>()?;
    let pngs = Arc::new(pngs);
    let runtime = tokio::runtime::Runtime::new()?;
    let mut rng = SplitMix64::stream(seed, 3);
    let mut report = TargetReport::new("serve");
    let (mut sent, mut acknowledged) = (BTreeSet::new(), BTreeSet::new());
    let mut in_folder = base.len() as u64;
    let mut startup = None::<Duration>;
    let mut life = 0;
    while report.kills < kills {
        let port = free_port()?;
        let command = args(&[
            &"serve",
            &"--index",
            &index,
            &"--addr",
            &format!("127.0.0.1:{port}"),
        ]);
        let log = work.join(format!("life-{life}"));
        life += 1;
        let mut run = Run::start(&command, &log)?;
        let killed = Arc::new(AtomicBool::new(false));
        let first = sent.last().map_or(0, |n| n + 1);
        let client = runtime.spawn(add_until_killed(
            format!("http://127.0.0.1:{port}"),
            first,
            pngs.clone(),
            killed.clone(),
        ));
        // The first life learns how long a start takes; kills then land in start-up and later.
        let at = match startup {
            Some(s) => moment(&mut rng, s + LIFE),
            None => {
                wait_until_answering(&mut run, port)?;
                let s = run.started.elapsed();
                startup = Some(s);
                s + moment(&mut rng, LIFE)
            }
        };
        let ending = run.kill_at(at)?;
        killed.store(true, Ordering::SeqCst);
        let seen = runtime.block_on(client)?;
        if let Ending::Exited(status) = ending {
            bail!(
                "`serve` exited on its own ({status}): {}",
                tail(&run.stderr())
            );
        }
        report.kills += 1;
        if let Some(refused) = &seen.refused {
            bail!("before its kill, the service refused an addition: {refused}");
        }
        if seen.answered {
            report.count("answered_after_restart", 1);
            if seen.indexed_at_start != Some(in_folder) {
                bail!(
                    "restarted on a folder of {in_folder} entries, /health says {:?}",
                    seen.indexed_at_start
                );
            }
        } else {
            report.count("killed_during_start", 1);
        }
        report.count("acknowledged", seen.acknowledged.len() as u64);
        sent.extend(seen.sent);
        acknowledged.extend(seen.acknowledged);
        let have = entries(&index, model, &log.with_extension("search"))?;
        check(
            &have,
            &base,
            &sent,
            &acknowledged,
            &format!("kill {}", report.kills),
        )?;
        in_folder = have.len() as u64;
        report.checks += 1;
    }
    // The service starts once more on the folder and answers with everything in it.
    let port = free_port()?;
    let mut run = Run::start(
        &args(&[
            &"serve",
            &"--index",
            &index,
            &"--addr",
            &format!("127.0.0.1:{port}"),
        ]),
        &work.join("last"),
    )?;
    let indexed = wait_until_answering(&mut run, port)?;
    run.kill();
    if indexed != in_folder {
        bail!("the last start holds {indexed} entries, the folder {in_folder}");
    }
    report.checks += 1;
    report.count("in_folder_at_end", in_folder);
    report.seconds = began.elapsed().as_secs_f64();
    Ok(report)
}

/// Polls `/health` until it answers; returns its `indexed`.
fn wait_until_answering(run: &mut Run, port: u16) -> Result<u64> {
    let began = Instant::now();
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let request = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            let mut response = String::new();
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_to_string(&mut response).is_ok()
                && let Some(body) = response.split("\r\n\r\n").nth(1)
                && let Ok(health) = serde_json::from_str::<Value>(body)
            {
                return health["indexed"]
                    .as_u64()
                    .context("/health has no `indexed`");
            }
        }
        if let Some(status) = run.exited()? {
            bail!("`serve` exited ({status}): {}", tail(&run.stderr()));
        }
        if began.elapsed() > START_LIMIT {
            bail!("`serve` did not answer within {START_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
