//! `cargo xtask stress [--target all|train|index|serve] [--kills 50] [--seed 1] [--work DIR]
//! [--out FILE]`: kills our own commands with SIGKILL at seeded random moments and checks,
//! after every kill, that nothing acknowledged was lost (docs/reliability.md).
//!
//! - [`train`]: `train clip` on a tiny CLIP, killed and rerun with `--resume` until it
//!   finishes; every step logged before a kill and every finished run must equal an
//!   uninterrupted run's losses.
//! - [`index`]: `index build --resume`, killed mid-build; the folder must open and hold every
//!   batch it reported as indexed, with the uninterrupted build's vectors and metadata.
//! - [`serve`]: the service, killed while a client adds images over `POST /index`; every
//!   addition answered 200 must be in the folder and the restarted service must answer.
//!
//! Everything runs on generated data (coloured shapes) and a CLIP trained by the `train`
//! target, so the harness needs no download. The kill moment is uniform over the length of
//! an uninterrupted run, so kills land in start-up, mid-write and shutdown alike.

mod index;
mod serve;
mod train;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use mm_data::rng::SplitMix64;
use serde::Serialize;
use serde_json::Value;

/// Which commands to kill.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// train, then index, then serve.
    All,
    /// `train clip` with `--resume`.
    Train,
    /// `index build` with `--resume`.
    Index,
    /// `serve` under `POST /index`.
    Serve,
}

/// Flags of `stress`.
#[derive(Args)]
pub struct StressArgs {
    /// Which commands to kill.
    #[arg(long, value_enum, default_value = "all")]
    target: Target,
    /// Kills per command.
    #[arg(long, default_value_t = 50)]
    kills: usize,
    /// Seed of the kill moments.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Working folder (emptied first).
    #[arg(long, default_value = "runs/stress")]
    work: PathBuf,
    /// Also write the report as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// What one command went through.
#[derive(Debug, Default, Serialize)]
pub struct TargetReport {
    /// The command.
    pub target: &'static str,
    /// SIGKILLs delivered to a running process.
    pub kills: usize,
    /// Runs that ended on their own (a run can take several kills before it finishes).
    pub finished: usize,
    /// Checks made after kills and at finishes, all passed (a failure stops the harness).
    pub checks: usize,
    /// Counts particular to the command (kills before any checkpoint, items acknowledged...).
    pub details: serde_json::Map<String, Value>,
    /// Wall time of the command's stress run.
    pub seconds: f64,
}

impl TargetReport {
    fn new(target: &'static str) -> Self {
        Self {
            target,
            ..Self::default()
        }
    }

    fn count(&mut self, key: &str, by: u64) {
        let entry = self.details.entry(key).or_insert(Value::from(0u64));
        *entry = Value::from(entry.as_u64().unwrap_or(0) + by);
    }
}

/// How a process that was given a kill moment ended.
pub enum Ending {
    /// It was still running at the moment and was killed.
    Killed,
    /// It exited first.
    Exited(ExitStatus),
}

/// A child process of this executable, its output in files of the work folder.
pub struct Run {
    child: Child,
    stderr: PathBuf,
    started: Instant,
}

impl Run {
    /// Starts `xtask ARGS`, standard output and error to `log` + `.out` / `.err`.
    pub fn start(args: &[String], log: &Path) -> Result<Self> {
        let exe = std::env::current_exe().context("cannot find the xtask executable")?;
        let stdout = log.with_extension("out");
        let stderr = log.with_extension("err");
        let file = |p: &Path| {
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))
        };
        let child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file(&stdout)?)
            .stderr(file(&stderr)?)
            .spawn()
            .context("cannot start xtask")?;
        Ok(Self {
            child,
            stderr,
            started: Instant::now(),
        })
    }

    /// Waits until `at` after the start, then kills the process if it is still running.
    pub fn kill_at(&mut self, at: Duration) -> Result<Ending> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Ending::Exited(status));
            }
            if self.started.elapsed() >= at {
                self.child.kill()?; // SIGKILL
                self.child.wait()?;
                return Ok(Ending::Killed);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The process's exit status if it has exited.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits for the process to end on its own.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        Ok(self.child.wait()?)
    }

    /// Kills the process now (a no-op when it has exited).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the process wrote to standard error.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `xtask ARGS` to the end and returns its standard output; an error quotes its stderr.
pub fn run_to_end(args: &[String], log: &Path) -> Result<String> {
    let mut run = Run::start(args, log)?;
    let status = run.wait()?;
    if !status.success() {
        bail!("`xtask {}` failed: {}", args.join(" "), tail(&run.stderr()));
    }
    Ok(std::fs::read_to_string(log.with_extension("out"))?)
}

/// The last lines of a process's output, for an error message.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Strings of the arguments.
pub fn args(items: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<String> {
    items
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect()
}

/// A kill moment: uniform over `[0, window)`.
pub fn moment(rng: &mut SplitMix64, window: Duration) -> Duration {
    window.mul_f64(rng.uniform())
}

/// Runs `stress`.
pub fn run(args: StressArgs) -> Result<()> {
    if args.kills == 0 {
        bail!("--kills must be at least 1");
    }
    if args.work.exists() {
        std::fs::remove_dir_all(&args.work)
            .with_context(|| format!("cannot empty {}", args.work.display()))?;
    }
    std::fs::create_dir_all(&args.work)?;
    let work = std::fs::canonicalize(&args.work)?;
    let mut reports = Vec::new();
    let wanted = |t: Target| args.target == Target::All || args.target == t;
    // The index and the service need a model: the train target's uninterrupted run makes it.
    let model = if wanted(Target::Train) {
        let (report, model) = train::stress(&work.join("train"), args.kills, args.seed)?;
        print_report(&report);
        reports.push(report);
        model
    } else {
        train::reference_model(&work.join("train"))?
    };
    if wanted(Target::Index) {
        let report = index::stress(&work.join("index"), &model, args.kills, args.seed)?;
        print_report(&report);
        reports.push(report);
    }
    if wanted(Target::Serve) {
        let report = serve::stress(&work.join("serve"), &model, args.kills, args.seed)?;
        print_report(&report);
        reports.push(report);
    }
    if let Some(out) = &args.out {
        let json = serde_json::json!({"seed": args.seed, "kills": args.kills, "targets": reports});
        mm_data::fs::atomic_write(out, serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    Ok(())
}

fn print_report(r: &TargetReport) {
    println!(
        "{:<6} {} kills, {} finished runs, {} checks passed, {:.0} s  {}",
        r.target,
        r.kills,
        r.finished,
        r.checks,
        r.seconds,
        Value::Object(r.details.clone())
    );
}
