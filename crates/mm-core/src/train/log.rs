//! What a run reports: one [`StepOutput`] per step and device, merged into one line of
//! `metrics.jsonl` per step (the progress display is in [`super::progress`]).
//!
//! burn-train hands every step's output to its metrics and then to its renderer, on its event
//! thread. [`RunLog`] is a burn-train metric that writes `metrics.jsonl`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn_train::ItemLazy;
use burn_train::metric::{Adaptor, Metric, MetricMetadata, MetricName, SerializedEntry};
use serde_json::{Map, Value};

use super::loader::Share;

/// What a model's train step reports for its share of one step's batch.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    /// The step (0-based).
    pub step: usize,
    /// The part of the batch this output covers.
    pub share: Share,
    /// Samples in this share.
    pub samples: usize,
    /// Mean loss over this share's samples.
    pub loss: f64,
    /// Other figures of the step (e.g. `logit_scale`), averaged over shares like the loss.
    pub extras: Vec<(&'static str, f64)>,
    /// When the step finished on its device (throughput is measured between these, not when
    /// burn-train's event thread gets to the output).
    pub finished: Instant,
}

impl StepOutput {
    /// The output of `share` of step `step`, finished now.
    pub fn new(step: usize, share: Share, samples: usize, loss: f64) -> Self {
        Self {
            step,
            share,
            samples,
            loss,
            extras: Vec::new(),
            finished: Instant::now(),
        }
    }

    /// With another figure of the step.
    pub fn with(mut self, name: &'static str, value: f64) -> Self {
        self.extras.push((name, value));
        self
    }
}

impl ItemLazy for StepOutput {
    type ItemSync = StepOutput;
    fn sync(self) -> StepOutput {
        self
    }
}

impl Adaptor<StepOutput> for StepOutput {
    fn adapt(&self) -> StepOutput {
        self.clone()
    }
}

/// One finished step, as written to `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// Steps completed (1-based).
    pub step: usize,
    /// Mean loss over the whole batch.
    pub loss: f64,
    /// Learning rate of the step.
    pub lr: f64,
    /// Samples per second since the previous step.
    pub samples_per_sec: f64,
    /// The model's other figures.
    pub extras: Vec<(&'static str, f64)>,
}

impl StepRecord {
    /// The JSON object of this record.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("step".into(), self.step.into());
        m.insert("loss".into(), self.loss.into());
        m.insert("lr".into(), self.lr.into());
        m.insert("samples_per_sec".into(), self.samples_per_sec.into());
        for (k, v) in &self.extras {
            m.insert((*k).into(), (*v).into());
        }
        Value::Object(m)
    }

    /// The one-line summary shown beside the progress bar.
    pub fn summary(&self) -> String {
        let mut s = format!("loss {:.4}  lr {:.2e}", self.loss, self.lr);
        for (k, v) in &self.extras {
            s.push_str(&format!("  {k} {v:.3}"));
        }
        s.push_str(&format!("  {:.0} samples/s", self.samples_per_sec));
        s
    }
}

struct Pending {
    finished: Instant,
    step: usize,
    parts: usize,
    samples: usize,
    loss: f64,
    extras: Vec<(&'static str, f64)>,
}

struct RunLogState {
    file: Option<File>,
    path: PathBuf,
    pending: Option<Pending>,
    last: Instant,
    batch_size: usize,
    latest: Option<StepRecord>,
}

/// The burn-train metric that merges each step's outputs and appends them to `metrics.jsonl`.
#[derive(Clone)]
pub struct RunLog {
    state: Arc<Mutex<RunLogState>>,
    name: MetricName,
}

impl RunLog {
    /// Appends to `path` (created if absent).
    pub fn new(path: &Path, batch_size: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(RunLogState {
                file: None,
                path: path.to_path_buf(),
                pending: None,
                last: Instant::now(),
                batch_size,
                latest: None,
            })),
            name: Arc::new("step".into()),
        }
    }

    /// The most recent finished step.
    pub fn latest(&self) -> Option<StepRecord> {
        self.state.lock().ok()?.latest.clone()
    }

    fn finish(state: &mut RunLogState, p: Pending, lr: f64) -> StepRecord {
        let secs = p
            .finished
            .saturating_duration_since(state.last)
            .as_secs_f64()
            .max(1e-9);
        state.last = p.finished;
        let w = p.samples.max(1) as f64;
        let record = StepRecord {
            step: p.step + 1,
            loss: p.loss / w,
            lr,
            samples_per_sec: state.batch_size as f64 / secs,
            extras: p.extras.iter().map(|(k, v)| (*k, v / w)).collect(),
        };
        if state.file.is_none() {
            state.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&state.path)
                .ok();
        }
        if let Some(f) = state.file.as_mut() {
            // A failed log line must not stop training; the checkpoint is what is kept.
            let _ = writeln!(f, "{}", record.to_json()).and_then(|()| f.flush());
        }
        state.latest = Some(record.clone());
        record
    }
}

impl Metric for RunLog {
    type Input = StepOutput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn update(&mut self, item: &StepOutput, metadata: &MetricMetadata) -> SerializedEntry {
        let Ok(mut state) = self.state.lock() else {
            return SerializedEntry::new(String::new(), String::new());
        };
        let w = item.samples as f64;
        let p = state.pending.get_or_insert_with(|| Pending {
            finished: item.finished,
            step: item.step,
            parts: 0,
            samples: 0,
            loss: 0.0,
            extras: item.extras.iter().map(|(k, _)| (*k, 0.0)).collect(),
        });
        p.parts += 1;
        p.finished = p.finished.max(item.finished);
        p.samples += item.samples;
        p.loss += item.loss * w;
        for ((_, acc), (_, v)) in p.extras.iter_mut().zip(&item.extras) {
            *acc += v * w;
        }
        if p.parts < item.share.count {
            return SerializedEntry::new(String::new(), String::new());
        }
        let p = state.pending.take().expect("pending step exists");
        let record = Self::finish(&mut state, p, metadata.lr.unwrap_or(0.0));
        SerializedEntry::new(record.summary(), record.to_json().to_string())
    }

    fn clear(&mut self) {}
}

/// Keeps `metrics.jsonl`'s complete step lines up to `last_step` (a resumed run rewrites what
/// came after its checkpoint), dropping a line cut by a kill.
pub fn truncate_log(path: &Path, last_step: usize) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v.get("step").and_then(Value::as_u64))
                .is_some_and(|s| s as usize <= last_step)
        })
        .flat_map(|l| [l, "\n"])
        .collect();
    mm_data::fs::atomic_write(path, kept.as_bytes())
}

/// Appends `{"eval": figures}` to a `metrics.jsonl` (evaluation figures beside the steps).
pub fn append_eval(path: &Path, figures: &Value) -> std::io::Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(f, "{}", serde_json::json!({ "eval": figures }))?;
    f.sync_all()
}

/// Reads `(step, loss)` pairs from a `metrics.jsonl`.
pub fn read_losses(path: &Path) -> std::io::Result<Vec<(usize, f64)>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| Some((v.get("step")?.as_u64()? as usize, v.get("loss")?.as_f64()?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::data::dataloader::Progress;

    fn meta() -> MetricMetadata {
        MetricMetadata {
            progress: Progress::new(0, 1),
            global_progress: Progress::new(1, 1),
            iteration: Some(1),
            lr: Some(0.5),
        }
    }

    fn out(step: usize, index: usize, count: usize, samples: usize, loss: f64) -> StepOutput {
        StepOutput::new(step, Share { index, count }, samples, loss).with("scale", loss * 2.0)
    }

    #[test]
    fn shares_of_a_step_become_one_weighted_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut log = RunLog::new(&path, 4);
        log.update(&out(0, 1, 2, 1, 4.0), &meta());
        assert!(log.latest().is_none());
        log.update(&out(0, 0, 2, 3, 0.0), &meta());
        let r = log.latest().unwrap();
        assert_eq!((r.step, r.loss, r.lr), (1, 1.0, 0.5));
        assert_eq!(r.extras, vec![("scale", 2.0)]);
        log.update(&out(1, 0, 1, 4, 3.0), &meta());
        assert_eq!(read_losses(&path).unwrap(), vec![(1, 1.0), (2, 3.0)]);
        std::fs::write(
            &path,
            std::fs::read_to_string(&path).unwrap() + "{\"step\": 3, \"lo",
        )
        .unwrap();
        truncate_log(&path, 1).unwrap();
        assert_eq!(read_losses(&path).unwrap(), vec![(1, 1.0)]);
    }
}
